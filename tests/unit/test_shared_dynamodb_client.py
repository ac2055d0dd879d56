"""One DynamoDB client per process and binding: every model, transaction and the idempotency store."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, os
os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
from chargenet.adapters.dynamodb import ChargerItem, PendingCallItem, SiteItem
from chargenet.adapters.idempotency import PowertoolsDeduplicator
from chargenet.adapters.tables import dynamodb_connection
from chargenet.composition.settings import bind_environment
tables = {"CHARGERS_TABLE": "Chargers", "PENDING_CALLS_TABLE": "Pending", "AWS_REGION": "eu-north-1"}
os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"
bind_environment(tables)
clients = [
    ChargerItem._get_connection().connection.client,
    SiteItem._get_connection().connection.client,  # another model of the same table
    PendingCallItem._get_connection().connection.client,
    PowertoolsDeduplicator("Idempotency")._store.client,
    dynamodb_connection().client,  # what the transactions write through
]
keys = SiteItem._get_connection().get_meta_table().hash_keyname
import boto3
# IoT Data, SNS... clients come from boto3's default session: the same botocore session
shared_session = boto3.DEFAULT_SESSION._session is dynamodb_connection().session
os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:2"  # same names, another stack
bind_environment(tables)
rebound = ChargerItem._get_connection().connection.client
print(json.dumps({
    "distinct_clients": len({id(c) for c in clients}),
    "region": clients[0].meta.region_name,
    "own_key_schema": bool(keys),
    "boto3_shares_the_session": shared_session,
    "rebound_to_new_client": rebound is not clients[0] and rebound.meta.endpoint_url.endswith(":2"),
}))
"""


def test_models_transactions_and_the_idempotency_store_share_one_client_per_binding() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT
    )
    assert json.loads(done.stdout) == {
        "distinct_clients": 1,
        "region": "eu-north-1",
        "own_key_schema": True,
        "boto3_shares_the_session": True,
        "rebound_to_new_client": True,
    }
