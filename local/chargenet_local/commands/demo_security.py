"""The demo's security part: a certificate rotation, a signed firmware rollout and a tampered image.

Six chargers of their own site, so the rollout's split is the same whatever `--chargers` the
demo runs with (the subset is a hash of release and charger id). Everything goes through the
operator commands' own code: `chargenet charger rotate` on the first charger before it
connects (the command acts as the charger's shim, which must not be running then), then
`chargenet firmware publish` of a release and of a second one that an attacker who can write
the firmware bucket tampers with, `firmware deploy` of the release to part of the site and of
the tampered one to a charger left out, and `firmware status`. The chargers pin the operator
key the first publish made; each picked one verifies, installs, reboots and reports the new
version in its BootNotification; the one sent the tampered image refuses it and stays on its
factory firmware.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chargenet_cli import charger_cmd, firmware_cmd
from chargenet_cli.errors import CliError
from chargenet_local.stack import StackState

SITE = "SITE-DEMO-S"
# Not CP-…: the demo's fleet listing is every CP- charger.
CHARGERS = tuple(f"DEMO-S-{n:03d}" for n in range(1, 7))
ROTATED = CHARGERS[0]
RATED_POWER_W = 22_000
# What the demo's SimulatedChargers say they are in their BootNotification: the releases are for them
# (the signed statement names vendor and model, and a charger refuses a release for another).
FOR_DEMO_CHARGERS = ("--charge-point-vendor", "chargenet", "--charge-point-model", "SimCharger")
# SimulatedCharger's factory firmware: what every demo charger boots with.
FACTORY_VERSION = "0.1.0"
RELEASE = "0.2.0"
TAMPERED_RELEASE = "0.3.0"
# The hash picks three of these six chargers for 0.2.0 at 30 %.
ROLLOUT_PERCENT = 30
DONE_STATES = frozenset({"installed", "refused", "failed"})
WAIT_S = 60
Say = Callable[[str], None]


@dataclass(frozen=True)
class Rotation:
    """What `charger rotate` changed, and when."""

    old_id: str
    old_status: str
    new_id: str
    at: dt.datetime


def run_security(state: StackState, say: Say) -> str:
    """Rotate, publish, roll out and refuse on the security site's chargers; the report section."""
    home = Path(state.home)
    credentials = _provision(state)
    say(f"security: {len(CHARGERS)} chargers at {SITE}; rotating the certificate of {ROTATED}")
    rotation = _rotate(home, say)
    say(f"security: firmware {RELEASE} and {TAMPERED_RELEASE} signed with the operator key")
    _publish(state, say)
    say(f"security: connecting {len(CHARGERS)} chargers that pin the operator's public key")
    return asyncio.run(_connected(home, credentials, rotation, say))


def _provision(state: StackState) -> list[Any]:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry
    from chargenet_cli.provisioning import charger_dir, provision
    from chargenet_shim.credentials import ChargerCredentials

    registry = DynamoChargerRegistry()
    for charger_id in CHARGERS:
        if registry.get(charger_id) is None:
            provision(state, charger_id, site_id=SITE, rated_power_w=RATED_POWER_W)
    return [ChargerCredentials.load(charger_dir(state, charger_id)) for charger_id in CHARGERS]


def _rotate(home: Path, say: Say) -> Rotation:
    from chargenet.domain.clock import utc_now
    from chargenet_cli.operator_api import for_profile
    from chargenet_cli.operator_profile import local_profile
    from chargenet_cli.provisioning import certificates_of

    api = for_profile(local_profile(home))  # signed in as the first admin, as the demo runs
    old_id, at = _active(certificates_of(api, ROTATED)["certificates"]), utc_now()
    say("  " + _chargenet(home, "charger", "rotate", ROTATED))
    after = certificates_of(api, ROTATED)["certificates"]
    status = {c["certificate_id"]: c["status"] for c in after}
    rotation = Rotation(old_id, status.get(old_id, "missing"), _active(after), at)
    say(
        f"  {ROTATED}: certificate {rotation.old_id[:12]}... -> {rotation.new_id[:12]}..., "
        f"the old one {rotation.old_status}"
    )
    return rotation


def _active(certificates: list[dict[str, str]]) -> str:
    active = [c["certificate_id"] for c in certificates if c["status"] == "ACTIVE"]
    if len(active) != 1:
        raise CliError(f"security: {ROTATED} has {len(active)} active certificates, not one")
    return active[0]


def _publish(state: StackState, say: Say) -> None:
    home = Path(state.home)
    s3, bucket = firmware_cmd.firmware_s3(), firmware_cmd.firmware_bucket(state)
    with tempfile.TemporaryDirectory() as folder:
        for version in (RELEASE, TAMPERED_RELEASE):
            if firmware_cmd.stored_release(s3, bucket, version) is not None:
                continue  # the demo run again on a kept stack: a version names one image for good
            image = Path(folder) / f"firmware-{version}.bin"
            image.write_bytes(b"\x7fELF chargenet demo firmware " * 400 + version.encode())
            published = _chargenet(
                home, "firmware", "publish", str(image), "--version", version, *FOR_DEMO_CHARGERS
            )
            say("  " + published.splitlines()[0])
    _tamper(s3, bucket, TAMPERED_RELEASE)
    say(f"  an attacker who can write the bucket patches {TAMPERED_RELEASE}'s image, leaving its metadata")


def _tamper(s3: Any, bucket: str, version: str) -> None:
    """The stored package's image altered, its signed manifest and object metadata left as they were."""
    from chargenet_firmware_format import pack, unpack

    key = firmware_cmd.package_key(version)
    stored = s3.get_object(Bucket=bucket, Key=key)
    manifest, image = unpack(stored["Body"].read())
    patched = image.replace(b"demo firmware", b"demo backdoor")
    s3.put_object(Bucket=bucket, Key=key, Body=pack(manifest, patched), Metadata=stored["Metadata"])


async def _connected(home: Path, credentials: list[Any], rotation: Rotation, say: Say) -> str:
    """With the site's chargers connected: the rotated one back, both deployments to their end."""
    from chargenet_firmware_format import OperatorKey
    from chargenet_shim.sim.fleet import run_sessions
    from chargenet_shim.sim.simclock import SimClock

    key = OperatorKey.from_pem((home / "firmware" / firmware_cmd.PUBLIC_KEY_FILE).read_bytes())
    sections: list[str] = []

    async def while_connected(chargers: list[Any]) -> None:
        if len(chargers) != len(CHARGERS):
            raise CliError(f"security: {len(CHARGERS) - len(chargers)} chargers did not come up")
        for charger in chargers:
            charger.firmware_key = key
        back = await asyncio.to_thread(_back_since, rotation.at)
        say(f"  {ROTATED} connected again on the new certificate: {back}")
        sections.append(_rotation_report(rotation, back))
        picked = await asyncio.to_thread(
            _deploy, home, RELEASE, ["--site", SITE, "--rollout-percent", str(ROLLOUT_PERCENT)]
        )
        say(
            f"  firmware deploy {RELEASE} --site {SITE} --rollout-percent {ROLLOUT_PERCENT}: {', '.join(picked)}"
        )
        target = next(c for c in CHARGERS if c not in picked)
        await asyncio.to_thread(_deploy, home, TAMPERED_RELEASE, ["--charger", target])
        say(f"  firmware deploy {TAMPERED_RELEASE} --charger {target}: the tampered image")
        for job in await asyncio.to_thread(_jobs_ended, home, [*picked, target]):
            say(
                f"  {job['charger_id']}: {job['version']} {job['state']}, "
                f"running {job['running_version']}, last status {job['firmware_status']}"
            )
        journals = {c.id: c.journal.lines() for c in chargers}
        sections.append(await asyncio.to_thread(_firmware_report, home, journals[picked[0]], picked[0]))
        sections.append(await asyncio.to_thread(_refusal_report, target, journals[target]))

    await run_sessions(credentials, [[] for _ in credentials], SimClock(), alongside=while_connected)
    return "\n\n".join(sections)


def _back_since(at: dt.datetime) -> str:
    """The rotated charger's boot since the rotation, once the registry has it."""
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    registry = DynamoChargerRegistry()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        charger = registry.get(ROTATED)
        if charger and charger.online and charger.last_boot_at and charger.last_boot_at >= at:
            return f"online, BootNotification in the registry at {charger.last_boot_at:%H:%M:%S}"
        time.sleep(0.5)
    return f"no BootNotification in the registry within {WAIT_S}s"


def _chargenet(home: Path, *argv: str) -> str:
    """What `chargenet --home HOME ARGV...` prints: the operator command's own parsing and code."""
    from chargenet_cli.main import parser

    args = parser().parse_args(["--home", str(home), *argv])
    return args.run(args)


def _deploy(home: Path, version: str, options: list[str]) -> list[str]:
    """`chargenet firmware deploy VERSION OPTIONS`: the charger ids it went to."""
    sent = _chargenet(home, "firmware", "deploy", version, *options, "--json")
    return [rollout["charger_id"] for rollout in json.loads(sent)]


def _status(home: Path, *options: str) -> str:
    return _chargenet(home, "firmware", "status", *options)


def _jobs_ended(home: Path, charger_ids: list[str]) -> list[dict[str, Any]]:
    """`firmware status --json` of these chargers once every job has ended (or the wait is over)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        jobs = [job for job in json.loads(_status(home, "--json")) if job["charger_id"] in charger_ids]
        if (len(jobs) == len(charger_ids) and all(map(_ended, jobs))) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def _ended(job: dict[str, Any]) -> bool:
    # "installed" comes with the new version's boot, the charger's Installed status just after it.
    return job["state"] in DONE_STATES and (
        job["state"] != "installed" or job["firmware_status"] == "Installed"
    )


def _rotation_report(rotation: Rotation, back: str) -> str:
    return "\n".join(
        [
            f"certificate rotation (chargenet charger rotate {ROTATED}):",
            f"  old certificate {rotation.old_id[:12]}...  {rotation.old_status}",
            f"  new certificate {rotation.new_id[:12]}...  ACTIVE",
            f"  {ROTATED} on the new certificate: {back}",
        ]
    )


def _firmware_report(home: Path, journal: list[str], charger_id: str) -> str:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry
    from chargenet.services.operator_api import charger_record

    registry = DynamoChargerRegistry()
    chargers = [c for c in (registry.get(charger_id) for charger_id in CHARGERS) if c]
    records = [charger_record(c, registry.connectors(c.charger_id)) for c in chargers]
    started = [n for n, line in enumerate(journal) if "firmware job from" in line]
    update = journal[started[0] :] if started else []
    steps = [line for line in update if "firmware" in line or "reset" in line or "boot" in line]
    return "\n\n".join(
        [
            f"firmware {RELEASE} rolled out to {ROLLOUT_PERCENT} % of {SITE}, the tampered "
            f"{TAMPERED_RELEASE} sent to one charger left out (chargenet firmware status):\n" + _status(home),
            f"{charger_id}'s journal of the update:\n" + "\n".join(f"  {step}" for step in steps),
            f"{SITE}: the chargers left out still run {FACTORY_VERSION}:\n"
            + charger_cmd.fleet_table(records),
        ]
    )


def _refusal_report(charger_id: str, journal: list[str]) -> str:
    """Why the charger refused the tampered image (its journal) and the fault operators were given."""
    from chargenet.adapters.faults_dynamodb import DynamoFaultStore

    deadline = time.monotonic() + WAIT_S
    while True:
        faults = [
            f
            for f in DynamoFaultStore().list()
            if f.charger_id == charger_id and f.code == "InvalidFirmwareSignature"
        ]
        if faults or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    backend = (
        f"{faults[0].kind.value} fault {faults[0].code}, severity {faults[0].severity.value}"
        if faults
        else "no InvalidFirmwareSignature fault"
    )
    return "\n".join(
        [
            f"tampered firmware {TAMPERED_RELEASE} on {charger_id}: refused, nothing installed",
            *(f"  charger: {line}" for line in journal if "InvalidSignature" in line),
            f"  backend: {backend}",
        ]
    )
