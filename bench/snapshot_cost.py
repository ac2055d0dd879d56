"""What a local stack snapshot costs (chargenet_local.persistence): how long it holds moto's
requests (the pickling, done while they wait), how large the file is, how long `up` takes to read it.

Either a fleet's registry made here: moto in this process with `template.yaml`'s resources, then
`--chargers N` chargers as provisioning leaves them (thing, certificate attached, registry item),
or `--snapshot FILE`: a stack's own `<home>/state/moto.pickle` (a demo's, a test's), timed as is.

    .venv/bin/python -m bench.snapshot_cost --chargers 500
    .venv/bin/python -m bench.snapshot_cost --snapshot .local/state/moto.pickle
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from chargenet_local.persistence import dumps, served_backends

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 7


def fleet_backends(chargers: int, folder: Path) -> dict[str, Any]:
    """moto's backends with the template's resources and `chargers` chargers provisioned with
    certificates of a local CA in `folder`."""
    import boto3
    from moto.server import ThreadedMotoServer

    from chargenet_local.aws_resources import create_all
    from chargenet_local.pki import LocalCA
    from chargenet_local.stack import REGION, free_port
    from chargenet_local.template import load

    os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    overrides = {"PublicBaseUrl": "http://127.0.0.1:1", "IotDataEndpoint": "http://127.0.0.1:2"}
    create_all(load(ROOT / "template.yaml", region=REGION, overrides=overrides), endpoint)
    iot = boto3.client("iot", region_name=REGION, endpoint_url=endpoint)
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    ca = LocalCA(folder / "ca").ensure()
    for number in range(chargers):
        charger_id = f"CP-{number:06d}"
        iot.create_thing(thingName=charger_id)
        pem = ca.issue_with_key(charger_id, server=False, folder=folder / "chargers")[0].read_text()
        certificate = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
        iot.attach_thing_principal(thingName=charger_id, principal=certificate["certificateArn"])
        iot.attach_policy(policyName="ChargerPolicy", target=certificate["certificateArn"])
        item = {"charger_id": {"S": charger_id}, "sk": {"S": "META"}, "site": {"S": "SITE-1"}}
        dynamodb.put_item(TableName="ChargersTable", Item=item)
    server.stop()
    return {"backends": served_backends(), "extras": {}}


def measure(content: dict[str, Any]) -> dict[str, Any]:
    pauses = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        data = dumps(content)
        pauses.append(time.perf_counter() - started)
    started = time.perf_counter()
    pickle.loads(data)
    return {
        "bytes": len(data),
        "pause_ms_median": round(statistics.median(pauses) * 1000, 1),
        "pause_ms_max": round(max(pauses) * 1000, 1),
        "restore_ms": round((time.perf_counter() - started) * 1000, 1),
        "bytes_by_service": {service: len(dumps(b)) for service, b in content["backends"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--chargers", type=int, help="a registry of this many chargers, made here")
    source.add_argument("--snapshot", type=Path, help="a stack's state/moto.pickle")
    args = parser.parse_args()
    if args.snapshot:
        content = pickle.loads(args.snapshot.read_bytes())  # a stack's own file
    else:
        with tempfile.TemporaryDirectory() as folder:
            content = fleet_backends(args.chargers, Path(folder))
    print(json.dumps({"chargers": args.chargers, "snapshot": str(args.snapshot or ""), **measure(content)}))


if __name__ == "__main__":
    main()
