"""Least privilege, tested: every function's role grants exactly what its code calls, scoped.

The template is read the way CloudFormation reads it (SAM transform, then intrinsics) by the
local stack's loader, so the roles checked here are the roles SAM deploys. EXPECTED_GRANTS is
the table derived from the adapters each handler wires (the comment on each line names the
calls): a new permission, or one dropped while the code still calls it, fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from chargenet_local.template import Template, load

ROOT = Path(__file__).resolve().parents[2]

Grant = tuple[str, str]  # (action, resource as a short name: logical id, index or topic)

# Managed policies SAM attaches, each with why it stays. Nothing else may be attached.
ALLOWED_MANAGED_POLICIES = {
    # logs:CreateLogStream/PutLogEvents: Lambda writes the function's own log group with them.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    # Tracing: Active. X-Ray has no resource-level permissions: PutTraceSegments needs "*".
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
# Wildcard resources that stay, with why. Only these (action, resource) pairs may use one.
ALLOWED_WILDCARDS: dict[Grant, str] = {
    ("iot:Publish", "topic/chargers/*/out"): "the backend answers whichever charger wrote",
    ("iot:CreateCertificateFromCsr", "*"): "IAM has no resource type for it: the certificate is new",
    # IoT authorizes AttachThingPrincipal on the certificate (its IAM action table), not the thing.
    ("iot:AttachThingPrincipal", "cert/*"): "a rotated or claimed certificate is attached to its thing",
    ("iot:AttachPolicy", "cert/*"): "the new certificate's id is known only once it is signed",
    ("iot:DescribeCertificate", "cert/*"): "the new certificate's id is known only once it is signed",
    ("iot:UpdateCertificate", "cert/*"): "the old certificate is deactivated after the new connects",
    ("iot:ListThingPrincipals", "thing/*"): "the thing is the charger that asked, any charger",
    ("iot:ListAttachedPolicies", "cert/*"): "a revoked certificate's policies are detached",
    ("iot:DetachPolicy", "cert/*"): "a revoked certificate's policies are detached",
    ("iot:DetachThingPrincipal", "cert/*"): "a revoked certificate is detached from its thing",
    ("iot:DescribeEndpoint", "*"): "IAM has no resource type for it",
    # Fleet provisioning: the thing is named by the claiming serial, known only at claim time.
    ("iot:CreateThing", "thing/*"): "a claim creates the thing of its serial",
    ("iot:DescribeThing", "thing/*"): "a claim creates the thing of its serial",
    ("iot:UpdateThing", "thing/*"): "a repeated claim updates the thing of its serial",
    # Firmware rollouts (OperatorCommandsFunction): the targets are whichever chargers the operator names.
    ("iot:CreateJob", "thing/*"): "a rollout's job targets the chosen chargers' things",
    ("iot:DescribeJobExecution", "thing/*"): "a rollout's execution is read on its charger's thing",
    ("iot:CreateJob", "job/firmware-*"): "each deployment is a new job, named firmware-<version>-<time>",
    ("iot:GetJobDocument", "job/firmware-*"): "the status reads every firmware job",
    ("iot:ListJobExecutionsForJob", "job/firmware-*"): "the status reads every firmware job",
    ("iot:ListJobs", "*"): "IAM has no resource type for it",
    # Objects under a prefix: a charger's uploads are new objects, a release's package a new key.
    **{
        (action, "DiagnosticsBucket/diagnostics/*"): "pre-signed URLs for each charger's uploads"
        for action in ("s3:PutObject", "s3:GetObject")
    },
    **{
        (action, "FirmwareBucket/firmware/*"): "any release's package, read only"
        for action in ("s3:GetObject", "s3:GetObjectVersion")
    },
    # A stream's label (its ARN's last part) is new whenever the stream is; the table is fixed.
    **{
        (f"dynamodb:{action}", f"{table}/stream/*"): "the stream trigger reads its table's stream"
        for action in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")
        for table in ("SessionsTable", "CdrsTable")
    },
}

# Every function writes to encrypted tables, queues or topics with the stack's key.
_KMS = {("kms:Decrypt", "DataKey"), ("kms:GenerateDataKey", "DataKey")}
# Failed asynchronous invocations and stream batches go to the dead-letter queue.
_DLQ = {("sqs:SendMessage", "IngestDeadLetterQueue")}
_ALERTS = {("sns:Publish", "AlertsTopic")}
_REPLY = {("iot:Publish", "topic/chargers/*/out")}  # IotDataChannel.send
_STRIPE_KEY = {("secretsmanager:GetSecretValue", "StripeApiKeySecret")}
# DynamoFaultStore: get, of_charger (index), save (a transaction: the fault and its history episode).
_FAULTS = {
    ("dynamodb:GetItem", "FaultsTable"),
    ("dynamodb:PutItem", "FaultsTable"),
    ("dynamodb:Query", "FaultsTable/index/by-charger"),
    ("dynamodb:PutItem", "HistoryTable"),
}

# DynamoPaymentStore: get, create/save (conditional puts), by_tag (index).
_PAYMENTS = {
    ("dynamodb:GetItem", "PaymentsTable"),
    ("dynamodb:PutItem", "PaymentsTable"),
    ("dynamodb:Query", "PaymentsTable/index/by-tag"),
}


def _on(table: str, *actions: str) -> set[Grant]:
    return {(f"dynamodb:{action}", table) for action in actions}


def _stream_of(table: str) -> set[Grant]:
    """What a stream trigger (an explicit event source mapping) needs of its table's stream."""
    return _on(f"{table}/stream/*", "DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")


EXPECTED_GRANTS: dict[str, set[Grant]] = {
    "OcppIngestFunction": {
        # registry: get, connectors, record_boot/seen/status/register, link_session (conditional updates)
        *_on("ChargersTable", "GetItem", "UpdateItem", "Query"),
        # action_of, resolve; add: the CertificateSigned a rotating charger is owed;
        # of_charger: an Unavailable read against the operator's ChangeAvailability
        *_on("PendingCallsTable", "GetItem", "PutItem", "UpdateItem", "Query"),
        *_on("SessionsTable", "GetItem", "PutItem", "UpdateItem"),  # get, open, save_facts
        ("dynamodb:ConditionCheckItem", "SessionsTable"),  # start: the session before is done
        *_on("SessionsTable/index/by-state", "Query"),  # unfinished_on_connector (a late status)
        *_on("SessionEventsTable", "PutItem", "Query"),  # append, events
        # append with a status's history entry (adapters.batch_writes.put_together)
        *_on("SessionEventsTable", "BatchWriteItem"),
        ("dynamodb:BatchWriteItem", "HistoryTable"),
        # allocate_transaction (counter update, conditional put, read back), record_orphan_stop;
        # resolve_orphan_end
        *_on("TransactionKeysTable", "GetItem", "PutItem", "UpdateItem", "DeleteItem"),
        *_on("TagsTable", "GetItem", "UpdateItem"),  # authorize, claim, release
        *_on("TariffsTable", "GetItem", "BatchGetItem"),  # in_force, session_tariff
        *_on("IdempotencyTable", "GetItem", "PutItem", "UpdateItem", "DeleteItem"),  # Powertools
        *_FAULTS,
        ("dynamodb:PutItem", "HistoryTable"),  # record_connector_status
        *_ALERTS,
        *_REPLY,
        # SignCertificate over the charger's own link (chargenet.adapters.iot_certificates)
        ("iot:CreateCertificateFromCsr", "*"),
        ("iot:AttachThingPrincipal", "cert/*"),
        ("iot:AttachPolicy", "cert/*"),
        ("iot:DescribeCertificate", "cert/*"),
        ("iot:UpdateCertificate", "cert/*"),
        ("iot:ListThingPrincipals", "thing/*"),
        *_KMS,
        *_DLQ,
    },
    "PresenceFunction": {
        *_on("ChargersTable", "UpdateItem"),  # apply_presence
        *_FAULTS,  # a reconnect resolves the offline fault
        *_ALERTS,
        *_KMS,
        *_DLQ,
    },
    "BillingFunction": {
        *_on("SessionsTable", "GetItem", "UpdateItem"),  # get, mark_billed
        *_on("SessionEventsTable", "Query"),  # events
        *_on("CdrsTable", "PutItem"),  # create (conditional)
        *_stream_of("SessionsTable"),  # BillingFunctionCompletedSessions
        *_KMS,
        *_DLQ,
    },
    "SessionSweepFunction": {
        *_on("SessionsTable/index/by-state", "Query"),  # in_state
        *_on("SessionsTable", "UpdateItem"),  # save_facts
        *_on("SessionEventsTable", "PutItem", "Query"),  # append, events
        *_KMS,
        *_DLQ,
    },
    "FaultSweepFunction": {
        *_on("ChargersTable", "Scan"),  # registry.list
        *_on("FaultsTable", "Scan"),  # watched
        *_on("SessionsTable/index/by-state", "Query"),  # in_state
        *_FAULTS,
        *_ALERTS,
        *_KMS,
        *_DLQ,
    },
    "PaymentsApiFunction": {
        *_on("ChargersTable", "GetItem", "Query"),  # the charger and its connectors on the pay page
        *_on("PendingCallsTable", "GetItem", "PutItem"),  # RemoteStart/Stop sent and awaited
        *_on("SessionsTable", "GetItem"),
        *_on("CdrsTable", "GetItem"),  # the receipt
        *_on("SessionEventsTable", "Query"),  # the running cost
        *_on("TagsTable", "PutItem", "UpdateItem"),  # the payment's one-start tag; subscriber tags
        *_on("TariffsTable", "GetItem", "BatchGetItem", "PutItem"),  # price shown; member tariff
        *_PAYMENTS,
        *_on("PaymentsTable/index/by-token", "Query"),  # the driver's session page
        *_on("PaymentEventsTable", "GetItem", "PutItem"),  # webhook event ids, applied once
        *_on("SubscribersTable", "GetItem", "PutItem"),
        *_ALERTS,
        *_STRIPE_KEY,
        ("secretsmanager:GetSecretValue", "StripeWebhookSecret"),
        *_REPLY,
        *_KMS,
    },
    "PaymentCaptureFunction": {
        *_on("CdrsTable", "GetItem"),
        *_stream_of("CdrsTable"),  # PaymentCaptureFunctionNewBillingRecords
        *_on("SessionsTable", "GetItem"),
        *_PAYMENTS,
        *_on("TagsTable", "PutItem"),  # the payment's tag retired
        *_STRIPE_KEY,
        *_KMS,
        *_DLQ,
    },
    "PaymentSweepFunction": {
        *_PAYMENTS,
        *_on("PaymentsTable/index/by-state", "Query"),  # open payments
        *_on("ChargersTable", "GetItem"),
        *_on("SessionsTable", "GetItem"),
        *_on("CdrsTable", "GetItem"),
        *_on("SessionEventsTable", "Query"),  # the running cost against the cap
        *_on("PendingCallsTable", "GetItem", "PutItem"),  # RemoteStart/Stop
        *_on("TagsTable", "PutItem"),
        *_STRIPE_KEY,
        *_REPLY,
        *_KMS,
        *_DLQ,
    },
    "SubscriptionUsageFunction": {
        *_on("CdrsTable", "GetItem"),
        *_stream_of("CdrsTable"),  # SubscriptionUsageFunctionNewBillingRecords
        *_on("SessionsTable", "GetItem"),
        *_on("SubscribersTable", "GetItem"),
        *_STRIPE_KEY,
        *_KMS,
        *_DLQ,
    },
    "OperatorApiFunction": {
        # DynamoOperatorViews: one Scan page per listing (chargers, faults, alerted faults); charger
        # get, connectors (Query on its key); fault get; a charger's faults (index)
        *_on("ChargersTable", "GetItem", "Query", "Scan"),
        # OperatorReports: the energy report's CDR page (Scan) and their chargers' sites
        # (BatchGetItem); a charger's timeline, its commands (Query on its key)
        *_on("ChargersTable", "BatchGetItem"),
        *_on("CdrsTable", "Scan"),
        *_on("PendingCallsTable", "Query"),
        *_on("FaultsTable", "Scan"),
        *_on("FaultsTable/index/by-charger", "Query"),
        # FaultTracker.acknowledge / resolve_by_operator / operator_change (exclude): get,
        # conditional save with its episode
        *_on("FaultsTable", "GetItem", "PutItem"),
        ("dynamodb:PutItem", "HistoryTable"),
        ("dynamodb:Query", "HistoryTable"),  # DynamoHistory.timeline, episodes (uptime)
        *_on("AuditTable", "PutItem", "Query"),  # DynamoAuditLog: record, of_day
        # DynamoSignOuts: signed_out_at (every request's edge), record (POST /ops/v1/sign-out)
        *_on("OperatorSignOutsTable", "GetItem", "PutItem"),
        *_ALERTS,  # resolving a paged fault tells whoever was paged
        ("secretsmanager:GetSecretValue", "OperatorCursorSecret"),  # SecretsManagerKey
        # CognitoOperatorDirectory: invite (create, add to the role's group), set_role (list the
        # user's groups, remove from the others, add), accounts (ListUsers, each one's groups),
        # remove (disable, then delete)
        *{
            (f"cognito-idp:{action}", "OperatorUserPool")
            for action in (
                "AdminCreateUser",
                "AdminAddUserToGroup",
                "AdminRemoveUserFromGroup",
                "AdminListGroupsForUser",
                "ListUsers",
                "AdminDisableUser",
                "AdminDeleteUser",
            )
        },
        *_KMS,
    },
    "OperatorChargersFunction": {
        # DynamoChargerRegistry: get, register, site_time_zone, set_site_time_zone,
        # record_revocation, record_certificate
        *_on("ChargersTable", "GetItem", "PutItem", "UpdateItem"),
        # revoke: the active sessions (index), each of the charger's refolded with its revocation event
        ("dynamodb:Query", "SessionsTable/index/by-state"),
        ("dynamodb:UpdateItem", "SessionsTable"),
        *_on("SessionEventsTable", "PutItem", "Query"),
        *_on("ProvisioningAllowListTable", "PutItem", "Scan"),  # DynamoAllowList: allow, page
        ("dynamodb:PutItem", "AuditTable"),  # DynamoAuditLog.record
        ("dynamodb:GetItem", "OperatorSignOutsTable"),  # DynamoSignOuts.signed_out_at (the edge)
        ("secretsmanager:GetSecretValue", "OperatorCursorSecret"),  # SecretsManagerKey
        # IotChargerIdentities: create_thing, issue, certificates_of, revoke, retire, broker;
        # IotClaimCertificates: issue (CreateCertificateFromCsr, AttachPolicy, else UpdateCertificate),
        # revoke (DescribeCertificate, ListAttachedPolicies, UpdateCertificate, DetachPolicy)
        ("iot:CreateThing", "thing/*"),
        ("iot:ListThingPrincipals", "thing/*"),
        ("iot:CreateCertificateFromCsr", "*"),
        ("iot:DescribeEndpoint", "*"),
        *{
            (f"iot:{action}", "cert/*")
            for action in (
                "AttachPolicy",
                "AttachThingPrincipal",
                "DetachThingPrincipal",
                "DescribeCertificate",
                "UpdateCertificate",
                "ListAttachedPolicies",
                "DetachPolicy",
            )
        },
        *_KMS,
    },
    "OperatorCommandsFunction": {
        ("dynamodb:GetItem", "ChargersTable"),  # the charger exists; its running version (status)
        # ChargerCommands: add (conditional put), get, time_out (conditional update); page_of_charger
        *_on("PendingCallsTable", "GetItem", "PutItem", "UpdateItem", "Query"),
        ("dynamodb:PutItem", "AuditTable"),  # DynamoAuditLog.record
        ("dynamodb:GetItem", "OperatorSignOutsTable"),  # DynamoSignOuts.signed_out_at (the edge)
        ("secretsmanager:GetSecretValue", "OperatorCursorSecret"),  # SecretsManagerKey
        *_REPLY,
        # S3DiagnosticsFiles: the upload URL (PUT), HEAD and the download URL (GET), one page
        ("s3:PutObject", "DiagnosticsBucket/diagnostics/*"),
        ("s3:GetObject", "DiagnosticsBucket/diagnostics/*"),
        ("s3:ListBucket", "DiagnosticsBucket"),
        # S3FirmwarePackages: HEAD of a release, of a forced package's version; one page. No write.
        ("s3:GetObject", "FirmwareBucket/firmware/*"),
        ("s3:GetObjectVersion", "FirmwareBucket/firmware/*"),
        ("s3:ListBucket", "FirmwareBucket"),
        # FirmwareJobs: thing_arns, create, executions
        ("iot:DescribeThing", "thing/*"),
        ("iot:CreateJob", "thing/*"),
        ("iot:DescribeJobExecution", "thing/*"),
        ("iot:CreateJob", "job/firmware-*"),
        ("iot:GetJobDocument", "job/firmware-*"),
        ("iot:ListJobExecutionsForJob", "job/firmware-*"),
        ("iot:ListJobs", "*"),
        ("iam:PassRole", "role/FirmwareJobsRole"),  # the job's presignedUrlConfig
        *_KMS,
    },
    # The console's files and config.json: no AWS call; only what every function has.
    "ConsoleFunction": {*_KMS},
    # Custom::ConsoleCallback: read the console client, write it back with its URLs.
    "ConsoleCallbackFunction": {
        ("cognito-idp:DescribeUserPoolClient", "OperatorUserPool"),
        ("cognito-idp:UpdateUserPoolClient", "OperatorUserPool"),
        *_KMS,
    },
    "OperatorPaymentsFunction": {
        ("dynamodb:GetItem", "ChargersTable"),  # the pay link's charger exists
        ("dynamodb:GetItem", "SessionsTable"),  # a session's payment; a CDR's session
        *_on("CdrsTable", "GetItem", "Scan"),  # a payment's CDR total; reconcile, one Scan page
        *_PAYMENTS,  # show, refund, settle; a session's payment by its tag
        ("dynamodb:Scan", "PaymentsTable"),  # DynamoPaymentViews.payments: one Scan page
        ("dynamodb:Query", "PaymentsTable/index/by-state"),  # the listing of one state
        *_on("TagsTable", "PutItem", "UpdateItem"),  # DynamoTagGate: register, set_status
        ("dynamodb:GetItem", "TariffsTable"),  # a plan's member tariff exists
        # plans, subscribers, invoice runs; one Scan page per listing; invoices by key (BatchGet)
        *_on("SubscribersTable", "GetItem", "PutItem", "Scan", "BatchGetItem"),
        ("dynamodb:PutItem", "AuditTable"),  # DynamoAuditLog.record
        ("dynamodb:GetItem", "OperatorSignOutsTable"),  # DynamoSignOuts.signed_out_at (the edge)
        *_ALERTS,  # a subscriber blocked by the invoicing run
        ("secretsmanager:GetSecretValue", "OperatorCursorSecret"),
        *_STRIPE_KEY,
        *_KMS,
    },
    "OperatorSessionsFunction": {
        ("dynamodb:GetItem", "ChargersTable"),  # a tariff assignment's charger exists
        # DynamoSessionStore: get; settle's refold (save_facts); page without a state (one Scan
        # page); peaks for the CSV export (one batch read per page)
        *_on("SessionsTable", "GetItem", "UpdateItem", "Scan", "BatchGetItem"),
        ("dynamodb:Query", "SessionsTable/index/by-state"),  # page of one state (one Query page)
        *_on("SessionEventsTable", "PutItem", "Query"),  # settle: append, events (refresh)
        ("dynamodb:Scan", "TransactionKeysTable"),  # orphan_page: one Scan page
        *_on("CdrsTable", "GetItem", "PutItem", "Scan"),  # DynamoCdrStore: get, create (credit), page
        *_on("TagsTable", "PutItem", "Scan"),  # DynamoTagDirectory: put, page
        # DynamoTariffBook: tariff (exists), store, assign; tariff_page, assignment_page
        *_on("TariffsTable", "GetItem", "PutItem", "Scan"),
        ("dynamodb:PutItem", "AuditTable"),  # DynamoAuditLog.record
        ("dynamodb:GetItem", "OperatorSignOutsTable"),  # DynamoSignOuts.signed_out_at (the edge)
        ("secretsmanager:GetSecretValue", "OperatorCursorSecret"),  # SecretsManagerKey
        *_KMS,
    },
    # Fleet provisioning's pre-provisioning hook: a serial is allowed once (conditional update).
    "ProvisioningHookFunction": {
        *_on("ProvisioningAllowListTable", "GetItem", "UpdateItem"),
        *_on("ChargersTable", "UpdateItem"),  # the registry record, in the claim's transaction
        *_KMS,
    },
    "SubscriptionInvoicingFunction": {
        *_on("SubscribersTable", "GetItem", "PutItem", "Scan"),
        *_on("TagsTable", "UpdateItem"),  # set_status: blocked or open again
        *_STRIPE_KEY,
        *_ALERTS,
        *_KMS,
        *_DLQ,
    },
}


@cache
def _template() -> Template:
    return load(ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _short(resource: str) -> str:
    """`arn:aws:dynamodb:r:a:table/T/index/I` -> `T/index/I`; key, queue, topic, secret -> its name."""
    if resource == "*":
        return resource
    path = re.sub(r"^arn:aws:[a-z0-9-]+:[^:]*:[^:]*:", "", resource)
    return re.sub(r"^(table/|key/|secret:)", "", path)


def _role_statements(role: str) -> Iterator[dict[str, Any]]:
    template = _template()
    for policy in template.resources[role]["Properties"].get("Policies", []):
        yield from template.resolve(policy["PolicyDocument"])["Statement"]


def _grants(function: str) -> set[Grant]:
    return _role_grants(_template().resources[function]["Properties"]["Role"]["Fn::GetAtt"][0])


def _role_grants(role: str) -> set[Grant]:
    grants = set()
    for statement in _role_statements(role):
        assert statement["Effect"] == "Allow", f"{role}: unexpected {statement['Effect']}"
        for action in _as_list(statement["Action"]):
            grants |= {(action, _short(resource)) for resource in _as_list(statement["Resource"])}
    return grants


def _functions() -> list[str]:
    return sorted(_template().of_type("AWS::Lambda::Function"))


def test_every_function_has_an_expected_grant_table():
    assert set(_functions()) == set(EXPECTED_GRANTS)


@pytest.mark.parametrize("function", sorted(EXPECTED_GRANTS))
def test_a_function_is_granted_exactly_what_its_code_calls(function: str):
    granted = _grants(function)
    assert not granted - EXPECTED_GRANTS[function], f"{function}: granted but not used"
    assert not EXPECTED_GRANTS[function] - granted, f"{function}: used but not granted"


@pytest.mark.parametrize("function", sorted(EXPECTED_GRANTS))
def test_no_wildcard_action_or_resource(function: str):
    for action, resource in _grants(function):
        assert "*" not in action, f"{function}: wildcard action {action}"
        assert "*" not in resource or (action, resource) in ALLOWED_WILDCARDS, (
            f"{function}: {action} on wildcard resource {resource}"
        )


@pytest.mark.parametrize("function", sorted(EXPECTED_GRANTS))
def test_only_the_listed_managed_policies_are_attached(function: str):
    role_ref = _template().resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    attached = set(_template().resources[role_ref]["Properties"].get("ManagedPolicyArns", []))
    assert attached <= ALLOWED_MANAGED_POLICIES, f"{function}: {attached - ALLOWED_MANAGED_POLICIES}"


def test_the_provisioning_role_applies_exactly_the_provisioning_templates_resources():
    """IoT assumes it for each claim: the serial's thing, the device's certificate, ChargerPolicy."""
    assert _role_grants("ProvisioningRole") == {
        ("iot:CreateThing", "thing/*"),
        ("iot:DescribeThing", "thing/*"),
        ("iot:UpdateThing", "thing/*"),  # a repeated claim of the same serial
        ("iot:DescribeCertificate", "cert/*"),
        ("iot:UpdateCertificate", "cert/*"),  # the template's certificate Status: ACTIVE
        ("iot:AttachPolicy", "cert/*"),
        ("iot:AttachThingPrincipal", "cert/*"),
        ("iot:GetPolicy", "policy/ChargerPolicy"),
    }
    for action, resource in _role_grants("ProvisioningRole"):
        assert "*" not in resource or (action, resource) in ALLOWED_WILDCARDS, (action, resource)
    assert "ManagedPolicyArns" not in _template().resources["ProvisioningRole"]["Properties"]


def test_iot_jobs_presign_only_firmware_packages_for_reading():
    """The role behind every pre-signed URL a firmware job hands a charger: nothing but the packages."""
    assert _role_grants("FirmwareJobsRole") == {
        ("s3:GetObject", "FirmwareBucket/firmware/*"),
        # A job's URL names the package's version id (firmware_jobs.presigned_url_placeholder).
        ("s3:GetObjectVersion", "FirmwareBucket/firmware/*"),
        ("kms:Decrypt", "DataKey"),
    }
    trust = _template().resources["FirmwareJobsRole"]["Properties"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "iot.amazonaws.com"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]


def test_a_stream_trigger_reads_its_own_tables_stream_and_no_other():
    mappings = _template().stream_mappings()
    assert {m.function for m in mappings} == {
        "BillingFunction",
        "PaymentCaptureFunction",
        "SubscriptionUsageFunction",
    }
    for mapping in mappings:
        stream_reads = {(a, r) for a, r in _grants(mapping.function) if "/stream/" in r}
        assert stream_reads == _stream_of(mapping.table), mapping.name


@pytest.mark.parametrize("function", sorted(EXPECTED_GRANTS))
def test_a_function_touches_only_tables_named_in_its_environment(function: str):
    """A grant on a table the code has no name for is a grant nobody uses."""
    environment = _template().functions()[function].environment
    named = {value for key, value in environment.items() if key.endswith("_TABLE")}
    granted = {r.split("/")[0] for a, r in _grants(function) if a.startswith("dynamodb:")}
    assert granted <= named, f"{function}: grants on {granted - named}"


@pytest.mark.parametrize("function", sorted(EXPECTED_GRANTS))
def test_secrets_are_read_only_from_secrets_manager_by_arn(function: str):
    template = _template()
    secrets = set(template.of_type("AWS::SecretsManager::Secret"))
    environment = template.functions()[function].environment
    for key, value in environment.items():
        assert not re.search(r"(sk|rk)_(test|live)_|whsec_", value), f"{function}: {key} holds a secret"
        if "SECRET" in key:
            assert key.endswith("_SECRET_ARN") and _short(value) in secrets, f"{function}: {key}={value}"
    read = {r for a, r in _grants(function) if a == "secretsmanager:GetSecretValue"}
    referenced = {_short(v) for k, v in environment.items() if k.endswith("_SECRET_ARN")}
    assert read == referenced, f"{function}: reads {read}, its environment names {referenced}"


def test_secrets_are_generated_never_written_into_the_template():
    for name, secret in _template().of_type("AWS::SecretsManager::Secret").items():
        assert "SecretString" not in secret["Properties"], name
        assert "GenerateSecretString" in secret["Properties"], name
    parameters = (ROOT / "template.yaml").read_text()
    assert not re.search(r"(sk|rk)_(test|live)_[A-Za-z0-9]|whsec_[A-Za-z0-9]", parameters)


def test_every_table_queue_topic_secret_and_log_group_is_encrypted_with_the_stack_key():
    template = _template()
    key_property = {
        "AWS::DynamoDB::Table": lambda p: p["SSESpecification"]["KMSMasterKeyId"],
        "AWS::SQS::Queue": lambda p: p["KmsMasterKeyId"],
        "AWS::SNS::Topic": lambda p: p["KmsMasterKeyId"],
        "AWS::SecretsManager::Secret": lambda p: p["KmsKeyId"],
        "AWS::Logs::LogGroup": lambda p: p["KmsKeyId"],
        "AWS::Lambda::Function": lambda p: p["KmsKeyArn"],
    }
    checked = 0
    for kind, key_of in key_property.items():
        for name, resource in template.of_type(kind).items():
            key = template.resolve(key_of(resource["Properties"]))
            assert _short(key) == "DataKey", f"{name} ({kind}) is encrypted with {key}"
            checked += 1
    assert checked > 30


def test_the_key_can_be_used_by_the_functions_and_services_that_write_encrypted_data():
    template = _template()
    for function in EXPECTED_GRANTS:
        assert _grants(function) >= _KMS, function
    error_role = template.resolve(template.resources["IotRuleErrorRole"]["Properties"]["Policies"])
    [dead_letter] = error_role
    grants = {
        (action, _short(resource))
        for s in dead_letter["PolicyDocument"]["Statement"]
        for action in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }
    assert grants == {*_DLQ, ("kms:GenerateDataKey", "DataKey"), ("kms:Decrypt", "DataKey")}
    key_policy = template.resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    services = {
        service
        for s in key_policy
        for service in _as_list(s["Principal"].get("Service", []))
        if "kms:Decrypt" in _as_list(s["Action"])
    }
    # SQS and SNS deliver to the encrypted queue/topic, IoT's error action writes the queue,
    # CloudWatch alarms publish to the encrypted alerts topic.
    assert services == {
        "sns.amazonaws.com",
        "sqs.amazonaws.com",
        "iot.amazonaws.com",
        "cloudwatch.amazonaws.com",
    }


def test_every_service_the_stack_key_trusts_acts_only_for_this_account():
    """A service principal in a key policy is every customer's use of that service: without
    aws:SourceAccount another account's alarm or topic could have the key used on its behalf."""
    template = _template()
    statements = template.resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s["Principal"]]
    assert services, "the key trusts no service: this test would prove nothing"
    for statement in services:
        condition = template.resolve(statement.get("Condition", {}))
        account = template.ref("AWS::AccountId")
        assert condition.get("StringEquals", {}).get("aws:SourceAccount") == account, statement["Sid"]


# ------------------------------------------------- firmware signing and storage
SIGNING_ROLE = "arn:aws:iam::123456789012:role/firmware-release"
OTHER_ROLE = "arn:aws:iam::123456789012:role/ops-admin"  # e.g. AdministratorAccess: kms:* and s3:* on "*"


def _with_signing_role() -> Template:
    return load(
        ROOT / "template.yaml",
        region="us-east-1",
        overrides={"IotDataEndpoint": "https://x", "FirmwareSigningRoleArn": SIGNING_ROLE},
    )


def _resource_policy_decision(
    statements: list[dict[str, Any]], principal: str, action: str, resource: str
) -> str:
    """A resource policy's word on one request by a principal of this account whose IAM policies allow
    everything (the worst case): "deny" (an explicit deny), else "allow". Only the condition
    operators these policies use are understood; any other fails the test rather than being ignored."""
    import fnmatch

    def matches(statement: dict[str, Any]) -> bool:
        actions = _as_list(statement["Action"])
        resources = _as_list(statement.get("Resource", "*"))
        if not any(fnmatch.fnmatchcase(action, a) for a in actions):
            return False
        if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            return False
        for operator, keys in statement.get("Condition", {}).items():
            for key, value in keys.items():
                assert (operator, key) in {
                    ("ArnNotEquals", "aws:PrincipalArn"),
                    ("Bool", "aws:SecureTransport"),
                }
                if operator == "ArnNotEquals" and principal in _as_list(value):
                    return False
                if operator == "Bool" and value == "false":
                    return False  # the request here is over TLS
        return True

    return "deny" if any(s["Effect"] == "Deny" and matches(s) for s in statements) else "allow"


@pytest.mark.parametrize(
    ("principal", "action", "decision"),
    [
        (SIGNING_ROLE, "kms:Sign", "allow"),
        (OTHER_ROLE, "kms:Sign", "deny"),  # kms:Sign on "*" in its IAM policy signs nothing
        ("arn:aws:iam::123456789012:root", "kms:Sign", "deny"),
        (OTHER_ROLE, "kms:GetPublicKey", "allow"),  # the key chargers pin is public
        (OTHER_ROLE, "kms:DescribeKey", "allow"),
        (OTHER_ROLE, "kms:PutKeyPolicy", "allow"),  # the account still administers the key
    ],
)
def test_only_the_signing_role_signs_firmware(principal: str, action: str, decision: str):
    template = _with_signing_role()
    statements = template.resolve(template.resources["FirmwareSigningKey"]["Properties"]["KeyPolicy"])[
        "Statement"
    ]
    assert _resource_policy_decision(statements, principal, action, "*") == decision
    allowed = {
        a
        for s in statements
        if s["Effect"] == "Allow" and s["Principal"] == {"AWS": SIGNING_ROLE}
        for a in _as_list(s["Action"])
    }
    assert allowed == {"kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"}


@pytest.mark.parametrize(
    ("principal", "action", "decision"),
    [
        (SIGNING_ROLE, "s3:PutObject", "allow"),
        (OTHER_ROLE, "s3:PutObject", "deny"),  # cannot swap a package
        (OTHER_ROLE, "s3:DeleteObject", "deny"),
        (OTHER_ROLE, "s3:DeleteObjectVersion", "deny"),  # nor remove the version a job pins
        (OTHER_ROLE, "s3:GetObject", "allow"),
    ],
)
def test_only_the_signing_role_writes_firmware_packages(principal: str, action: str, decision: str):
    template = _with_signing_role()
    policy = template.resolve(template.resources["FirmwareBucketPolicy"]["Properties"]["PolicyDocument"])
    package = template.get_att("FirmwareBucket", "Arn") + "/firmware/1.0.0/package"
    assert _resource_policy_decision(policy["Statement"], principal, action, package) == decision


def test_the_firmware_bucket_keeps_versions_for_jobs_to_pin():
    versioning = _template().resources["FirmwareBucket"]["Properties"]["VersioningConfiguration"]
    assert versioning == {"Status": "Enabled"}
