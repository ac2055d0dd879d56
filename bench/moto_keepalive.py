"""moto behind werkzeug's dev server (a new connection per call) or waitress (kept alive): the
same SDK calls against both, in the same run, servers in processes of their own.

Each server runs as the stack's daemon ran it: moto patched (chargenet_local.moto_dynamodb), every
request through the snapshot gate (chargenet_local.persistence). The client makes `--calls`
`put_item`/`get_item` calls, alternately, on `--threads` threads sharing one boto3 client (a
function worker's). Rounds alternate between the servers so that a change of the machine's load
hits both; the figures are each server's median round. Per server: calls/s, the client's and the
server's CPU per call (process CPU time, all threads), and the connections the client opened
(sockets urllib3 made).

    .venv/bin/python -m bench.moto_keepalive --calls 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, write_results

SERVERS = ("werkzeug", "waitress")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def serve(kind: str, port: int) -> None:
    """The server `kind` on `port` until this process's stdin closes."""
    from chargenet_local import moto_dynamodb
    from chargenet_local.moto_server import MotoServer, cache_moto_service_list
    from chargenet_local.persistence import RequestGate

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    moto_dynamodb.apply()
    cache_moto_service_list()
    gate = RequestGate()
    if kind == "werkzeug":  # as stack.py served moto before chargenet_local.moto_server
        from moto.server import ThreadedMotoServer

        old = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        old.start()
        assert old._server is not None
        old._server.app = gate.wrap(old._server.app)
        stop = old.stop
    else:
        new = MotoServer(gate, port)
        new.start()
        stop = new.stop
    print("ready", flush=True)
    sys.stdin.read()
    stop()


@contextmanager
def server_process(kind: str) -> Iterator[tuple[int, str]]:
    from chargenet_local.stack import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.moto_keepalive", "--serve", kind, "--port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the {kind} server did not start")
    try:
        yield process.pid, f"http://127.0.0.1:{port}"
    finally:
        process.stdin.close()
        process.wait(30)


def cpu_s(pid: int) -> float:
    """User and system CPU of process `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


@contextmanager
def connections_opened() -> Iterator[list[int]]:
    """Counts the TCP connections this process opens meanwhile: botocore's connection (urllib3's)
    makes each socket in `_new_conn`, for a new pooled connection and for one the server closed."""
    from botocore.awsrequest import AWSHTTPConnection as HTTPConnection

    opened = [0]
    new_socket = HTTPConnection._new_conn

    def counted(self: HTTPConnection) -> Any:
        opened[0] += 1
        return new_socket(self)

    HTTPConnection._new_conn = counted  # type: ignore[method-assign]
    try:
        yield opened
    finally:
        HTTPConnection._new_conn = new_socket  # type: ignore[method-assign]


def one_round(kind: str, calls: int, threads: int) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    with server_process(kind) as (pid, url):
        dynamodb = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(max_pool_connections=threads),
        )
        table = f"bench-{uuid.uuid4().hex[:8]}"
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        def work(worker: int) -> None:
            for n in range(calls // threads):
                key = {"pk": {"S": f"w{worker}-{n // 2}"}}
                if n % 2:
                    dynamodb.get_item(TableName=table, Key=key)
                else:
                    dynamodb.put_item(TableName=table, Item={**key, "kwh": {"N": str(n)}})

        with connections_opened() as opened:
            server_before, client_before, started = cpu_s(pid), time.process_time(), time.perf_counter()
            workers = [threading.Thread(target=work, args=(worker,)) for worker in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - started
            client_cpu, server_cpu = time.process_time() - client_before, cpu_s(pid) - server_before
    made = calls // threads * threads
    return {
        "calls_per_s": made / elapsed,
        "client_cpu_ms_per_call": client_cpu * 1000 / made,
        "server_cpu_ms_per_call": server_cpu * 1000 / made,
        "connections_opened": opened[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "moto_keepalive.json")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SERVERS}
    for _ in range(args.rounds):
        for kind in SERVERS:
            rounds[kind].append(one_round(kind, args.calls, args.threads))
    medians = {
        kind: {field: round(statistics.median(r[field] for r in runs), 3) for field in runs[0]}
        for kind, runs in rounds.items()
    }
    old, new = medians["werkzeug"], medians["waitress"]
    results = {
        "calls": args.calls,
        "threads": args.threads,
        "rounds": args.rounds,
        "load_average": os.getloadavg(),
        "median_round": medians,
        "waitress_over_werkzeug": {field: round(new[field] / old[field], 2) for field in old if old[field]},
        "rounds_run": rounds,
    }
    write_results(args.out, results)
    print(f"{'server':<10} {'calls/s':>9} {'client ms/call':>15} {'server ms/call':>15} {'connections':>12}")
    for kind, figures in medians.items():
        print(
            f"{kind:<10} {figures['calls_per_s']:>9.0f} {figures['client_cpu_ms_per_call']:>15.3f}"
            f" {figures['server_cpu_ms_per_call']:>15.3f} {figures['connections_opened']:>12.0f}"
        )
    print(f"load average {os.getloadavg()}; {args.out}")


if __name__ == "__main__":
    main()
