"""Every function is wired one way: its handler asks chargenet.composition for its services, and the
composition reads the function's environment and binds the table names, never an import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from chargenet.composition.ingest import IngestEnvironment
from chargenet.composition.subscriptions import SubscriptionEnvironment
from tests.unit.test_iam_policies import _template

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))
# Functions with no domain services to compose, each with why; they read their few settings themselves.
NO_SERVICES = {
    "console": "static files and config.json; the standard library only, for its cold start (docs/console.md)",
    "console_callback": "a CloudFormation custom resource: one Cognito client, no table, no domain",
}
COMPOSITION = ROOT / "layers" / "shared" / "chargenet" / "composition"


def _adapter_classes() -> set[str]:
    adapters = ROOT / "layers" / "shared" / "chargenet" / "adapters"
    trees = [ast.parse(path.read_text()) for path in adapters.glob("*.py")]
    return {node.name for tree in trees for node in tree.body if isinstance(node, ast.ClassDef)}


def _handler_module(function: str) -> ast.Module:
    return ast.parse((ROOT / "functions" / function / "app.py").read_text())


def _imports(tree: ast.Module) -> list[str]:
    modules = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    return modules


@pytest.mark.parametrize("function", sorted(set(FUNCTIONS) - set(NO_SERVICES)))
def test_a_handler_gets_its_services_from_its_composition_module_only(function: str) -> None:
    tree = _handler_module(function)
    imported = _imports(tree)

    compositions = [m for m in imported if m.startswith("chargenet.composition")]
    assert compositions, f"{function}: no chargenet.composition module"
    for module in compositions:
        assert (COMPOSITION / f"{module.split('.')[-1]}.py").is_file(), module
    assert not [m for m in imported if m.startswith("chargenet.adapters")], f"{function} imports adapters"
    # Nothing built from an adapter in the handler module, whatever it was imported through.
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    named |= {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not named & _adapter_classes(), f"{function} names adapter classes {named & _adapter_classes()}"
    # The environment is read by the composition's settings model, not by the handler.
    assert "os" not in imported and "environ" not in named, f"{function} reads the environment"


def test_every_template_function_has_a_handler_here() -> None:
    folders = {spec.code_dir.name for spec in _template().functions().values()}
    assert folders == set(FUNCTIONS)


def test_a_missing_variable_is_an_error_that_names_it() -> None:
    with pytest.raises(ValidationError) as raised:
        IngestEnvironment.model_validate({"IDEMPOTENCY_TABLE": "t", "MAX_FRAME_BYTES": "4096"})
    assert "HEARTBEAT_INTERVAL_S" in str(raised.value)


_PROBE = """
import json, os, sys
os.environ.update({"CHARGERS_TABLE": "from-env", "AWS_REGION": "eu-north-1"})
from chargenet.adapters.dynamodb import ChargerItem, DynamoChargerRegistry
from chargenet.adapters.tables import TableNotBound
result = {"at_import": ChargerItem.Meta.table_name}
try:
    DynamoChargerRegistry().get("CP-1")
except TableNotBound as error:
    result["unbound"] = str(error)
from chargenet.composition.settings import bind_environment
bind_environment({"CHARGERS_TABLE": "Chargers-1", "PAYMENTS_TABLE": "Payments-1", "AWS_REGION": "eu-north-1"})
from chargenet.adapters.payments_dynamodb import PaymentItem  # imported after the binding
result["bound"] = [ChargerItem.Meta.table_name, ChargerItem.Meta.region, PaymentItem.Meta.table_name]
print(json.dumps(result))
"""


def test_models_read_no_environment_at_import_and_fail_clearly_until_bound() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT
    )
    result = json.loads(done.stdout)

    assert result["at_import"] is None
    assert "ChargerItem" in result["unbound"] and "CHARGERS_TABLE" in result["unbound"]
    assert result["bound"] == ["Chargers-1", "eu-north-1", "Payments-1"]


_BUILD = """
import ast, importlib, inspect, json, os, sys
from pathlib import Path
from chargenet_local.template import load

root = Path(sys.argv[1])
base = dict(os.environ)
built = {}
for spec in load(root / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"}).functions().values():
    os.environ.clear()
    os.environ.update({**base, **spec.environment, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    sys.path.insert(0, str(spec.code_dir))
    handler = importlib.import_module("app")
    tree = ast.parse((spec.code_dir / "app.py").read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chargenet.composition."):
            composition = importlib.import_module(node.module)
            for alias in node.names:
                builder = getattr(composition, alias.name)
                if not callable(builder) or isinstance(builder, type):
                    continue
                if hasattr(builder, "cache_clear"):
                    builder.cache_clear()
                arguments = [getattr(handler, p) for p in inspect.signature(builder).parameters]
                builder(*arguments)
                names.append(alias.name)
    from chargenet.adapters.tables import bound_tables
    tables = bound_tables()
    built[spec.logical_id] = {"builders": names, "chargers": tables.chargers if tables else None}
    sys.path.remove(str(spec.code_dir))
    for module in [m for m in sys.modules if m in ("app", "payment_pages")]:
        del sys.modules[module]
print(json.dumps(built))
"""


def test_every_function_builds_its_services_from_its_template_environment() -> None:
    """What the local Lambda runtime does: the template's environment set, the handler imported, the
    services built on the first event (here, without one: the builders are called directly)."""
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, str(ROOT)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    built = json.loads(done.stdout)
    functions = _template().functions()

    assert set(built) == set(functions)
    for name, outcome in built.items():
        if functions[name].code_dir.name in NO_SERVICES:
            continue  # imported and started like the others; nothing to build
        assert outcome["builders"], name
        assert outcome["chargers"] == functions[name].environment.get("CHARGERS_TABLE"), name


@pytest.mark.parametrize(("days", "grace"), [(None, 3), ("", 3), ("0", 0), ("7", 7)])
def test_the_grace_period_is_the_templates_else_three_days(days: str | None, grace: int) -> None:
    environ = {} if days is None else {"SUBSCRIPTION_GRACE_DAYS": days}
    assert SubscriptionEnvironment.model_validate(environ).grace == timedelta(days=grace)


_REBIND_PROBE = """
import json, os
os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
from chargenet.adapters.dynamodb import ChargerItem
from chargenet.composition.settings import bind_environment
tables = {"CHARGERS_TABLE": "Chargers", "AWS_REGION": "eu-north-1"}
bind_environment({**tables, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
first = ChargerItem._get_connection()
same = ChargerItem._get_connection()
bind_environment({**tables, "AWS_ENDPOINT_URL": "http://127.0.0.1:2"})  # same names, another stack
print(json.dumps({"cached": first is same, "reconnected": ChargerItem._get_connection() is not first}))
"""


def test_a_new_binding_reconnects_models_even_to_tables_of_the_same_names() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _REBIND_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    assert json.loads(done.stdout) == {"cached": True, "reconnected": True}
