"""Sign-outs kept in memory, for the operator functions' handler tests: every operator edge reads
the caller's last sign-out on each request (chargenet.handlers.operator_http)."""

from __future__ import annotations

from typing import Any

import pytest

from chargenet.services.operator_sign_out import SignOutCheck


class MemorySignOuts:
    def __init__(self) -> None:
        self.signed_out: dict[str, tuple[int, int]] = {}  # subject -> (at, expires_at)

    def signed_out_at(self, subject: str) -> int | None:
        kept = self.signed_out.get(subject)
        return kept[0] if kept else None

    def record(self, subject: str, at: int, expires_at: int) -> None:
        self.signed_out[subject] = (at, expires_at)


def checked_in_memory(handler: Any, monkeypatch: pytest.MonkeyPatch) -> MemorySignOuts:
    """The handler module's edge checks these sign-outs (none yet) instead of DynamoDB's."""
    sign_outs = MemorySignOuts()
    monkeypatch.setattr(handler.http, "sign_out_check", lambda: SignOutCheck(sign_outs))
    return sign_outs
