"""The memory plan of a network: every activation tensor and scratch buffer at an offset
in one arena, fixed at generation time from the buffers' lifetimes.

A buffer lives from the step that writes it (``first``) to the last step that reads it
(``last``), both inclusive: an op's inputs and outputs are live together during its step,
so they never share bytes unless the op declares the output in place (``alias_of``: the
output takes the storage of an input that dies at that step, e.g. RESHAPE, or an ADD / MUL
whose same-sized input is not read later; :class:`edgeconv.codegen.network.Network` decides
which ops may). Model inputs are live from step 0, model outputs to the end.

The planner is the greedy one TFLite Micro's arena planner is known for: buffers by
decreasing size (then by first use), each placed at the lowest aligned offset where it
overlaps no already placed buffer whose lifetime overlaps its own. It is not optimal in
general (the problem is NP-hard) but never worse than the sum of the sizes and, for chains,
usually equal to the largest pair of neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Buffer:
    """One tensor or scratch buffer: ``size`` bytes, live from step ``first`` to step
    ``last`` inclusive; ``alias_of`` names a buffer whose storage it reuses in place."""

    name: str
    size: int
    first: int
    last: int
    alias_of: str | None = None

    def __post_init__(self) -> None:
        for what, value in (("size", self.size), ("first", self.first), ("last", self.last)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"buffer {self.name!r}: {what}={value!r}: must be an int >= 0")
        if self.last < self.first:
            raise ValueError(f"buffer {self.name!r}: last={self.last} before first="
                             f"{self.first}: a buffer lives from first to last, inclusive")


@dataclass(frozen=True)
class ArenaPlan:
    """Offsets of every buffer in an arena of ``size`` bytes (aligned to ``alignment``)."""

    buffers: tuple[Buffer, ...]
    offsets: dict[str, int]
    size: int
    alignment: int
    steps: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", max((b.last for b in self.buffers), default=-1) + 1)

    def live_bytes(self, step: int) -> int:
        """Bytes of the storages live at ``step``: a buffer and the buffers aliasing it are
        one storage (their largest size), live while any of them is."""
        by_name = {b.name: b for b in self.buffers}
        live: dict[str, int] = {}
        for b in self.buffers:
            if b.first <= step <= b.last:
                root = _root(b.name, by_name)
                live[root] = max(live.get(root, 0), b.size)
        return sum(live.values())

    def peak_live_bytes(self) -> int:
        """The largest :meth:`live_bytes` over the steps: no plan can be smaller."""
        return max((self.live_bytes(s) for s in range(self.steps)), default=0)

    def check(self) -> None:
        """Raise AssertionError if two buffers alive at the same step share a byte (a
        buffer and the one it aliases excepted)."""
        placed = list(self.buffers)
        roots = {b.name: _root(b.name, {x.name: x for x in placed}) for b in placed}
        for i, a in enumerate(placed):
            oa = self.offsets[a.name]
            assert oa % self.alignment == 0 and oa + a.size <= self.size, a.name
            for b in placed[i + 1:]:
                if roots[a.name] == roots[b.name]:
                    continue
                ob = self.offsets[b.name]
                if a.first <= b.last and b.first <= a.last and a.size and b.size:
                    assert oa + a.size <= ob or ob + b.size <= oa, (a.name, b.name)


def _root(name: str, by_name: dict[str, Buffer]) -> str:
    seen = set()
    while by_name[name].alias_of is not None:
        if name in seen:
            raise ValueError(f"buffer {name!r}: alias_of forms a cycle")
        seen.add(name)
        name = by_name[name].alias_of  # type: ignore[assignment]
    return name


def _align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def plan_arena(buffers: list[Buffer] | tuple[Buffer, ...], *,
               alignment: int = 4) -> ArenaPlan:
    """Offsets for ``buffers`` in one arena (see the module docstring)."""
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment < 1 \
            or alignment & (alignment - 1):
        raise ValueError(f"alignment={alignment!r}: must be a power of two >= 1")
    by_name: dict[str, Buffer] = {}
    for b in buffers:
        if not isinstance(b, Buffer):
            raise ValueError(f"buffers: {b!r} is not a Buffer")
        if b.name in by_name:
            raise ValueError(f"buffers: name {b.name!r} appears twice")
        by_name[b.name] = b
    for b in buffers:
        if b.alias_of is not None and b.alias_of not in by_name:
            raise ValueError(f"buffer {b.name!r}: alias_of={b.alias_of!r} is not a buffer")
    # An alias group is one storage: the union of the lifetimes, the largest size.
    groups: dict[str, list[Buffer]] = {}
    for b in buffers:
        groups.setdefault(_root(b.name, by_name), []).append(b)
    storage = [(root, max(m.size for m in members), min(m.first for m in members),
                max(m.last for m in members)) for root, members in groups.items()]
    storage.sort(key=lambda s: (-s[1], s[2], s[0]))
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    root_offset: dict[str, int] = {}
    for root, size, first, last in storage:
        offset = 0
        for o, s, _, _ in sorted(p for p in placed if p[2] <= last and first <= p[3]):
            if offset + size <= o:
                break
            offset = max(offset, _align(o + s, alignment))
        placed.append((offset, size, first, last))
        root_offset[root] = offset
    total = _align(max((o + s for o, s, _, _ in placed), default=0), alignment)
    offsets = {b.name: root_offset[_root(b.name, by_name)] for b in buffers}
    return ArenaPlan(tuple(buffers), offsets, total, alignment)
