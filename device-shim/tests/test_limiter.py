from chargenet_shim.limiter import AttemptLimiter


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
