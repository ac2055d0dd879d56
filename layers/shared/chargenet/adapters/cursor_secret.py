"""The key that signs the operator API's pagination cursors: OperatorCursorSecret, via Powertools."""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools.utilities import parameters

# A rotated secret is picked up within this many seconds; cursors signed before stop verifying.
MAX_AGE_S = 300


@dataclass(frozen=True)
class SecretsManagerKey:
    """Callable: the secret's bytes, fetched on first use and cached by Powertools."""

    secret_arn: str

    def __call__(self) -> bytes:
        value = parameters.get_secret(self.secret_arn, max_age=MAX_AGE_S)
        return value.encode() if isinstance(value, str) else bytes(value)
