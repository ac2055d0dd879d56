# chargenet: `make run` (demo on the local stack) and `make test` (everything CI runs).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
IAC_VENV := .venv-iac
BIN := $(VENV)/bin
PIP_QUIET := --quiet --disable-pip-version-check
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test deps browser venv iac-venv lock lint iac build unit integration clean

run: deps venv
	$(BIN)/chargenet demo --chargers 10

# Two workers, a test file each at a time (each worker starts its own local stack): the
# integration tests spend most of their time waiting on the pipeline, not on the CPU.
test: deps browser venv iac-venv lint iac build
	$(BIN)/pytest -n 2 --dist loadfile

# System packages the local stack needs (Debian/Ubuntu).
deps:
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { \
	  echo "installing mosquitto"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq mosquitto >/dev/null; }
	@command -v stdbuf >/dev/null || { echo "stdbuf (coreutils) is required"; exit 1; }
	@# The broker's principal plugin (local/chargenet_local/principal_plugin.c) is built against these.
	@{ command -v cc && test -f /usr/include/mosquitto_plugin.h && test -f /usr/include/mosquitto.h \
	  && test -f /usr/include/openssl/x509.h; } >/dev/null || { \
	  echo "installing gcc, mosquitto-dev, libmosquitto-dev, libssl-dev"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    gcc libc6-dev mosquitto-dev libmosquitto-dev libssl-dev >/dev/null; }

# The headless browser the payment page tests drive: Debian's chromium and its driver.
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { \
	  echo "installing chromium"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Exactly the versions of requirements.lock (hash-checked), then our own two projects on top.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml device-shim/pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) --require-hashes -r requirements.lock
	$(BIN)/pip install $(PIP_QUIET) --no-deps -e . -e ./device-shim
	touch $@

# The IaC checkers pull old versions of shared dependencies: they get their own venv.
iac-venv: $(IAC_VENV)/.installed
$(IAC_VENV)/.installed: requirements-iac.lock
	$(PY) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip
	$(IAC_VENV)/bin/pip install $(PIP_QUIET) --require-hashes -r requirements-iac.lock
	touch $@

# After a change to a dependency in pyproject.toml, device-shim/pyproject.toml or
# requirements-iac.txt: re-resolve the locks and the layer's requirements, then `make venv`.
# uv, not pip-tools: it resolves for a platform other than its own (CI's x86_64 Debian, Python
# 3.11, whatever the machine it runs on) and reads both pyproject files in one go; pip installs
# the result, so neither CI nor `make venv` needs uv. Pins already in a lock are kept unless a
# requirement moved (`make lock UPGRADE=--upgrade` to take the newest).
UV_VERSION := 0.13.8
UV := .venv-uv/bin/uv
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --custom-compile-command 'make lock' $(UPGRADE)
$(UV):
	$(PY) -m venv .venv-uv
	.venv-uv/bin/pip install $(PIP_QUIET) uv==$(UV_VERSION)
lock: $(UV)
	$(UV_COMPILE) pyproject.toml device-shim/pyproject.toml --extra ops --extra dev -o requirements.lock
	$(UV_COMPILE) requirements-iac.txt -o requirements-iac.lock
	$(MAKE) venv
	$(BIN)/python scripts/layer_requirements.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy  # typecheck: strict, [tool.mypy] in pyproject.toml (layers, functions, the fakes)

iac: iac-venv
	$(IAC_VENV)/bin/cfn-lint template.yaml
	$(IAC_VENV)/bin/sam validate --lint --template template.yaml
	$(IAC_VENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

# What `sam deploy` ships: the layer with arm64 wheels, the thin handlers.
build: iac-venv
	$(IAC_VENV)/bin/sam build --template template.yaml >/dev/null
	@echo "sam build: ok (.aws-sam/build)"

unit: venv
	$(BIN)/pytest tests/unit device-shim/tests -m "not integration"

integration: deps venv
	$(BIN)/pytest -m integration

# Benchmarks on a fresh local stack each; results in bench/results/ (see bench/README.md).
.PHONY: bench
bench: deps venv
	$(BIN)/python -m bench.cold_start
	$(BIN)/python -m bench.warm_path
	$(BIN)/python -m bench.ingest_calls
	$(BIN)/python -m bench.cost_counts
	$(BIN)/chargenet cost --chargers 500 --sessions-per-day 4 --session-minutes 45 --meter-interval-s 60 --heartbeat-s 300 \
	  --json > bench/results/cost_estimate.json
	$(BIN)/python -m bench.fault_detection
	$(BIN)/python -m bench.fleet_scale

# Chaos run on a fresh local stack: faults injected, invariants checked (bench/README.md).
# Paced for a 2-core machine: the local stack handles a few OCPP messages a second, so 50
# chargers charge at 12x with their first drivers arriving over ten minutes (up to an hour).
.PHONY: chaos
chaos: deps venv
	$(BIN)/python -m bench.chaos --chargers 50 --sessions-per-charger 6 --speed 12 --arrival-spread-s 600 \
	  --function-timeout-s 3 --drive-timeout-s 3600

clean:
	rm -rf $(VENV) $(IAC_VENV) .venv-uv .local .aws-sam
