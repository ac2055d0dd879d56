"""AWS IoT fleet provisioning's pre-provisioning hook: only allow-listed serials, each once.

IoT waits at most 5 s for the answer, so this handler imports only the allow-list's
composition and Powertools' Logger; an unreadable event is a refusal, never an exception (IoT turns a
failed hook into the same ACCESS_DENIED, but without a reason in the logs).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from chargenet.composition.provisioning import allow_list
from chargenet.domain.clock import utc_now
from chargenet.services.provisioning import HookRequest, pre_provision

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    try:
        request = HookRequest.model_validate(event)
    except ValidationError as exc:
        logger.warning("provisioning request refused: unreadable", extra={"errors": exc.error_count()})
        return {"allowProvisioning": False, "parameterOverrides": {}}
    answer = pre_provision(allow_list(), request, utc_now())
    logger.info(
        "provisioning request",
        extra={
            "serial_number": answer.serial_number[:64],
            "verdict": answer.verdict.value,
            "certificate_id": request.certificate_id,
            "claim_certificate_id": request.claim_certificate_id,
        },
    )
    return answer.response()
