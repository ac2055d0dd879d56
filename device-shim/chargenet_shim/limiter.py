"""Brute-force brake for Basic Auth: too many wrong passwords lock a charger id for a while."""

from __future__ import annotations

import time
from collections.abc import Callable


class AttemptLimiter:
    """After `max_failures` failures within `window` seconds, a key is locked for `lockout` seconds."""

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 60.0,
        lockout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window
        self._lockout = lockout
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def is_locked(self, key: str) -> bool:
        until = self._locked_until.get(key)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._locked_until[key]
        return False

    def record_failure(self, key: str) -> None:
        now = self._clock()
        recent = [t for t in self._failures.get(key, []) if now - t < self._window]
        recent.append(now)
        if len(recent) >= self._max_failures:
            self._locked_until[key] = now + self._lockout
            self._failures.pop(key, None)
        else:
            self._failures[key] = recent

    def record_success(self, key: str) -> None:
        self._failures.pop(key, None)
