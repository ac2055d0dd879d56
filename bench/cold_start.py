"""Cold-start benchmark: each function's handler import and module-level initialisation.

For every function of template.yaml (chargenet_local.template `load(...).functions()`), a fresh
Python process with the function's template environment (as the local Lambda runner sets it:
the template's variables, AWS credentials and endpoints, AWS_LAMBDA_FUNCTION_NAME, the code
folder first on sys.path) imports the handler module and looks the handler up. The baseline,
in the same run and interleaved with the functions, is a process doing `import boto3` and
creating one DynamoDB client. Each is repeated N times; medians are reported:

* `import_cpu_ms`, `import_wall_ms`: CPU (time.process_time) and wall time of the import inside
  the process (the interpreter's own start-up, the same for all, is left out);
* `process_cpu_ms`, `process_wall_ms`: the whole process (getrusage of the child, wall clock);
* `ratio_cpu`, `ratio_wall`: the import over the baseline's, per function.

One more run per function with `python -X importtime` attributes the import time to heavy
packages (boto3, botocore, pynamodb, stripe, aws_xray_sdk, pydantic, ...), and the benchmark
flags functions that import stripe or the X-Ray SDK although their code does not use them.
No endpoint is contacted: AWS_ENDPOINT_URL points at a closed local port.

Usage: .venv/bin/python -m bench.cold_start [--repeat 7] [--out bench/results/cold_start.json]
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

from bench.harness import RESULTS, TEMPLATE, write_results

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
LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard port: nothing is contacted at import
    "AWS_ENDPOINT_URL_IOT_DATA_PLANE": "http://127.0.0.1:9",
}

CHILD = """
import json, sys, time
c0, w0 = time.process_time(), time.perf_counter()
{body}
print("COLDSTART " + json.dumps({{"cpu_ms": (time.process_time() - c0) * 1000,
                                  "wall_ms": (time.perf_counter() - w0) * 1000}}))
"""
BASELINE_BODY = "import boto3\nboto3.client('dynamodb')"


def handler_body(code_dir: Path, handler: str) -> str:
    module, function = handler.rsplit(".", 1)
    return f"sys.path.insert(0, {str(code_dir)!r})\nimport importlib\ngetattr(importlib.import_module({module!r}), {function!r})"


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


def _run(body: str, env: dict[str, str], importtime: bool = False) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", CHILD.format(body=body)]
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


def _environment(spec: Any) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    return {**keep, **spec.environment, **LOCAL_AWS, "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", help="function logical ids (default: all)")
    args = parser.parse_args(argv)
    from chargenet_local.template import load

    functions = load(
        TEMPLATE, region="us-east-1", overrides={"IotDataEndpoint": "http://127.0.0.1:9"}
    ).functions()
    if args.only:
        functions = {k: v for k, v in functions.items() if k in args.only}
    base_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")} | LOCAL_AWS
    bodies = {"baseline": (BASELINE_BODY, base_env)} | {
        name: (handler_body(spec.code_dir, spec.handler), _environment(spec))
        for name, spec in functions.items()
    }
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for round_ in range(args.repeat):  # interleaved: machine load hits the baseline and every function alike
        print(f"round {round_ + 1}/{args.repeat}", file=sys.stderr, flush=True)
        for name, (body, env) in bodies.items():
            runs[name].append(_run(body, env))
    attribution = {
        name: _run(body, env, importtime=True)["importtime"] for name, (body, env) in bodies.items()
    }
    baseline = {
        key: _median(runs["baseline"], key)
        for key in ("cpu_ms", "wall_ms", "process_cpu_ms", "process_wall_ms")
    }
    results: dict[str, Any] = {}
    for name, spec in functions.items():
        source = "\n".join(p.read_text() for p in sorted(spec.code_dir.glob("*.py")))
        heavy = heavy_imports(attribution[name])
        cpu, wall = _median(runs[name], "cpu_ms"), _median(runs[name], "wall_ms")
        results[name] = {
            "handler": f"{spec.code_dir.name}/{spec.handler}",
            "memory_mb": spec.memory_mb,
            "import_cpu_ms": cpu,
            "import_wall_ms": wall,
            "process_cpu_ms": _median(runs[name], "process_cpu_ms"),
            "process_wall_ms": _median(runs[name], "process_wall_ms"),
            "ratio_cpu": round(cpu / baseline["cpu_ms"], 2),
            "ratio_wall": round(wall / baseline["wall_ms"], 2),
            "heavy_imports_ms": heavy,
            "unneeded_heavy_imports": unneeded(heavy, source),
        }
    report = {
        "generated_by": "python -m bench.cold_start " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "repeat": args.repeat,
        "baseline": {
            "what": "import boto3 + boto3.client('dynamodb')",
            **baseline,
            "heavy_imports_ms": heavy_imports(attribution["baseline"]),
        },
        "functions": results,
    }
    write_results(args.out, report)
    print(summary(report))
    print(f"\nwritten to {args.out}")
    return 0


def summary(report: dict[str, Any]) -> str:
    b = report["baseline"]
    lines = [
        f"baseline (import boto3 + one client): {b['cpu_ms']} ms CPU, {b['wall_ms']} ms wall "
        f"(median of {report['repeat']}, load {report['machine']['loadavg_1m']})",
        f"{'FUNCTION':32} {'CPU x':>6} {'WALL x':>6}  HEAVY IMPORTS (ms self time)",
    ]
    for name, r in sorted(report["functions"].items(), key=lambda kv: -kv[1]["ratio_cpu"]):
        heavy = ", ".join(
            f"{k} {v:g}" for k, v in sorted(r["heavy_imports_ms"].items(), key=lambda kv: -kv[1])
        )
        flag = f"  UNNEEDED: {', '.join(r['unneeded_heavy_imports'])}" if r["unneeded_heavy_imports"] else ""
        lines.append(f"{name:32} {r['ratio_cpu']:6.2f} {r['ratio_wall']:6.2f}  {heavy}{flag}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
