"""Retries happen for transient failures only, with growing, capped, jittered delays."""

from __future__ import annotations

import pytest

from meshcanary.kube import errors, retry


class Script:
    """A request failing with the given errors, then answering `result`."""

    def __init__(self, *failures: Exception, result: str = "ok") -> None:
        self.failures = list(failures)
        self.result = result
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


NO_JITTER = retry.Backoff(attempts=4, initial=1.0, factor=2.0, maximum=3.0, jitter=0.0)


async def test_transient_failures_are_retried() -> None:
    request = Script(errors.Conflict("stale", code=409), errors.ServerError("boom", code=503))
    sleeps = Sleeps()
    assert await retry.call(request, backoff=NO_JITTER, sleep=sleeps) == "ok"
    assert request.calls == 3
    assert sleeps.delays == [1.0, 2.0]


async def test_permanent_failures_are_not() -> None:
    request = Script(errors.NotFound("nope", code=404))
    sleeps = Sleeps()
    with pytest.raises(errors.NotFound):
        await retry.call(request, backoff=NO_JITTER, sleep=sleeps)
    assert (request.calls, sleeps.delays) == (1, [])


async def test_giving_up_raises_the_last_failure() -> None:
    request = Script(*[errors.CannotConnect(f"try {i}") for i in range(10)])
    sleeps = Sleeps()
    with pytest.raises(errors.CannotConnect, match="try 3"):
        await retry.call(request, backoff=NO_JITTER, sleep=sleeps)
    assert request.calls == 4
    assert sleeps.delays == [1.0, 2.0, 3.0]  # capped at maximum


async def test_foreign_exceptions_pass_through() -> None:
    request = Script(KeyError("bug"))
    with pytest.raises(KeyError):
        await retry.call(request, sleep=Sleeps())


async def test_transport_errors_are_translated_and_retried() -> None:
    request = Script(ConnectionResetError("reset"), ConnectionResetError("reset"))
    sleeps = Sleeps()
    assert await retry.call(request, backoff=NO_JITTER, sleep=sleeps) == "ok"
    failing = Script(*[ConnectionResetError("reset")] * 5)
    with pytest.raises(errors.CannotConnect) as caught:
        await retry.call(failing, backoff=NO_JITTER, sleep=sleeps)
    assert isinstance(caught.value.__cause__, ConnectionResetError)


async def test_retry_after_is_honoured_and_capped() -> None:
    throttled = errors.TooManyRequests("slow down", code=429, retry_after=7)
    huge = errors.TooManyRequests("slow down", code=429, retry_after=3600)
    sleeps = Sleeps()
    await retry.call(Script(throttled, huge), backoff=NO_JITTER, sleep=sleeps)
    assert sleeps.delays == [7.0, 30.0]


def test_jitter_stretches_delays_within_bounds() -> None:
    backoff = retry.Backoff(initial=1.0, factor=2.0, maximum=10.0, jitter=0.5)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 10.0)]:
        delay = backoff.delay(attempt)
        assert base <= delay <= base * 1.5


async def test_never_tries_once() -> None:
    request = Script(errors.Conflict("stale", code=409))
    with pytest.raises(errors.Conflict):
        await retry.call(request, backoff=retry.NEVER, sleep=Sleeps())
    assert request.calls == 1
