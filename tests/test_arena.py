"""The arena planner: no two buffers alive at once share a byte, aliases share storage,
the arena is at least the peak of live bytes and at most the sum of all sizes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeconv.codegen.arena import Buffer, plan_arena


def test_chain_reuses_dead_buffers() -> None:
    # x -> op0 -> a -> op1 -> b -> op2 -> y: after op1, x's bytes are free again.
    bufs = [Buffer("x", 100, 0, 0), Buffer("a", 60, 0, 1), Buffer("b", 100, 1, 2),
            Buffer("y", 40, 2, 2)]
    plan = plan_arena(bufs)
    plan.check()
    assert plan.size == 160 == plan.peak_live_bytes()
    assert plan.offsets["x"] == plan.offsets["b"] == 0 and plan.offsets["a"] == 100


def test_scratch_lives_one_step_and_alignment() -> None:
    bufs = [Buffer("x", 10, 0, 1), Buffer("s0", 7, 0, 0), Buffer("y", 10, 1, 1),
            Buffer("s1", 5, 1, 1)]
    plan = plan_arena(bufs, alignment=8)
    plan.check()
    assert all(o % 8 == 0 for o in plan.offsets.values())
    assert plan.size == 40  # step 1 holds x, y, s1: 16 + 16 + 8 aligned bytes


def test_in_place_alias_shares_storage() -> None:
    # RESHAPE at step 1 writes r in place of a, which dies there.
    bufs = [Buffer("x", 32, 0, 0), Buffer("a", 32, 0, 1), Buffer("r", 32, 1, 2, alias_of="a"),
            Buffer("y", 32, 2, 2)]
    plan = plan_arena(bufs)
    plan.check()
    assert plan.offsets["r"] == plan.offsets["a"]
    assert plan.size == 64


@pytest.mark.parametrize("bad, message", [
    ([Buffer("a", 1, 0, 0), Buffer("a", 1, 0, 0)], "name 'a' appears twice"),
    ([Buffer("a", 1, 0, 0, alias_of="z")], "alias_of='z' is not a buffer"),
    ([Buffer("a", 1, 0, 0, alias_of="b"), Buffer("b", 1, 0, 0, alias_of="a")], "cycle"),
    (["x"], "is not a Buffer"),
])
def test_bad_buffers(bad: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_arena(bad)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="a", size=-1, first=0, last=0), "size=-1"),
    (dict(name="a", size=1, first=2, last=1), "last=1 before first=2"),
    (dict(name="a", size=1.5, first=0, last=0), "size=1.5"),
])
def test_bad_buffer(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Buffer(**kwargs)


def test_bad_alignment() -> None:
    with pytest.raises(ValueError, match="alignment=3"):
        plan_arena([], alignment=3)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 12), st.integers(0, 5)),
                min_size=1, max_size=25),
       st.sampled_from([1, 4, 16]))
def test_random_plans_are_valid(spec: list[tuple[int, int, int]], alignment: int) -> None:
    bufs = [Buffer(f"t{i}", size, first, first + span)
            for i, (size, first, span) in enumerate(spec)]
    plan = plan_arena(bufs, alignment=alignment)
    plan.check()
    assert plan.peak_live_bytes() <= plan.size
    assert plan.size <= sum(-(-b.size // alignment) * alignment for b in bufs)


def test_live_bytes_count_an_alias_group_once_while_any_member_lives() -> None:
    # a (32 B) dies at step 1 where r takes its storage in place; r lives to step 3
    bufs = [Buffer("a", 32, 0, 1), Buffer("r", 32, 1, 3, alias_of="a"), Buffer("y", 8, 3, 3)]
    plan = plan_arena(bufs)
    assert [plan.live_bytes(s) for s in range(4)] == [32, 32, 32, 40]
    assert plan.peak_live_bytes() == 40 == plan.size
