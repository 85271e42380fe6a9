"""The restart patch: what `kubectl rollout restart` sends, but a new template every time."""

from __future__ import annotations

from datetime import UTC, datetime

from meshcanary.migrate import steps


def stamp(now: datetime) -> str:
    annotations = steps.restart_patch(now)["spec"]["template"]["metadata"]["annotations"]
    return str(annotations[steps.RESTARTED_AT])


def test_two_restarts_in_the_same_second_differ() -> None:
    """A migration and its rollback within one second must both roll the pods."""
    first = datetime(2026, 11, 26, 16, 0, 0, 100_000, tzinfo=UTC)
    second = first.replace(microsecond=900_000)
    assert stamp(first) != stamp(second)
    assert stamp(first) == "2026-11-26T16:00:00.100000Z"
