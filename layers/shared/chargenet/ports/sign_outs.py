"""When each operator last signed out (chargenet.domain.sign_outs)."""

from __future__ import annotations

from typing import Protocol


class SignOuts(Protocol):
    def signed_out_at(self, subject: str) -> int | None:
        """The subject's last sign-out (epoch seconds), None if none is kept. One read, no cache:
        a sign-out takes effect at once on every function."""
        ...

    def record(self, subject: str, at: int, expires_at: int) -> None:
        """Tokens of `subject` issued at or before `at` (epoch seconds) are signed out; the record
        may be forgotten after `expires_at`."""
        ...
