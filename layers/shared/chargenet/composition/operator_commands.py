"""OperatorCommandsFunction: remote commands (PendingCallsTable, IoT Data publish), diagnostics
(DiagnosticsBucket) and firmware rollouts (FirmwareBucket, read only; IoT Jobs)."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from chargenet.adapters.dynamodb import DynamoChargerRegistry, DynamoPendingCalls
from chargenet.adapters.iot_data import IotDataChannel
from chargenet.adapters.iot_jobs import FirmwareJobs
from chargenet.adapters.operator_s3 import S3DiagnosticsFiles, S3FirmwarePackages
from chargenet.composition.operator_api import OperatorAccessEnvironment, operator_access
from chargenet.composition.settings import environment
from chargenet.domain.clock import utc_now
from chargenet.services.commands import ChargerCommands
from chargenet.services.operator_commands import FirmwareSettings, OperatorCommands


class OperatorCommandsEnvironment(OperatorAccessEnvironment):
    diagnostics_bucket: str = Field(alias="DIAGNOSTICS_BUCKET")
    firmware_bucket: str = Field(alias="FIRMWARE_BUCKET")
    # The role IoT assumes to pre-sign a job's package URL (FirmwareJobsRole).
    firmware_jobs_role_arn: str = Field(alias="FIRMWARE_JOBS_ROLE_ARN")
    region: str = Field("us-east-1", alias="AWS_REGION")


@cache
def operator_commands() -> OperatorCommands:
    env = environment(OperatorCommandsEnvironment)
    pending = DynamoPendingCalls()
    return OperatorCommands(
        access=operator_access(env),
        commands=ChargerCommands(DynamoChargerRegistry(), pending, IotDataChannel(), utc_now),
        history=pending,
        diagnostics=S3DiagnosticsFiles(env.diagnostics_bucket),
        packages=S3FirmwarePackages(env.firmware_bucket),
        rollouts=FirmwareJobs(),
        firmware=FirmwareSettings(env.firmware_bucket, env.region, env.firmware_jobs_role_arn),
        clock=utc_now,
    )
