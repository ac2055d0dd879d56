"""Cold-start benchmark: each function's handler import and first call, against a bare boto3 client.

For every function of template.yaml (chargenet_local.template `load(...).functions()`), a fresh
Python process with the function's template environment (as the local Lambda runner sets it:
the template's variables, AWS credentials and endpoints, AWS_LAMBDA_FUNCTION_NAME, the code
folder first on sys.path) imports the handler module, then calls the handler once with a
representative event (`FIRST_CALLS`: the sample events of events/, a schedule, a new CDR's
stream record, an admin's API request). Every endpoint is a closed local port and
AWS_MAX_ATTEMPTS=1, so the first AWS call fails at once, after the clients it needs are built:
what a cold invocation builds before its first request, without contacting anything. The
baseline, in the same run and interleaved with the functions, is a process doing `import boto3`
and creating one DynamoDB client (and, for scale, the same with that client's first call).
Each is repeated N times; medians are reported:

* `import_cpu_ms`, `import_wall_ms`: CPU (time.process_time) and wall time of the import inside
  the process (the interpreter's own start-up, the same for all, is left out);
* `first_call_cpu_ms`, `first_call_wall_ms`: the import and the first call together;
  `first_call_clients`: botocore clients alive after it, `first_call_outcome`: how it ended;
* `process_cpu_ms`, `process_wall_ms`: the whole process (getrusage of the child, wall clock);
* `ratio_cpu`, `ratio_wall`: import + first call over the baseline (issue 21: <= 1.3);
  `ratio_import_cpu`: the import alone over the baseline.

One more run per function with `python -X importtime` attributes the time to heavy packages
(boto3, botocore, pynamodb, stripe, aws_xray_sdk, pydantic, ...); the benchmark flags functions
that import stripe or the X-Ray SDK although their code does not use them, and any module of
`must_not_import` their cold start imports.

Usage: .venv/bin/python -m bench.cold_start [--repeat 7] [--only OcppIngestFunction ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, ROOT, TEMPLATE, write_results

DEFAULT_OUT = RESULTS / "cold_start.json"
HEAVY = (
    "boto3",
    "botocore",
    "pynamodb",
    "stripe",
    "aws_xray_sdk",
    "pydantic",
    "pydantic_core",
    "aws_lambda_powertools",
    "jsonschema",
    "fastjsonschema",
    "urllib3",
    "requests",
    "yaml",
    "dateutil",
    "chargenet",
)
# Whoever uses these must say so in its own code; importing them otherwise is dead weight.
NEEDS = {
    "stripe": re.compile(
        r"stripe|composition\.(payments|subscriptions)",
        re.IGNORECASE,
    ),
    "aws_xray_sdk": re.compile(r"\bTracer\b|aws_xray_sdk"),
}
# Imported at cold start by no function: Powertools' parser utility (pydantic models of every AWS
# event it knows; the handlers validate with their own model), Stripe and the X-Ray SDK (first use).
NEVER_AT_COLD_START = ("aws_lambda_powertools.utilities.parser", "stripe", "aws_xray_sdk")
# code folder -> what its first call never needs either (tests/unit/test_cold_start_bench.py holds them to it)
# The OCPP package and jsonschema load where a frame is decoded or a command validated, not before.
OCPP_SCHEMAS = ("ocpp", "jsonschema")
NOT_AT_COLD_START: dict[str, tuple[str, ...]] = {
    "ocpp_ingest": (
        "chargenet.domain.tariffs",
        "chargenet.domain.billing",
        "chargenet.services.payments",
        "ocpp.v16",  # chargenet.ocpp.actions names the actions
    ),
    "session_sweep": OCPP_SCHEMAS,
    "operator_sessions": OCPP_SCHEMAS,
    "operator_commands": OCPP_SCHEMAS,
    "payments_api": OCPP_SCHEMAS,
    "payment_capture": OCPP_SCHEMAS,
    "presence": ("chargenet.domain.tariffs", "chargenet.services.payments", "ocpp", "jsonschema"),
    "fault_sweep": ("chargenet.domain.tariffs", "chargenet.services.payments"),
    "provisioning_hook": ("chargenet.domain.tariffs", "chargenet.services.payments"),
}
LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard port: nothing is contacted at import
    "AWS_ENDPOINT_URL_IOT_DATA_PLANE": "http://127.0.0.1:9",
    "AWS_MAX_ATTEMPTS": "1",  # the first call fails at once: no retries counted
}

CHILD = """
import json, sys, time
c0, w0 = time.process_time(), time.perf_counter()
{body}
imported = {{"cpu_ms": (time.process_time() - c0) * 1000, "wall_ms": (time.perf_counter() - w0) * 1000}}
{first_call}
import gc
from botocore.client import BaseClient
print("COLDSTART " + json.dumps({{**imported, "first_call_cpu_ms": (time.process_time() - c0) * 1000,
                                  "first_call_wall_ms": (time.perf_counter() - w0) * 1000,
                                  "clients": sum(isinstance(o, BaseClient) for o in gc.get_objects()),
                                  "outcome": outcome}}))
"""
BASELINE_BODY = "import boto3\nclient = boto3.client('dynamodb')"
BASELINE_FIRST_CALL = "outcome = 'no call'"
# The bare client's own first call, for scale: what any function's first AWS call costs at least.
CALLED_BASELINE_FIRST_CALL = """
try:
    client.get_item(TableName="t", Key={"k": {"S": "v"}})
    outcome = "returned"
except Exception as error:
    outcome = type(error).__name__
"""
# The handler called once with a representative event; the endpoints are a closed port, so the
# first AWS call fails (AWS_MAX_ATTEMPTS=1) once every client it needs is built.
HANDLER_FIRST_CALL = """
class _Context:
    function_name = {name!r}
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + {name!r}
    aws_request_id = "cold-start"
    function_version = "$LATEST"
    log_group_name = ""
    log_stream_name = "local"

    def get_remaining_time_in_millis(self):
        return 10_000

try:
    handler(json.loads({event!r}), _Context())
    outcome = "returned"
except BaseException as error:
    outcome = type(error).__name__
"""
EVENTS = ROOT / "events"
SCHEDULE = "session_sweep_schedule.json"
# code folder -> event file, or (method, route, path) of an HTTP API request by a signed-in admin
NEW_CDR: dict[str, Any] = {
    "Records": [
        {
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/CdrsTable/stream/2026-11-26T00:00:00.000",
            "dynamodb": {
                "Keys": {"cdr_id": {"S": "CDR-42"}},
                "SequenceNumber": "1",
                "StreamViewType": "KEYS_ONLY",
            },
        }
    ]
}
PROVISIONING_REQUEST = {
    "claimCertificateId": "cold-start",
    "certificateId": "cold-start",
    "certificatePem": "",
    "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/chargenet",
    "clientId": "CP-001",
    "parameters": {"SerialNumber": "SN-0001", "AWS::IoT::Certificate::Id": "cold-start"},
}
FIRST_CALLS: dict[str, str | tuple[str, str, str] | dict[str, Any]] = {
    "ocpp_ingest": "ocpp_ingest_boot_notification.json",
    "presence": "presence_connected.json",
    "billing": "billing_session_completed.json",
    "session_sweep": SCHEDULE,
    "fault_sweep": SCHEDULE,
    "payment_sweep": SCHEDULE,
    "subscription_invoicing": SCHEDULE,
    "payments_api": ("GET", "/pay/{charger_id}/{connector_id}", "/pay/CP-001/1"),
    "console": ("GET", "/console", "/console"),
    "console_callback": ("GET", "/console/callback", "/console/callback"),
    "operator_api": ("GET", "/ops/v1/{proxy+}", "/ops/v1/faults"),
    "operator_sessions": ("GET", "/ops/v1/sessions", "/ops/v1/sessions"),
    "operator_payments": ("GET", "/ops/v1/payments", "/ops/v1/payments"),
    "operator_chargers": (
        "GET",
        "/ops/v1/chargers/{charger_id}/certificates",
        "/ops/v1/chargers/CP-001/certificates",
    ),
    "operator_commands": (
        "GET",
        "/ops/v1/chargers/{charger_id}/commands",
        "/ops/v1/chargers/CP-001/commands",
    ),
    "payment_capture": NEW_CDR,
    "subscription_usage": NEW_CDR,
    "provisioning_hook": PROVISIONING_REQUEST,
}


def http_event(method: str, route: str, path: str) -> dict[str, Any]:
    """An HTTP API (payload 2.0) request as API Gateway passes it, signed in as an admin."""
    names = re.findall(r"{(\w+)\+?}", route)
    values = re.fullmatch(re.sub(r"{\w+\+}", "(.+)", re.sub(r"{\w+}", "([^/]+)", route)), path)
    claims = {"sub": "cold-start", "username": "admin", "cognito:groups": "[admin]", "iat": int(time.time())}
    return {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.local", "user-agent": "cold-start"},
        "pathParameters": dict(zip(names, values.groups(), strict=True)) if values else {},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1", "protocol": "HTTP/1.1"},
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
            "requestId": "cold-start",
            "routeKey": f"{method} {route}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def first_call_event(code_folder: str) -> dict[str, Any]:
    """What the function's first invocation gets: its sample event, a request, or a new CDR's record."""
    call = FIRST_CALLS.get(code_folder, SCHEDULE)
    if isinstance(call, tuple):
        return http_event(*call)
    if isinstance(call, dict):
        return call
    loaded: dict[str, Any] = json.loads((EVENTS / call).read_text())
    return loaded


def handler_body(code_dir: Path, handler: str) -> str:
    module, function = handler.rsplit(".", 1)
    return (
        f"sys.path.insert(0, {str(code_dir)!r})\nimport importlib\n"
        f"handler = getattr(importlib.import_module({module!r}), {function!r})"
    )


def first_call_body(name: str, event: dict[str, Any]) -> str:
    return HANDLER_FIRST_CALL.format(name=name, event=json.dumps(event))


def parse_importtime(stderr: str) -> dict[str, float]:
    """`-X importtime` lines -> self time in ms summed per top-level package."""
    totals: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s+(\S.*)$", line)
        if not match:
            continue
        name = match[3].strip()
        totals[name.split(".")[0]] += int(match[1]) / 1000
    return dict(totals)


def heavy_imports(per_package: dict[str, float]) -> dict[str, float]:
    return {name: round(per_package[name], 1) for name in HEAVY if per_package.get(name, 0) > 0}


def unneeded(imported: dict[str, float], source: str) -> list[str]:
    """Heavy packages imported although the function's own code never asks for them."""
    return [pkg for pkg, pattern in NEEDS.items() if imported.get(pkg) and not pattern.search(source)]


def must_not_import(code_folder: str) -> tuple[str, ...]:
    return NEVER_AT_COLD_START + NOT_AT_COLD_START.get(code_folder, ())


def imported_at_cold_start(spec: Any, modules: Sequence[str], root: Path = ROOT) -> list[str]:
    """Which of `modules` (or their submodules) importing the function's handler module imports."""
    module = spec.handler.rsplit(".", 1)[0]
    child = (
        f"import importlib, json, sys\nsys.path.insert(0, {str(spec.code_dir)!r})\nimportlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {list(modules)!r} if any(n == m or n.startswith(m + '.') for n in sys.modules)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        env=_environment(spec, root),
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    if done.returncode != 0:
        raise RuntimeError(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    found: list[str] = json.loads(done.stdout.splitlines()[-1])
    return found


def _run(body: str, first_call: str, env: dict[str, str], importtime: bool = False) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-c",
        CHILD.format(body=body, first_call=first_call),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd="/")
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("COLDSTART ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    measured = json.loads(line[len("COLDSTART ") :])
    cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
    return {
        **measured,
        "process_cpu_ms": cpu,
        "process_wall_ms": wall,
        "importtime": parse_importtime(done.stderr) if importtime else None,
    }


def _environment(spec: Any, root: Path = ROOT) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    # Another checkout's layer goes before the editable install of this one (--root).
    layer = {} if root == ROOT else {"PYTHONPATH": str(root / "layers" / "shared")}
    return {**keep, **layer, **spec.environment, **LOCAL_AWS, "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", help="function logical ids (default: all)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout measured (e.g. /work/before)")
    args = parser.parse_args(argv)
    from chargenet_local.template import load

    functions = load(
        args.root / TEMPLATE.name, region="us-east-1", overrides={"IotDataEndpoint": "http://127.0.0.1:9"}
    ).functions()
    if args.only:
        functions = {k: v for k, v in functions.items() if k in args.only}
    base_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")} | LOCAL_AWS
    bodies = {
        "baseline": (BASELINE_BODY, BASELINE_FIRST_CALL, base_env),
        "baseline_called": (BASELINE_BODY, CALLED_BASELINE_FIRST_CALL, base_env),
    } | {
        name: (
            handler_body(spec.code_dir, spec.handler),
            first_call_body(name, first_call_event(spec.code_dir.name)),
            _environment(spec, args.root),
        )
        for name, spec in functions.items()
    }
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for round_ in range(args.repeat):  # interleaved: machine load hits the baseline and every function alike
        print(f"round {round_ + 1}/{args.repeat}", file=sys.stderr, flush=True)
        for name, (body, first_call, env) in bodies.items():
            runs[name].append(_run(body, first_call, env))
    attribution = {
        name: _run(body, first_call, env, importtime=True)["importtime"]
        for name, (body, first_call, env) in bodies.items()
    }
    baseline = {key: _median(runs["baseline"], key) for key in MEASURES}
    report = {
        "generated_by": "python -m bench.cold_start " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "repeat": args.repeat,
        "baseline": {
            "what": "import boto3 + boto3.client('dynamodb')",
            **baseline,
            "heavy_imports_ms": heavy_imports(attribution["baseline"]),
            "with_one_call": {
                "what": "the same client's first get_item, failing at the closed port",
                **{key: _median(runs["baseline_called"], key) for key in MEASURES},
            },
        },
        "code": str(args.root),
        "functions": {
            name: _function_result(spec, runs[name], baseline, attribution[name], args.root)
            for name, spec in functions.items()
        },
    }
    write_results(args.out, report)
    print(summary(report))
    print(f"\nwritten to {args.out}")
    return 0


MEASURES = (
    "cpu_ms",
    "wall_ms",
    "first_call_cpu_ms",
    "first_call_wall_ms",
    "process_cpu_ms",
    "process_wall_ms",
)


def _function_result(
    spec: Any,
    runs: list[dict[str, Any]],
    baseline: dict[str, float],
    importtime: dict[str, float],
    root: Path,
) -> dict[str, Any]:
    source = "\n".join(p.read_text() for p in sorted(spec.code_dir.glob("*.py")))
    heavy = heavy_imports(importtime)
    measured = {key: _median(runs, key) for key in MEASURES}
    return {
        "handler": f"{spec.code_dir.name}/{spec.handler}",
        "memory_mb": spec.memory_mb,
        "import_cpu_ms": measured["cpu_ms"],
        "import_wall_ms": measured["wall_ms"],
        "first_call_cpu_ms": measured["first_call_cpu_ms"],
        "first_call_wall_ms": measured["first_call_wall_ms"],
        "process_cpu_ms": measured["process_cpu_ms"],
        "process_wall_ms": measured["process_wall_ms"],
        "first_call_clients": runs[-1]["clients"],
        "first_call_outcome": runs[-1]["outcome"],
        "ratio_cpu": round(measured["first_call_cpu_ms"] / baseline["cpu_ms"], 2),
        "ratio_wall": round(measured["first_call_wall_ms"] / baseline["wall_ms"], 2),
        "ratio_import_cpu": round(measured["cpu_ms"] / baseline["cpu_ms"], 2),
        "heavy_imports_ms": heavy,
        "unneeded_heavy_imports": unneeded(heavy, source),
        "imports_it_must_not": imported_at_cold_start(spec, must_not_import(spec.code_dir.name), root),
    }


def summary(report: dict[str, Any]) -> str:
    b = report["baseline"]
    lines = [
        f"baseline (import boto3 + one client): {b['cpu_ms']} ms CPU, {b['wall_ms']} ms wall; with its first call "
        f"{b['with_one_call']['first_call_cpu_ms']} ms CPU (median of {report['repeat']}, "
        f"load {report['machine']['loadavg_1m']})",
        f"{'FUNCTION':32} {'CPU x':>6} {'IMPORT x':>8} {'WALL x':>6} {'CLIENTS':>7}  FIRST CALL  HEAVY IMPORTS (ms self time)",
    ]
    for name, r in sorted(report["functions"].items(), key=lambda kv: -kv[1]["ratio_cpu"]):
        heavy = ", ".join(
            f"{k} {v:g}" for k, v in sorted(r["heavy_imports_ms"].items(), key=lambda kv: -kv[1])[:5]
        )
        unwanted = [*r["unneeded_heavy_imports"], *r["imports_it_must_not"]]
        flag = f"  UNNEEDED: {', '.join(unwanted)}" if unwanted else ""
        lines.append(
            f"{name:32} {r['ratio_cpu']:6.2f} {r['ratio_import_cpu']:8.2f} {r['ratio_wall']:6.2f} "
            f"{r['first_call_clients']:7}  {r['first_call_outcome']:10}  {heavy}{flag}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
