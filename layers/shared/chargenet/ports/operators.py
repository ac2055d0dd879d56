"""The operator accounts: who may sign in to the operator API, and their role (a pool group)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chargenet.domain.operators import Role
from chargenet.ports.audit import Key, Page


@dataclass(frozen=True)
class OperatorAccount:
    username: str
    email: str | None
    roles: list[str]  # the account's groups that are roles, sorted
    status: str  # e.g. FORCE_CHANGE_PASSWORD (invited, not signed in yet), CONFIRMED
    enabled: bool
    created_at: datetime | None


class UsernameTaken(Exception):
    """An account with that user name exists already."""


class OperatorDirectory(Protocol):
    def accounts(self, limit: int, start: Key | None) -> Page[OperatorAccount]:
        """One page of at most `limit` accounts."""
        ...

    def invite(self, username: str, email: str, role: Role) -> str | None:
        """Create the account in `role` and invite it (raises UsernameTaken). Returns the temporary
        password only where no invitation can be delivered (the local stack), otherwise None."""
        ...

    def set_role(self, username: str, role: Role) -> bool:
        """Make `role` the account's only role; False if there is no such account."""
        ...

    def remove(self, username: str) -> bool:
        """Disable, then delete the account; False if there is no such account."""
        ...
