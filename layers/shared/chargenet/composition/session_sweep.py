"""SessionSweepFunction: stopped sessions past the idle limit are closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from pydantic import Field

from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.composition.settings import FunctionEnvironment, environment
from chargenet.services.session_sweep import close_idle_sessions


class SessionSweepEnvironment(FunctionEnvironment):
    idle_limit_minutes: int = Field(alias="IDLE_LIMIT_MINUTES")


@dataclass(frozen=True)
class SessionSweep:
    store: DynamoSessionStore
    idle_limit: timedelta

    def close_idle(self, now: datetime) -> list[str]:
        return close_idle_sessions(self.store, now, self.idle_limit)


@cache
def session_sweep() -> SessionSweep:
    env = environment(SessionSweepEnvironment)
    return SessionSweep(DynamoSessionStore(), timedelta(minutes=env.idle_limit_minutes))
