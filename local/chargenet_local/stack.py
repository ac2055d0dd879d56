"""The local stack: mosquitto, moto, the rules engine, the functions and the IoT Data endpoint.

`serve()` runs it in the foreground (the `chargenet local up` daemon); `up()`,
`down()` and `read_state()` are what the CLI calls.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chargenet_local import broker as broker_mod
from chargenet_local.alarms import AlarmEvaluator, create_alarms_and_dashboards
from chargenet_local.alert_sink import AlertSink, subscription_filters
from chargenet_local.console_login import PATHS as CONSOLE_LOGIN_PATHS
from chargenet_local.console_login import ConsoleLogin, console_environment, moto_authenticate
from chargenet_local.fleet_provisioning import FleetProvisioning, ProvisioningTemplateSpec
from chargenet_local.iot_jobs import IotJobs
from chargenet_local.lambda_runtime import InvocationFailure, LocalFunction, dead_letter_body
from chargenet_local.metrics import TRIM_EVERY_S, MetricSink, Periodic, QueueDepthSampler, trim_metrics
from chargenet_local.persistence import (
    PORTS_FILE,
    STATE_DIR,
    PortBook,
    RequestGate,
    Snapshotter,
    load_snapshot,
    restore_backends,
    state_dir,
)
from chargenet_local.pki import LocalCA
from chargenet_local.rules import Message, Rule, route
from chargenet_local.streams import StreamPoller, failure_message, trim_handled
from chargenet_local.stripe_local import API_KEY_SECRET, WEBHOOK_SECRET
from chargenet_local.template import Template, load

log = logging.getLogger("chargenet.local")
REGION = "us-east-1"
# About 20 s on an idle 2-core machine; over 2 minutes when it runs several stacks at once.
READY_TIMEOUT_S = 240
LOCAL_WORKERS = 2  # worker processes per function at most: the machine may have two cores
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
# CloudWatch evaluates alarms and SQS reports its metrics every minute; locally every 10 s
# (CHARGENET_SCHEDULE_EVERY_S speeds them up too, to at most every MONITOR_FASTEST_S: each pass
# reads every alarm's datapoints from moto), which changes no period's statistics.
MONITOR_EVERY_S = 10.0
MONITOR_FASTEST_S = 3.0
# CHARGENET_SCHEDULE_EVERY_S speeds up the sweeps, not the daily and monthly jobs: invoicing every
# second would only load the Stripe emulator (tests and demos run those jobs on demand).
SPEED_UP_SCHEDULES_UP_TO_S = 3600
# The product's webhook route, where the local Stripe delivers events.
STRIPE_WEBHOOK_PATH = "/stripe/webhook"
# Operator access: the template's pool and client, the API's base path, the first admin.
OPERATOR_POOL, OPERATOR_CLIENT = "OperatorUserPool", "OperatorUserPoolClient"
# The operator console (docs/console.md): its function, its client, where the API front serves it.
CONSOLE_FUNCTION, CONSOLE_CLIENT, CONSOLE_PATH = "ConsoleFunction", "OperatorConsoleClient", "/console/"
OPERATOR_API_PATH = "/ops/v1"
FIRST_ADMIN = "admin"
FIRST_ADMIN_EMAIL = "admin@chargenet.local"
FIRST_ADMIN_PASSWORD_FILE = "first-admin-password"
# What every stack's home holds once it has started: `reset` wipes only such a folder.
_HOME_MARKERS = ("stack.log", "ca", STATE_DIR)


class StackNotRunning(RuntimeError):
    pass


class StackState(BaseModel):
    """What a running stack tells its clients (`chargenet local status --json`)."""

    pid: int
    status: str  # starting | ready
    region: str
    home: str
    moto_url: str = ""
    iot_data_url: str = ""
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 0
    broker_pid: int = 0  # SIGHUP makes mosquitto re-read the CRL
    broker_control_url: str = ""  # broker restarts (chargenet_local.broker.restart_broker)
    ca_path: str = ""
    ingest_rule: str = ""
    charger_policy: str = ""
    tables: dict[str, str] = {}
    queues: dict[str, str] = {}
    topics: dict[str, str] = {}
    buckets: dict[str, str] = {}  # bucket names by logical id
    secrets: dict[str, str] = {}  # secret ARNs by logical id
    api_url: str = ""  # the template's HTTP API routes (chargenet_local.api_front)
    stripe_api_base: str = ""  # Stripe's API for the stripe library (chargenet_local.checkout)
    default_time_zone: str = "UTC"  # the template's DefaultTimeZone (DEFAULT_TIME_ZONE of the functions)
    checkout_url: str = ""  # the hosted checkout pages: <checkout_url><cs_test_...>
    localstripe_url: str = ""  # localstripe itself, behind stripe_api_base
    provisioning_template: str = ""  # fleet provisioning by claim (chargenet_local.fleet_provisioning)
    # The functions' Stripe base: the fault proxy in front of stripe_api_base, and its control URL
    # (chargenet_local.stripe_faults); unarmed it passes everything through.
    stripe_proxy_url: str = ""
    stripe_faults_url: str = ""
    # Operator sign-in (OperatorUserPool in moto's Cognito) and the operator API behind OperatorJwt.
    operator_pool_id: str = ""
    operator_client_id: str = ""
    operator_api_url: str = ""  # api_url + OPERATOR_API_PATH
    console_client_id: str = ""  # OperatorConsoleClient in moto's Cognito
    console_url: str = ""  # api_url + CONSOLE_PATH; sign-in by chargenet_local.console_login

    def aws_environment(self) -> dict[str, str]:
        """Environment that points boto3 and pynamodb at this stack."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ENDPOINT_URL_IOT_DATA_PLANE": self.iot_data_url,
        }

    def stripe_environment(self) -> dict[str, str]:
        """Points the product's Stripe client at the local front, through the fault proxy (unset in
        the cloud: api.stripe.com)."""
        base = self.stripe_proxy_url or self.stripe_api_base
        return {"STRIPE_API_BASE": base} if base else {}


# On one machine log lines cost nothing and show a newcomer what happens: the functions log at
# INFO here, where the template's default (WARNING) keeps the cloud's CloudWatch Logs bill down.
LOCAL_PARAMETER_DEFAULTS = {"LogLevel": "INFO"}


def parameter_overrides() -> dict[str, str]:
    """Template parameters from CHARGENET_PARAMETERS ("Name=value Name2=value2", as `sam deploy
    --parameter-overrides` takes them): tests and demos shorten grace periods this way."""
    pairs = os.environ.get("CHARGENET_PARAMETERS", "").split()
    try:
        given = dict(pair.split("=", 1) for pair in pairs)
    except ValueError:
        raise ValueError(f"CHARGENET_PARAMETERS must be Name=value pairs, got {pairs!r}") from None
    return {**LOCAL_PARAMETER_DEFAULTS, **given}


def default_home() -> Path:
    return Path(os.environ.get("CHARGENET_HOME", Path.cwd() / ".local")).resolve()


def default_template() -> Path:
    return Path(os.environ.get("CHARGENET_TEMPLATE", Path.cwd() / "template.yaml")).resolve()


def _state_path(home: Path) -> Path:
    return home / "stack.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_state(home: Path) -> StackState:
    path = _state_path(home)
    if not path.exists():
        raise StackNotRunning(
            f"the local stack is not running (no {path}); start it with `chargenet local up`"
        )
    state = StackState.model_validate_json(path.read_text())
    if not _alive(state.pid):
        raise StackNotRunning(f"the local stack (pid {state.pid}) is gone; run `chargenet local up` again")
    return state


def _alive(pid: int) -> bool:
    try:
        # When this process started the stack, reap it: a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its own parent (init) reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Dead, not yet reaped by its parent (another process that started the stack, a test run):
    kill(pid, 0) still answers for it. Linux's /proc tells; elsewhere it counts as alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


# ------------------------------------------------------------------ the CLI side
def up(home: Path, template: Path, daemon: Sequence[str] | None = None) -> StackState:
    """Start the stack as a background process and wait until it is ready.

    `daemon`: the command that serves it, `python -m chargenet_local serve` unless given (a
    benchmark's own, which installs its counters first: bench/cost_counts.py).
    """
    try:
        return read_state(home)
    except StackNotRunning:
        pass
    home.mkdir(parents=True, exist_ok=True)
    _state_path(home).unlink(missing_ok=True)
    log_file = (home / "stack.log").open("a")
    serve = ["-m", "chargenet_local", "serve", "--home", str(home), "--template", str(template)]
    process = subprocess.Popen(
        list(daemon) if daemon else [sys.executable, *serve],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited during start-up; see {home / 'stack.log'}")
        try:
            state = read_state(home)
            if state.status == "ready":
                return state
        except (StackNotRunning, ValueError):
            pass
        time.sleep(0.2)
    _kill_group(process.pid)  # the daemon leads its session: its broker and workers go with it
    raise RuntimeError(
        f"the local stack did not become ready in {READY_TIMEOUT_S}s; see {home / 'stack.log'}"
    )


def down(home: Path, timeout_s: float = 30) -> bool:
    """Stop the stack; False when it was not running."""
    try:
        state = read_state(home)
    except StackNotRunning:
        _state_path(home).unlink(missing_ok=True)
        return False
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(state.pid):
        _kill_group(state.pid)
    _state_path(home).unlink(missing_ok=True)
    return True


class NotAStackHome(ValueError):
    pass


def reset(home: Path) -> bool:
    """Stop the stack and wipe all it keeps in `home` (its data, the CA, the broker's files, the
    first admin's password, the chargers' credentials, the logs): the next `up` is a new stack, on
    the same ports (its console's and API's URLs stay). False when there was nothing to wipe.
    Refuses a folder that is not a stack's home."""
    if not home.exists() or not any(home.iterdir()):
        return False
    if not any((home / marker).exists() for marker in _HOME_MARKERS):
        raise NotAStackHome(f"{home} is not a local stack's home (no {' or '.join(_HOME_MARKERS)})")
    down(home)
    kept = state_dir(home) / PORTS_FILE
    for entry in [*home.iterdir(), *state_dir(home).glob("*")]:
        if entry.is_dir() and not entry.is_symlink():
            if entry != state_dir(home):
                shutil.rmtree(entry)
        elif entry != kept:
            entry.unlink(missing_ok=True)
    return True


def _kill_group(pid: int) -> None:
    """Kill the daemon and everything it started; `up` makes it a session (and group) leader."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # not a group leader: a daemon started by hand (`python -m chargenet_local`)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------- the daemon side
@dataclass
class _RuleTarget:
    rule: Rule
    function: LocalFunction
    error_queue_url: str | None


class LocalStack:
    def __init__(self, home: Path, template_path: Path) -> None:
        self.home = home
        self.template_path = template_path
        self.ca = LocalCA(home / "ca")
        self._stopping = threading.Event()
        self._presence_versions: dict[str, int] = {}
        self._presence_lock = threading.Lock()
        self._functions: list[LocalFunction] = []
        self._pollers: list[StreamPoller] = []
        self._targets: list[_RuleTarget] = []
        self._monitors: list[Periodic] = []
        self._fleet_provisioning: FleetProvisioning | None = None  # if the template provisions by claim
        self._iot_jobs: IotJobs | None = None
        # What the last run kept (chargenet_local.persistence): None for a new stack.
        self._saved = load_snapshot(home)
        self._ports = PortBook(home)
        self._gate = RequestGate()
        self._resources: dict[str, dict[str, str]] = {}
        self._snapshots: Snapshotter | None = None

    def serve(self) -> None:
        state = StackState(pid=os.getpid(), status="starting", region=REGION, home=str(self.home))
        self._write(state)
        os.environ.update({**LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": REGION})
        self.ca.ensure()
        self._start_moto(state)
        self._start_localstripe(state)
        self._start_broker(state)
        self._start_iot_data(state)
        # The API's port is chosen now: the functions' PUBLIC_BASE_URL (Stripe's redirects) is its URL.
        api_port = self._ports.take("api")
        self._api_url = f"http://127.0.0.1:{api_port}"
        overrides = {
            "PublicBaseUrl": f"http://127.0.0.1:{api_port}",
            **parameter_overrides(),
            "IotDataEndpoint": state.iot_data_url,
        }
        template = load(self.template_path, region=REGION, overrides=overrides)
        self._create_resources(template, state)
        self._start_checkout(state)
        self._start_functions_and_rules(template, state)
        self._start_api(template, state, api_port)
        self._start_fleet_provisioning(template, state)
        self._start_iot_jobs(state)
        self._snapshots = Snapshotter(self.home, self._gate, self._durable_extras)
        self._snapshots.start()
        state.status = "ready"
        self._write(state)
        log.info("local stack ready: %s", state.model_dump_json())
        signal.signal(signal.SIGTERM, lambda *_: self._stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self._stopping.set())
        # The main thread restarts the broker when asked: it outlives mosquitto, as it must.
        self.broker_control.serve_until(self._stopping)
        self._shutdown()

    def _write(self, state: StackState) -> None:
        tmp = _state_path(self.home).with_suffix(".tmp")
        tmp.write_text(state.model_dump_json(indent=2))
        tmp.replace(_state_path(self.home))

    def _start_moto(self, state: StackState) -> None:
        from chargenet_local import moto_dynamodb, moto_iot
        from chargenet_local.moto_server import MotoServer, cache_moto_service_list

        moto_dynamodb.apply()  # a Query reads its partition, not the whole table
        # Certificates moto's IoT issues or retires are the local CA's and the broker's CRL's.
        broker_folder = self.home / "broker"
        moto_iot.apply(
            self.ca,
            lambda: broker_mod.reload_crl(state.broker_pid, broker_folder),
            lambda client_id: broker_mod.evict(
                client_id, folder=broker_folder, port=state.mqtt_port, ca=self.ca.cert_path
            ),
        )
        if self._saved is not None:
            restore_backends(self._saved["backends"])
        cache_moto_service_list()
        # Every request passes the gate, which pauses them for a snapshot (chargenet_local.persistence).
        self._moto = MotoServer(self._gate, self._ports.take("moto"))
        self._moto.start()
        state.moto_url = self._moto.url

    def _start_localstripe(self, state: StackState) -> None:
        """Started early: it comes up while the broker and the resources do (`_start_checkout` waits)."""
        from chargenet_local.stripe_local import LocalStripe

        self.localstripe = LocalStripe(
            self._ports.take("localstripe"),
            self.home / "localstripe.log",
            state_dir(self.home) / "localstripe.pickle",
        )
        self.localstripe.start()
        state.localstripe_url = self.localstripe.url

    def _start_checkout(self, state: StackState) -> None:
        from chargenet_local.checkout import CheckoutFront

        self.localstripe.wait_ready()
        api_key = self._secret_value(state, API_KEY_SECRET) or "sk_test_local_stack"
        self.checkout = CheckoutFront(state.localstripe_url, api_key, port=self._ports.take("checkout"))
        if self._saved is not None:
            self.checkout.restore(self._saved["extras"]["checkout"])
        self.checkout.start()
        state.stripe_api_base, state.checkout_url = self.checkout.url, self.checkout.page_url
        self._start_stripe_faults(state)

    def _start_stripe_faults(self, state: StackState) -> None:
        from chargenet_local.stripe_faults import StripeFaultProxy

        self.stripe_faults = StripeFaultProxy(self.checkout.url)
        self.stripe_faults.start()
        state.stripe_proxy_url, state.stripe_faults_url = (
            self.stripe_faults.url,
            self.stripe_faults.control_url,
        )

    def _create_first_admin(self, state: StackState) -> None:
        """User `admin` in group admin, with a random permanent password that only the 0600 file
        in the stack's home holds (never logged, never in stack.json)."""
        cognito = _client("cognito-idp", state)
        password = first_admin_password()
        pool = state.operator_pool_id
        cognito.admin_create_user(
            UserPoolId=pool,
            Username=FIRST_ADMIN,
            UserAttributes=[
                {"Name": "email", "Value": FIRST_ADMIN_EMAIL},
                {"Name": "email_verified", "Value": "true"},
            ],
            MessageAction="SUPPRESS",
        )
        cognito.admin_set_user_password(
            UserPoolId=pool, Username=FIRST_ADMIN, Password=password, Permanent=True
        )
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=FIRST_ADMIN, GroupName="admin")
        write_private(self.home / FIRST_ADMIN_PASSWORD_FILE, password + "\n")

    def _start_api(self, template: Template, state: StackState, port: int) -> None:
        from chargenet_local.api_front import ApiFront, JwtAuthorizer, cloud_jwks_url

        def jwks_url(issuer: str) -> str:
            """moto serves each pool's keys at <moto>/<pool id>/.well-known/jwks.json."""
            if issuer.startswith("https://cognito-idp."):
                return f"{state.moto_url}/{issuer.rstrip('/').rsplit('/', 1)[-1]}/.well-known/jwks.json"
            return cloud_jwks_url(issuer)

        functions = {f.spec.logical_id: f.invoke for f in self._functions}
        self.api = ApiFront(template.http_routes(), functions, port, JwtAuthorizer(jwks_url))
        self.api.start()
        state.api_url = self.api.url
        if state.operator_pool_id:
            state.operator_api_url = state.api_url + OPERATOR_API_PATH
        if state.console_client_id:
            self._serve_console_login(state)
        # Stripe delivers to the product's webhook route, signed with the secret it verifies with.
        if webhook_secret := self._secret_value(state, WEBHOOK_SECRET):
            self.checkout.webhooks.add(f"{state.api_url}{STRIPE_WEBHOOK_PATH}", webhook_secret)

    def _serve_console_login(self, state: StackState) -> None:
        """Cognito's managed login has no moto counterpart: the stand-in answers on the API's origin."""
        state.console_url = state.api_url + CONSOLE_PATH
        authenticate = moto_authenticate(_client("cognito-idp", state), state.console_client_id)
        login = ConsoleLogin(state.console_client_id, state.console_url, authenticate)
        self.api.local_pages.update(dict.fromkeys(CONSOLE_LOGIN_PATHS, login.handle))

    def _start_fleet_provisioning(self, template: Template, state: StackState) -> None:
        spec = ProvisioningTemplateSpec.from_template(template)
        if spec is None:
            return
        functions = {f.spec.logical_id: f for f in self._functions}
        folder = self.home / "broker"
        provisioning = FleetProvisioning(
            spec,
            ca=self.ca,
            iot=_client("iot", state),
            dynamodb=_client("dynamodb", state),
            allow_list_table=state.tables["ProvisioningAllowListTable"],
            invoke_hook=functions[spec.hook_function].invoke if spec.hook_function else None,
            publish=self.backend.publish,
            reload_crl=lambda: broker_mod.reload_crl(state.broker_pid, folder),
            template_arn=template.arn("iot", f"provisioningtemplate/{spec.name}"),
        )
        for topic in provisioning.request_topics:
            self.backend.subscribe(topic, provisioning.on_message)
        self._fleet_provisioning = provisioning
        state.provisioning_template = spec.name

    def _start_iot_jobs(self, state: StackState) -> None:
        """IoT Jobs' device MQTT API over the jobs moto's IoT holds in this process."""
        from botocore.config import Config
        from moto.iot.models import iot_backends

        account = _client("sts", state).get_caller_identity()["Account"]
        # SigV4, as the cloud pre-signs: S3 requires it for KMS-encrypted objects.
        s3 = _client("s3", state, Config(signature_version="s3v4"))
        jobs = IotJobs(
            backend=lambda: iot_backends[account][state.region], s3=s3, publish=self.backend.publish
        )
        jobs.attach()
        for topic in jobs.request_topics:
            self.backend.subscribe(topic, self._gate.gated(jobs.on_message))
        self._iot_jobs = jobs

    @staticmethod
    def _secret_value(state: StackState, logical_id: str) -> str | None:
        arn = state.secrets.get(logical_id)
        if arn is None:
            return None
        return str(_client("secretsmanager", state).get_secret_value(SecretId=arn)["SecretString"])

    def _start_broker(self, state: StackState) -> None:
        folder = self.home / "broker"
        server_cert, server_key = self.ca.issue_with_key("localhost", server=True, folder=folder)
        backend_cert, backend_key = self.ca.issue_with_key(
            broker_mod.BACKEND_USER, server=False, folder=folder
        )
        state.mqtt_port = self._ports.take("mqtt")
        state.ca_path = str(self.ca.cert_path)
        self.broker = broker_mod.Broker(
            folder,
            port=state.mqtt_port,
            ca=self.ca.cert_path,
            crl=self.ca.crl_path,
            cert=server_cert,
            key=server_key,
            stamp_principals=True,  # the rules' principal(): which certificate published
        )
        state.broker_pid = self.broker.start(self._on_presence)
        from chargenet_local.mqtt import BackendConnection

        self.backend = BackendConnection(
            port=state.mqtt_port, ca=self.ca.cert_path, cert=backend_cert, key=backend_key
        )
        _retry(self.backend.connect, attempts=50, delay_s=0.1)
        self.broker_control = broker_mod.BrokerControl(lambda down_s: self._restart_broker(state, down_s))
        self.broker_control.start()
        state.broker_control_url = self.broker_control.url

    def _restart_broker(self, state: StackState, down_s: float) -> int:
        """mosquitto down for `down_s` and back; returns once the stack's own connection is back too."""
        connections = self.backend.connections
        state.broker_pid = self.broker.restart(down_s)
        self._write(state)  # the CLI's CRL reloads signal the new pid
        self.backend.wait_reconnected(connections, timeout_s=broker_mod.RESTART_TIMEOUT_S)
        return state.broker_pid

    def _start_iot_data(self, state: StackState) -> None:
        from chargenet_local.iot_data import IotDataEndpoint

        self.iot_data = IotDataEndpoint(self.backend.publish, port=self._ports.take("iot-data"))
        self.iot_data.start()
        state.iot_data_url = self.iot_data.url

    def _create_resources(self, template: Template, state: StackState) -> None:
        from chargenet_local.aws_resources import create_all

        kept = self._saved["extras"] if self._saved is not None else {"resources": {}, "physical_ids": {}}
        template.physical_ids.update(kept["physical_ids"])  # the kept pools' ids, for Ref
        created = create_all(template, state.moto_url, existing=kept["resources"])
        self._resources = created
        self._physical_ids = dict(template.physical_ids)
        state.tables, state.queues, state.topics = created["tables"], created["queues"], created["topics"]
        state.buckets, state.secrets = created["buckets"], created["secrets"]
        state.charger_policy = next(iter(created["iot_policies"]), "")
        state.operator_pool_id = created["user_pools"].get(OPERATOR_POOL, "")
        state.operator_client_id = created["user_pools"].get(OPERATOR_CLIENT, "")
        state.console_client_id = created["user_pools"].get(CONSOLE_CLIENT, "")
        # The first admin is created with its pool: a kept pool keeps its admin and password file.
        if state.operator_pool_id and state.operator_pool_id not in kept["physical_ids"].values():
            self._create_first_admin(state)
        self._queues = state.queues
        self._sqs = _client("sqs", state)
        self.alert_sink = AlertSink(self.home, self._sqs, _client("sns", state))
        filters = subscription_filters(template)
        for topic, topic_arn in state.topics.items():
            self.alert_sink.subscribe(topic_arn, filters.get(topic))
        self.alert_sink.start()
        self._start_monitoring(template, state)

    def _start_monitoring(self, template: Template, state: StackState) -> None:
        """CloudWatch's part: metrics from functions and queues, the template's alarms evaluated."""
        override = os.environ.get("CHARGENET_SCHEDULE_EVERY_S")
        every_s = max(float(override), MONITOR_FASTEST_S) if override else MONITOR_EVERY_S
        cloudwatch = _client("cloudwatch", state)
        self.metrics = MetricSink(cloudwatch)
        self.metrics.start()
        if self._saved is None:  # kept alarms keep their state and history
            create_alarms_and_dashboards(template, cloudwatch)
        sampler = QueueDepthSampler(self._sqs, state.queues.values(), self.metrics)
        account = _client("sts", state).get_caller_identity()["Account"]
        evaluator = AlarmEvaluator(_client("cloudwatch", state), _client("sns", state), state.region)
        self._monitors = [
            Periodic("queue-metrics", every_s, sampler.sample),
            Periodic("alarm-evaluation", every_s, lambda: evaluator.evaluate_all(time.time())),
            Periodic("retention", TRIM_EVERY_S, lambda: self._trim_history(account, state)),
        ]
        for monitor in self._monitors:
            monitor.start()

    def _trim_history(self, account: str, state: StackState) -> None:
        """What moto would keep for ever and nothing reads again: old metrics, handled stream records."""
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.dynamodb.models import dynamodb_backends

        handled: dict[str, int] = {}  # by table: the last record all its mappings have handled
        for poller in self._pollers:
            positions = [int(sequence) for sequence in poller.positions().values()]
            table = state.tables[poller.spec.table]
            handled[table] = min(handled.get(table, sys.maxsize), max(positions, default=-1))
        with self._gate.request(writes=True):  # not in the middle of a snapshot
            trim_metrics(cloudwatch_backends[account][state.region], datetime.now(UTC))
            tables = dynamodb_backends[account][state.region]
            for table, up_to in handled.items():
                trim_handled(tables.get_table(table), up_to)

    def _start_functions_and_rules(self, template: Template, state: StackState) -> None:
        functions = {}
        for name, spec in template.functions().items():
            # Cloud endpoints are swapped for the stack's; everything else is the template's.
            environment = {
                **spec.environment,
                **state.aws_environment(),
                **state.stripe_environment(),
                "AWS_LAMBDA_FUNCTION_NAME": name,
                # moto sends no e-mail: an operator's invitation (its temporary password) would
                # reach no one, so here the operator API hands it to the inviting admin instead.
                # Only this stack sets it; template.yaml never does (the cloud e-mails it).
                "CHARGENET_LOCAL_INVITATIONS": "true",
            }
            if name == CONSOLE_FUNCTION:  # signs in at the stand-in login, not Cognito's domain
                environment.update(console_environment(self._api_url))
            dlq_url = self._queues.get(spec.dead_letter_queue or "")
            functions[name] = LocalFunction(
                spec,
                environment,
                lambda failure, url=dlq_url: self._dead_letter(url, failure),
                on_invocation=self.metrics.record_invocation,
                # A function the template allows one at a time (the sweeps) runs one at a time here.
                workers=min(LOCAL_WORKERS, spec.reserved_concurrency or LOCAL_WORKERS),
            )
        self._functions = list(functions.values())
        for started in [future for function in self._functions for future in function.warm()]:
            started.result()
        state.ingest_rule = template.parameters["IngestRuleName"]
        state.default_time_zone = template.parameters["DefaultTimeZone"]
        for rule in template.rules():
            self._targets.append(
                _RuleTarget(
                    Rule.parse(rule.name, rule.sql),
                    functions[rule.function],
                    self._queues.get(rule.error_queue or ""),
                )
            )
        self._start_stream_mappings(template, functions, state)
        self._start_schedules(template, functions)
        # Basic Ingest publishes arrive stamped with the publisher's certificate id (broker.py).
        self.backend.subscribe(broker_mod.STAMPED_RULES_FILTER, self._dispatch_stamped)
        for target in self._targets:
            if not target.rule.topic_filter.startswith("$"):
                self.backend.subscribe(target.rule.topic_filter, self.dispatch)

    def _start_stream_mappings(
        self, template: Template, functions: dict[str, LocalFunction], state: StackState
    ) -> None:
        dynamodb, streams = _client("dynamodb", state), _client("dynamodbstreams", state)
        positions = self._saved["extras"]["stream_positions"] if self._saved is not None else {}
        for spec in template.stream_mappings():
            queue_url = self._queues.get(spec.on_failure_queue or "")
            poller = StreamPoller(
                spec,
                streams=streams,
                stream_arn=dynamodb.describe_table(TableName=spec.table)["Table"]["LatestStreamArn"],
                invoke=functions[spec.function].invoke,
                on_failure=lambda batch, url=queue_url: self._send_failure(url, batch),
                positions=positions.get(spec.name, {}),
            )
            poller.start()
            self._pollers.append(poller)

    def _start_schedules(self, template: Template, functions: dict[str, LocalFunction]) -> None:
        """EventBridge schedules; CHARGENET_SCHEDULE_EVERY_S runs them all faster (demos, tests)."""
        override = os.environ.get("CHARGENET_SCHEDULE_EVERY_S")
        for spec in template.schedules():
            fast = override and spec.every_s <= SPEED_UP_SCHEDULES_UP_TO_S
            every = float(override) if fast else spec.every_s
            function = functions[spec.function]
            threading.Thread(target=self._tick, args=(spec.name, every, function), daemon=True).start()

    def _tick(self, name: str, every_s: float, function: LocalFunction) -> None:
        while not self._stopping.wait(every_s):
            event = {
                "source": "aws.events",
                "detail-type": "Scheduled Event",
                "resources": [name],
                "detail": {},
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            function.invoke_async(event)

    def _send_failure(self, queue_url: str | None, batch: dict[str, Any]) -> None:
        log.error("stream batch failed after retries: %s", batch["requestContext"])
        if queue_url:
            self._sqs.send_message(QueueUrl=queue_url, MessageBody=failure_message(batch))

    # --------------------------------------------------------------- rules
    def _dispatch_stamped(self, topic: str, payload: bytes) -> None:
        principal, published = broker_mod.split_principal(topic)
        self.dispatch(published, payload, principal=principal)

    def dispatch(
        self, topic: str, payload: bytes, client_id: str | None = None, principal: str | None = None
    ) -> None:
        """A publish reached IoT: run every rule it matches, as the rules engine does."""
        targets = list(self._targets)
        matched, rule_topic = route([t.rule for t in targets], topic)
        # mosquitto does not tell subscribers the publisher; the topic names the charger.
        client = client_id or _client_from_topic(rule_topic)
        message = Message(rule_topic, payload, client, int(time.time() * 1000), principal)
        for target in targets:
            if target.rule not in matched:
                continue
            try:
                event = target.rule.evaluate(message)
                if event is not None:
                    target.function.invoke_async(event)
            except Exception as exc:  # the action could not run: the rule's error action
                self._rule_error(target, message, exc)

    def _rule_error(self, target: _RuleTarget, message: Message, error: Exception) -> None:
        log.error("rule %s failed: %s", target.rule.name, error)
        if target.error_queue_url:
            body = {
                "ruleName": target.rule.name,
                "topic": message.topic,
                "clientId": message.client_id,
                "base64OriginalPayload": base64.b64encode(message.payload).decode(),
                "failures": [
                    {
                        "failedAction": "LambdaAction",
                        "failedResource": target.function.spec.logical_id,
                        "errorMessage": str(error),
                    }
                ],
            }
            self._sqs.send_message(QueueUrl=target.error_queue_url, MessageBody=json.dumps(body))

    def _dead_letter(self, queue_url: str | None, failure: InvocationFailure) -> None:
        log.error("%s failed after retries: %s", failure.function, failure.error.splitlines()[0])
        if queue_url:
            self._sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=dead_letter_body(failure),
                MessageAttributes={
                    "ErrorMessage": {"DataType": "String", "StringValue": failure.error[:1000]},
                    "FunctionName": {"DataType": "String", "StringValue": failure.function},
                },
            )

    def _on_presence(self, change: broker_mod.PresenceChange) -> None:
        """mosquitto saw a connect/disconnect: publish IoT's lifecycle event to the rules."""
        with self._presence_lock:
            version = self._presence_versions.get(change.client_id, 0) + 1
            self._presence_versions[change.client_id] = version
        kind = "connected" if change.connected else "disconnected"
        event: dict[str, Any] = {
            "clientId": change.client_id,
            "timestamp": int(time.time() * 1000),
            "eventType": kind,
            "sessionIdentifier": f"{change.client_id}-{version}",
            "principalIdentifier": change.client_id,
            "versionNumber": version,
        }
        if not change.connected:
            event["disconnectReason"] = change.reason
        if self._targets:
            self.dispatch(
                f"$aws/events/presence/{kind}/{change.client_id}",
                json.dumps(event).encode(),
                change.client_id,
            )

    def _durable_extras(self) -> dict[str, Any]:
        """What the stack keeps beside moto's backends, read while moto is paused."""
        return {
            "resources": self._resources,
            "physical_ids": self._physical_ids,
            "stream_positions": {poller.spec.name: poller.positions() for poller in self._pollers},
            "checkout": self.checkout.saved(),
        }

    def _shutdown(self) -> None:
        log.info("local stack stopping")
        # Functions first, while the broker and moto can still serve what is in flight.
        self._targets.clear()
        for front in (self.broker_control, self.api, self.stripe_faults, self.checkout, self.localstripe):
            try:
                front.stop()
            except Exception as exc:  # keep stopping the rest
                log.warning("while stopping: %s", exc)
        if self._fleet_provisioning is not None:
            self._fleet_provisioning.stop()
        if self._iot_jobs is not None:
            self._iot_jobs.stop()
        for poller in self._pollers:
            poller.stop()
        for monitor in self._monitors:
            monitor.stop()
        self.alert_sink.stop()
        for function in self._functions:
            function.close(wait=False)  # every pool winds down at once; the waits below overlap
        steps = [f.close for f in self._functions] + [self.metrics.stop]
        if self._snapshots is not None:  # after the functions: it holds all they wrote
            steps.append(self._snapshots.stop)
        steps += [self.backend.disconnect, self.iot_data.stop, self.broker.stop, self._moto.stop]
        for step in steps:
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                log.warning("while stopping: %s", exc)
        _state_path(self.home).unlink(missing_ok=True)


def first_admin_password() -> str:
    """Random, and within OperatorUserPool's policy (14+ characters, upper, lower, digit, symbol)."""
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(24))
    return body + secrets.choice(string.ascii_uppercase) + secrets.choice(string.ascii_lowercase) + "7-"


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from its creation, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


def _client_from_topic(topic: str) -> str:
    parts = topic.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "chargers" else ""


def _client(service: str, state: StackState, config: Any = None) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name=state.region,
        endpoint_url=state.moto_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=config,
    )


def _retry(step: Any, *, attempts: int, delay_s: float) -> None:
    for attempt in range(attempts):
        try:
            step()
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(delay_s)
