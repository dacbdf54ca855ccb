import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewarden.core.counters import (
    EXACT_LIMIT,
    ActorTable,
    DistinctCount,
    HyperLogLog,
    OrderTracker,
    SlidingCount,
)

T0 = 1_800_000_000.0  # a multiple of 60 and 3600


def test_sliding_count_weights_previous_window():
    c = SlidingCount(60.0)
    for _ in range(30):
        c.add(T0 + 10)
    # Half-way through the next window, half of the previous window still counts.
    assert c.value(T0 + 90) == pytest.approx(15.0)
    assert c.add(T0 + 90) == pytest.approx(16.0)
    # Two windows later nothing of the first is left.
    assert c.value(T0 + 185) == 0.0


def test_distinct_count_ignores_repeats_and_is_exact_when_small():
    d = DistinctCount(3600.0)
    for i in range(10):
        d.add(hash(f"profile:{i % 5}"), T0 + i)
    assert d.add(hash("profile:1"), T0 + 20) == 5.0


@pytest.mark.parametrize("n", [EXACT_LIMIT + 1, 500, 5000, 50_000])
def test_distinct_count_switches_to_sketch_within_error(n):
    d = DistinctCount(86400.0)
    estimate = 0.0
    for i in range(n):
        estimate = d.add(hash(f"profile:{i}"), T0 + i * 0.01)
    assert abs(estimate - n) / n < 0.1


def test_hyperloglog_incremental_sum_matches_recomputation():
    h = HyperLogLog()
    rng = random.Random(7)
    for _ in range(3000):
        h.add(rng.getrandbits(64))
    registers = h._registers
    direct = sum(2.0**-r for r in registers)
    assert h._sum == pytest.approx(direct)
    assert h._zeros == registers.count(0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=1, max_size=3000))
def test_hyperloglog_never_wildly_wrong(items):
    h = HyperLogLog()
    for item in items:
        h.add(item)
    true = len(set(items))
    assert 0.7 * true - 2 <= h.count() <= 1.3 * true + 2


def test_order_tracker_sees_sequential_walk_but_not_random_browsing():
    walk = OrderTracker()
    for i in range(100, 130):
        walk.add("profile", str(i))
    assert walk.pairs == OrderTracker.SIZE
    assert walk.step_fraction == 1.0

    browse = OrderTracker()
    rng = random.Random(3)
    for _ in range(30):
        browse.add("profile", str(rng.randint(1, 20000)))
    assert browse.step_fraction < 0.2
    assert 0.2 < browse.ascending_fraction < 0.8


def test_order_tracker_alphabetical_sweep():
    sweep = OrderTracker()
    for a in "abcdefghij":
        for b in "aeiou":
            sweep.add("search", a + b)
    assert sweep.ascending_fraction == 1.0
    assert sweep.step_fraction == 0.0


def test_actor_table_is_bounded_and_keeps_active_actors():
    table = ActorTable(max_actors=100)
    active = table.get("active", T0)
    for i in range(1000):
        table.get(f"once-{i}", T0 + i)
        if i % 10 == 0:
            assert table.get("active", T0 + i) is active
    assert len(table) <= 100


def test_actor_table_forgets_after_two_idle_generations():
    table = ActorTable(max_actors=100)
    first = table.get("x", T0)
    later = T0 + 3 * ActorTable.GENERATION_SECONDS
    table.get("y", T0 + 1.5 * ActorTable.GENERATION_SECONDS)
    table.get("z", later)
    assert table.get("x", later) is not first
