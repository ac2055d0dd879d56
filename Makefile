# chargenet: `make run` (demo on the local stack) and `make test` (everything CI runs).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
IAC_VENV := .venv-iac
BIN := $(VENV)/bin
PIP_QUIET := --quiet --disable-pip-version-check
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test deps browser venv iac-venv lint iac build unit integration clean

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

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml device-shim/pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) -e '.[ops,dev]' -e ./device-shim
	touch $@

# The IaC checkers pull old versions of shared dependencies: they get their own venv.
iac-venv: $(IAC_VENV)/.installed
$(IAC_VENV)/.installed: requirements-iac.txt
	$(PY) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip
	$(IAC_VENV)/bin/pip install $(PIP_QUIET) -r requirements-iac.txt
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/warm_path.py
	$(BIN)/python bench/cost_counts.py
	$(BIN)/chargenet cost --chargers 500 --sessions-per-day 2 --meter-interval-s 60 --heartbeat-s 300 \
	  --json > bench/results/cost_estimate.json
	$(BIN)/python bench/fault_detection.py
	$(BIN)/python bench/fleet_scale.py

# Chaos run on a fresh local stack: faults injected, invariants checked (bench/README.md).
# Paced for a 2-core machine: the local stack handles a few OCPP messages a second, so 50
# chargers charge at 12x with their first drivers arriving over ten minutes (up to an hour).
.PHONY: chaos
chaos: deps venv
	$(BIN)/python bench/chaos.py --chargers 50 --sessions-per-charger 6 --speed 12 --arrival-spread-s 600 \
	  --function-timeout-s 3 --drive-timeout-s 3600

clean:
	rm -rf $(VENV) $(IAC_VENV) .local .aws-sam
