"""plan_rescue with N budgets side by side (pools): table-driven, exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailpartner_async import ConfigurationError, ScheduledMessage, plan_rescue
from mailpartner_async._core.models import BatchItem

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def msg(message_id: str, minutes: float) -> ScheduledMessage:
    return ScheduledMessage(message_id, NOW + timedelta(minutes=minutes))


# At 1 a minute: each budget starts one request at 0, 60 s, 120 s, ... A message sent
# at 5 + k minutes is reachable by a start at k minutes or earlier.
# (items, pools, (reachable, lost, unreachable, last start in seconds))
POOLS = [
    # 4 ids due by a start at 1 min: one budget reaches 2, two all 4 (two at each step)
    ([("a", 6), ("b", 6), ("c", 6), ("d", 6)], 1, (2, (), ("c", "d"), 60.0)),
    ([("a", 6), ("b", 6), ("c", 6), ("d", 6)], 2, (4, (), (), 60.0)),
    ([("a", 6), ("b", 6), ("c", 6), ("d", 6)], 3, (4, (), (), 60.0)),
    ([("a", 6), ("b", 6), ("c", 6), ("d", 6)], 4, (4, (), (), 0.0)),
    # 3 budgets, 7 ids due by 1 min: steps 0, 0, 0, 60, 60, 60 reach 6; the 7th is out
    ([(f"m{n}", 6) for n in range(7)], 3, (6, (), ("m6",), 60.0)),
    # the lost stay lost whatever the budgets
    ([("l", 4), ("a", 5)], 5, (1, ("l",), (), 0.0)),
    # plain ids take the first slots of every budget, two at each step
    (["p", "q", "r", ("a", 5.5)], 2, (3, (), ("a",), 60.0)),
    (["p", "q", ("a", 5.5)], 2, (2, (), ("a",), 0.0)),
    (["p", ("a", 5.5)], 2, (2, (), (), 0.0)),
    ([], 3, (0, (), (), None)),
]


@pytest.mark.parametrize(("items", "pools", "expected"), POOLS)
def test_pools_start_side_by_side_at_each_step_of_the_pace(
    items: list[tuple[str, float] | str], pools: int, expected: tuple[object, ...]
) -> None:
    given = [item if isinstance(item, str) else msg(*item) for item in items]
    plan = plan_rescue(given, now=NOW, rate_limit=1, pools=pools)
    reachable, lost, unreachable, last = expected
    assert (plan.reachable, plan.lost, plan.unreachable) == (reachable, lost, unreachable)
    assert (plan.total, plan.pools) == (len(items), pools)
    assert last is None or isinstance(last, float)
    assert plan.last_start == (None if last is None else NOW + timedelta(seconds=last))


def test_one_pool_is_the_plan_without_pools() -> None:
    items: list[BatchItem] = [msg(f"m{n}", 5 + n / 3) for n in range(30)]
    items += [msg("late", 2), "plain"]
    assert plan_rescue(items, now=NOW, rate_limit=2, pools=1) == plan_rescue(
        items, now=NOW, rate_limit=2
    )


def test_without_a_rate_limit_every_pool_starts_at_once() -> None:
    plan = plan_rescue([msg("a", 6), msg("b", 7)], now=NOW, rate_limit=None, pools=2)
    assert (plan.reachable, plan.last_start) == (2, NOW)


@pytest.mark.parametrize("pools", [0, -1, 1.5, True, "2"])
def test_pools_must_be_a_count_of_at_least_one(pools: object) -> None:
    with pytest.raises(ConfigurationError, match="pools must be an int >= 1"):
        plan_rescue([], now=NOW, pools=pools)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pools", "rate", "first_line"),
    [
        (1, 2000, "plan: 1 of 1 ids can be cancelled in time at 2000/min"),
        (4, 2000, "plan: 1 of 1 ids can be cancelled in time at 4 x 2000/min"),
        (4, None, "plan: 1 of 1 ids can be cancelled in time at no rate limit"),
    ],
)
def test_the_plan_names_its_budgets_when_there_are_several(
    pools: int, rate: int | None, first_line: str
) -> None:
    plan = plan_rescue([msg("a", 20)], now=NOW, rate_limit=rate, pools=pools)
    assert plan.describe().split("\n")[0] == first_line
