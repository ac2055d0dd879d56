from chargenet_shim.limiter import AttemptLimiter, Lockouts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(clock: Clock) -> AttemptLimiter:
    return AttemptLimiter(max_failures=5, window=60, lockout=60, clock=clock)


def test_five_failures_within_the_window_lock_the_id_for_the_lockout():
    clock = Clock()
    limiter = _limiter(clock)
    for _ in range(4):
        limiter.record_failure("CP-1")
        clock.now += 10
    assert not limiter.is_locked("CP-1")

    limiter.record_failure("CP-1")

    assert limiter.is_locked("CP-1")
    assert not limiter.is_locked("CP-2")
    clock.now += 59.9
    assert limiter.is_locked("CP-1")
    clock.now += 0.2
    assert not limiter.is_locked("CP-1")


def test_failures_older_than_the_window_do_not_count():
    clock = Clock()
    limiter = _limiter(clock)
    for _ in range(5):
        limiter.record_failure("CP-1")
        clock.now += 16

    assert not limiter.is_locked("CP-1")


def test_a_success_clears_earlier_failures():
    clock = Clock()
    limiter = _limiter(clock)
    for _ in range(4):
        limiter.record_failure("CP-1")
    limiter.record_success("CP-1")

    limiter.record_failure("CP-1")

    assert not limiter.is_locked("CP-1")


def test_after_a_lockout_the_count_starts_again():
    clock = Clock()
    limiter = _limiter(clock)
    for _ in range(5):
        limiter.record_failure("CP-1")
    clock.now += 61
    assert not limiter.is_locked("CP-1")

    limiter.record_failure("CP-1")

    assert not limiter.is_locked("CP-1")


def test_stale_keys_are_forgotten_once_there_are_too_many():
    # Any well-formed charger id now counts, known or not: a guesser must not grow the tables for ever.
    clock = Clock()
    limiter = AttemptLimiter(max_failures=2, window=60, lockout=60, clock=clock, max_keys=3)
    limiter.record_failure("old-1")
    limiter.record_failure("old-locked")
    limiter.record_failure("old-locked")
    clock.now += 61

    for key in ("new-1", "new-2", "new-3"):
        limiter.record_failure(key)

    assert len(limiter) == 3
    assert not limiter.is_locked("old-locked")
    limiter.record_failure("new-1")
    assert limiter.is_locked("new-1")  # the recent failures were kept


def _lockouts(clock: Clock) -> Lockouts:
    return Lockouts(by_charger=_limiter(clock), by_address=AttemptLimiter(max_failures=10, clock=clock))


def test_either_the_charger_id_or_the_address_locks():
    clock = Clock()
    lockouts = _lockouts(clock)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"):
        lockouts.record_failure("CP-1", address)
    for charger_id in (f"CP-{n}" for n in range(10, 20)):
        lockouts.record_failure(charger_id, "10.0.0.9")

    assert lockouts.is_locked("CP-1", "10.0.0.8")
    assert lockouts.is_locked("CP-2", "10.0.0.9")
    assert not lockouts.is_locked("CP-2", "10.0.0.8")


def test_a_success_clears_the_charger_ids_count_not_the_addresses():
    clock = Clock()
    lockouts = _lockouts(clock)
    for charger_id in (f"CP-{n}" for n in range(9)):
        lockouts.record_failure(charger_id, "10.0.0.9")

    lockouts.record_success("CP-own")  # the guesser's own charger logs in between guesses
    lockouts.record_failure("CP-9", "10.0.0.9")

    assert lockouts.is_locked("CP-own", "10.0.0.9")
