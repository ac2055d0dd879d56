"""Brute-force brake for Basic Auth: too many wrong passwords lock a key (charger id, source address) for a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Keys are chosen by whoever connects (any well-formed charger id counts, known or not): past this
# many, stale ones are dropped so a guesser cannot grow the tables without bound.
DEFAULT_MAX_KEYS = 10_000


class AttemptLimiter:
    """After `max_failures` failures within `window` seconds, a key is locked for `lockout` seconds."""

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 60.0,
        lockout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._max_failures = max_failures
        self._window = window
        self._lockout = lockout
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def __len__(self) -> int:
        """How many keys it remembers: failing or locked."""
        return len(self._failures.keys() | self._locked_until.keys())

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
        if len(self._failures) + len(self._locked_until) > self._max_keys:
            self._forget_stale(now)

    def record_success(self, key: str) -> None:
        self._failures.pop(key, None)

    def _forget_stale(self, now: float) -> None:
        """Drop keys whose failures have all left the window and whose lockout has ended."""
        self._failures = {
            key: times for key, times in self._failures.items() if now - times[-1] < self._window
        }
        self._locked_until = {key: until for key, until in self._locked_until.items() if now < until}


# A source address is shared by the chargers behind one NAT: looser than a charger id's limit, and
# longer, since an address that reached it was trying many ids.
ADDRESS_MAX_FAILURES = 10
ADDRESS_LOCKOUT_S = 300.0


@dataclass(frozen=True)
class Lockouts:
    """Failed logins counted twice: per charger id and per source address; either one locks.

    The id's limit stops guessers spread over many addresses; the address's stops one address
    trying a few passwords on each of many ids. A success clears the id's count only: one
    charger's own password must not buy its address another round of guesses at its neighbours.
    """

    by_charger: AttemptLimiter = field(default_factory=AttemptLimiter)
    by_address: AttemptLimiter = field(
        default_factory=lambda: AttemptLimiter(max_failures=ADDRESS_MAX_FAILURES, lockout=ADDRESS_LOCKOUT_S)
    )

    def is_locked(self, charger_id: str, address: str) -> bool:
        return self.by_charger.is_locked(charger_id) or self.by_address.is_locked(address)

    def record_failure(self, charger_id: str, address: str) -> None:
        self.by_charger.record_failure(charger_id)
        self.by_address.record_failure(address)

    def record_success(self, charger_id: str) -> None:
        self.by_charger.record_success(charger_id)
