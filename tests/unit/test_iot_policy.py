"""The IoT policies evaluated, not only linted, and the local broker's ACL held to the same matrix.

Each case says what an identity tries and whether it must be allowed. The template's policy
is evaluated the way IoT Core does (policy variables substituted from the connection, IAM
wildcards in resource ARNs, the IsAttached condition, explicit denies first); the same
publish/receive cases are evaluated against the mosquitto ACL the local stack writes, so the
cloud policy and the local broker cannot drift apart. End-to-end checks on a live broker are
in tests/integration/test_broker_security.py.

Every AWS::IoT::Policy in the template must have its cases here: a new policy (a fleet
provisioning claim policy, say) is one entry in POLICY_CASES, with the identity it is
evaluated for in IDENTITIES.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from chargenet_local.broker import ACL, CLAIM_USER
from chargenet_local.template import Template, load

ROOT = Path(__file__).resolve().parents[2]
ME, OTHER = "CP-1", "CP-2"


@cache
def _template() -> Template:
    return load(ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"})


RULE = _template().parameters["IngestRuleName"]
OTHER_RULE = _template().parameters["PresenceRuleName"]
PROVISIONING = _template().parameters["ProvisioningTemplateName"]
CSR_TOPIC = "$aws/certificates/create-from-csr/json"
MY_JOBS, OTHER_JOBS = f"$aws/things/{ME}/jobs", f"$aws/things/{OTHER}/jobs"
PROVISION_TOPIC = f"$aws/provisioning-templates/{PROVISIONING}/provision/json"


@dataclass(frozen=True)
class Case:
    action: str  # connect (target: client id), publish/receive (a topic), subscribe (a topic filter)
    target: str
    allowed: bool
    attached: bool = True  # the certificate is attached to the thing it connects as

    @property
    def id(self) -> str:
        return f"{self.action} {self.target}{'' if self.attached else ' (unattached)'}"


@dataclass(frozen=True)
class Identity:
    broker_user: str  # the certificate's CN: mosquitto's user name
    thing: str | None  # iot:Connection.Thing.ThingName; None: no thing is attached to the certificate


IDENTITIES = {
    "ChargerPolicy": Identity(broker_user=ME, thing=ME),
    # A factory batch's claim certificate: no thing of its own until provisioning made one.
    "ProvisioningClaimPolicy": Identity(broker_user=CLAIM_USER, thing=None),
}

POLICY_CASES: dict[str, list[Case]] = {
    "ChargerPolicy": [
        Case("connect", ME, True),
        Case("connect", ME, False, attached=False),
        Case("connect", OTHER, False),
        Case("connect", "anything", False),
        Case("publish", f"$aws/rules/{RULE}/chargers/{ME}/in", True),
        Case("publish", f"$aws/rules/{RULE}/chargers/{ME}/in", False, attached=False),
        Case("publish", f"$aws/rules/{RULE}/chargers/{OTHER}/in", False),
        Case("publish", f"$aws/rules/{OTHER_RULE}/chargers/{ME}/in", False),
        Case("publish", f"$aws/rules/{RULE}_ocpp201/chargers/{ME}/in", True),  # the 2.0.1 rule
        Case("publish", f"$aws/rules/{RULE}_ocpp201/chargers/{OTHER}/in", False),
        Case("publish", f"chargers/{ME}/in", False),  # only through Basic Ingest
        Case("publish", f"chargers/{ME}/out", False),  # cannot answer itself as the backend
        Case("publish", f"chargers/{OTHER}/out", False),
        Case("publish", f"$aws/things/{ME}/shadow/update", False),
        Case("publish", f"$aws/things/{OTHER}/shadow/update", False),
        Case("publish", f"$aws/events/presence/connected/{OTHER}", False),
        Case("subscribe", f"chargers/{ME}/out", True),
        Case("subscribe", f"chargers/{OTHER}/out", False),
        Case("subscribe", "chargers/+/out", False),
        Case("subscribe", f"chargers/{ME}/#", False),
        Case("subscribe", "#", False),
        Case("subscribe", f"$aws/things/{ME}/shadow/#", False),
        Case("subscribe", "$aws/events/#", False),
        Case("receive", f"chargers/{ME}/out", True),
        Case("receive", f"chargers/{OTHER}/out", False),
        Case("receive", f"chargers/{OTHER}/in", False),
        Case("receive", f"$aws/things/{OTHER}/shadow/update/accepted", False),
        Case("receive", f"$aws/events/presence/connected/{OTHER}", False),
        Case("publish", CSR_TOPIC, False),  # a charger renews by SignCertificate, not by claim
        # IoT Jobs (firmware rollouts): its own executions only, and never speaking as IoT.
        Case("publish", f"{MY_JOBS}/start-next", True),
        Case("publish", f"{MY_JOBS}/firmware-0.2.0-1/update", True),
        Case("publish", f"{MY_JOBS}/firmware-0.2.0-1/update", False, attached=False),
        Case("publish", f"{OTHER_JOBS}/start-next", False),
        Case("publish", f"{OTHER_JOBS}/firmware-0.2.0-1/update", False),
        Case("publish", f"{MY_JOBS}/notify-next", False),
        Case("publish", f"{MY_JOBS}/start-next/accepted", False),
        Case("publish", f"{MY_JOBS}/firmware-0.2.0-1/update/accepted", False),
        Case("subscribe", f"{MY_JOBS}/notify-next", True),
        Case("subscribe", f"{MY_JOBS}/start-next/+", True),
        Case("subscribe", f"{MY_JOBS}/+/update/+", True),
        Case("subscribe", f"{OTHER_JOBS}/notify-next", False),
        Case("subscribe", "$aws/things/+/jobs/notify-next", False),
        Case("subscribe", f"{MY_JOBS}/#", False),
        Case("receive", f"{MY_JOBS}/notify-next", True),
        Case("receive", f"{MY_JOBS}/start-next/accepted", True),
        Case("receive", f"{MY_JOBS}/firmware-0.2.0-1/update/rejected", True),
        Case("receive", f"{OTHER_JOBS}/notify-next", False),
        Case("receive", f"{OTHER_JOBS}/start-next/accepted", False),
        Case("receive", f"{OTHER_JOBS}/firmware-0.2.0-1/update/accepted", False),
    ],
    "ProvisioningClaimPolicy": [
        Case("connect", "claim:batch-7", True),
        Case("connect", ME, False),  # never a charger's client id: no takeover with a claim
        Case("connect", "claim", False),
        Case("publish", CSR_TOPIC, True),
        Case("receive", f"{CSR_TOPIC}/accepted", True),
        Case("receive", f"{CSR_TOPIC}/rejected", True),
        Case("publish", PROVISION_TOPIC, True),
        Case("receive", f"{PROVISION_TOPIC}/accepted", True),
        Case("subscribe", f"{CSR_TOPIC}/+", True),
        Case("subscribe", f"{PROVISION_TOPIC}/+", True),
        Case("publish", "$aws/provisioning-templates/another-template/provision/json", False),
        Case("publish", f"$aws/rules/{RULE}/chargers/{ME}/in", False),
        Case("publish", f"chargers/{ME}/out", False),
        Case("receive", f"chargers/{ME}/out", False),
        Case("publish", f"$aws/things/{ME}/shadow/update", False),
        Case("subscribe", "#", False),
        Case("subscribe", "chargers/+/out", False),
    ],
}

# Where mosquitto's ACL is knowingly wider than the cloud policy, with why. The test asserts
# the difference is still there, so fixing it means deleting the entry.
LOCAL_BROKER_DIFFERENCES = {
    ("ChargerPolicy", f"publish $aws/rules/{OTHER_RULE}/chargers/{ME}/in"): (
        "the ACL allows any rule name ($aws/rules/+/...): the broker does not know the template's "
        "IngestRuleName; the local rules engine runs no other rule on a charger's topic"
    ),
    ("ProvisioningClaimPolicy", "publish $aws/provisioning-templates/another-template/provision/json"): (
        "the ACL allows any template name (+): locally there is one provisioning flow only"
    ),
}


# ---------------------------------------------------------------- IoT Core's evaluation
_ARN_PREFIX = "arn:aws:iot:us-east-1:123456789012:"
_RESOURCE_KIND = {"connect": "client", "publish": "topic", "receive": "topic", "subscribe": "topicfilter"}


def _substitute(text: str, identity: Identity, case: Case) -> str | None:
    """Policy variables from the connection; None when one cannot be resolved (no match)."""
    values = {"iot:ClientId": case.target if case.action == "connect" else identity.broker_user}
    if case.attached and identity.thing is not None:
        values["iot:Connection.Thing.ThingName"] = identity.thing
    names = re.findall(r"\$\{([^}]+)\}", text)
    if any(name not in values for name in names):
        return None
    return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)


def _conditions_hold(condition: dict[str, Any], identity: Identity, case: Case) -> bool:
    attached = case.attached and identity.thing is not None
    known = {"iot:Connection.Thing.IsAttached": str(attached).lower()}
    for operator, tests in condition.items():
        if operator != "Bool" or not set(tests) <= set(known):
            raise AssertionError(f"condition {operator} {tests}: teach the evaluator before relying on it")
        if any(known[key] != str(value).lower() for key, value in tests.items()):
            return False
    return True


def _statement_matches(statement: dict[str, Any], identity: Identity, case: Case) -> bool:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    if not any(fnmatch.fnmatchcase(f"iot:{case.action.capitalize()}", a) for a in actions):
        return False
    if not _conditions_hold(statement.get("Condition", {}), identity, case):
        return False
    requested = f"{_ARN_PREFIX}{_RESOURCE_KIND[case.action]}/{case.target}"
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    for resource in resources:
        pattern = _substitute(resource, identity, case)
        # IAM wildcards only: MQTT's + and # in a requested filter are literal characters here.
        if pattern is not None and fnmatch.fnmatchcase(requested, pattern.replace("[", "[[]")):
            return True
    return False


def iot_core_allows(policy: dict[str, Any], identity: Identity, case: Case) -> bool:
    statements = policy["Statement"]
    if any(s["Effect"] == "Deny" and _statement_matches(s, identity, case) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _statement_matches(s, identity, case) for s in statements)


def _policy(name: str) -> dict[str, Any]:
    return _template().resolve(_template().resources[name]["Properties"]["PolicyDocument"])


# ---------------------------------------------------------------- mosquitto's evaluation
def _mqtt_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: + one level, # the rest; wildcards never match a leading $ level."""
    filter_levels, topic_levels = topic_filter.split("/"), topic.split("/")
    if topic.startswith("$") and filter_levels[0] in {"+", "#"}:
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or (level != "+" and level != topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


def broker_allows(acl: str, user: str, case: Case) -> bool:
    """mosquitto's acl_file: `user` blocks for one user, `pattern` lines for all (%u, %c)."""
    needed = {"publish": "write", "receive": "read"}[case.action]
    current_user = None
    for line in acl.splitlines():
        words = line.split(maxsplit=2)
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            current_user = words[1]
            continue
        access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
        if words[0] == "topic" and current_user != user:
            continue
        if words[0] == "pattern":
            topic = topic.replace("%u", user).replace("%c", user)
        if needed in access and _mqtt_matches(topic, case.target):
            return True
    return False


def _all_cases() -> list[tuple[str, Case]]:
    return [(policy, case) for policy, cases in POLICY_CASES.items() for case in cases]


def _broker_cases() -> list[tuple[str, Case]]:
    """Connect and subscribe have no broker counterpart: mosquitto names a client by its
    certificate's CN whatever client id it sends, and checks reads per delivered message."""
    return [(p, c) for p, c in _all_cases() if c.action in {"publish", "receive"} and c.attached]


def test_every_iot_policy_in_the_template_has_cases():
    assert set(_template().of_type("AWS::IoT::Policy")) == set(POLICY_CASES) == set(IDENTITIES)


@pytest.mark.parametrize(("policy", "case"), _all_cases(), ids=lambda v: v.id if isinstance(v, Case) else v)
def test_iot_core_evaluates_the_template_policy_as_the_matrix_says(policy: str, case: Case):
    assert iot_core_allows(_policy(policy), IDENTITIES[policy], case) is case.allowed


@pytest.mark.parametrize(
    ("policy", "case"), _broker_cases(), ids=lambda v: v.id if isinstance(v, Case) else v
)
def test_the_local_broker_acl_grants_the_same_matrix(policy: str, case: Case):
    expected = case.allowed
    if (policy, case.id) in LOCAL_BROKER_DIFFERENCES:
        expected = not expected
    assert broker_allows(ACL, IDENTITIES[policy].broker_user, case) is expected


def test_the_known_local_differences_are_cases_of_the_matrix():
    ids = {(policy, case.id) for policy, case in _broker_cases()}
    assert set(LOCAL_BROKER_DIFFERENCES) <= ids


@pytest.mark.parametrize(
    ("case", "allowed"),
    [
        (Case("receive", f"chargers/{ME}/out", True), True),
        (Case("publish", f"$aws/rules/{RULE}/chargers/{ME}/in", True), True),
        (Case("receive", f"chargers/{OTHER}/out", False), False),
    ],
)
def test_the_evaluators_themselves_can_say_no(case: Case, allowed: bool):
    """Guard against an evaluator that answers True to everything (or False): the matrix is only
    as good as them."""
    assert (
        broker_allows("pattern read chargers/%u/out\npattern write $aws/rules/+/chargers/%u/in\n", ME, case)
        is allowed
    )
    deny_all = {"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "x"}]}
    assert iot_core_allows(deny_all, Identity(ME, ME), case) is False
