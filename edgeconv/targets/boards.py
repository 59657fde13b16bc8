"""The boards edgeconv firmware supports: QEMU machine, CPU, memory, frame sizes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Board:
    """One firmware board (``firmware/boards/<name>``).

    ``ram_bytes``: RAM the layers' input, output and scratch buffers may use together
    (what is left after the harness, stack and frame buffers); ``cpus``: accepted
    ``cpu`` overrides; ``icount``: QEMU runs with ``-icount shift=3`` so the FPGAIO
    counter counts instructions (5 per tick).
    """

    name: str
    cpu: str
    machine: str | None
    ram_bytes: int
    cpus: tuple[str, ...] = ()
    icount: bool = False

    def check_cpu(self, cpu: str | None) -> str:
        """The cpu to build for; ValueError for an override the board cannot run."""
        if cpu is None or cpu == self.cpu:
            return self.cpu
        if cpu not in self.cpus:
            allowed = ", ".join((self.cpu, *self.cpus))
            raise ValueError(f"cpu={cpu!r} not supported on {self.name}; allowed: {allowed}")
        return cpu


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("native", "generic", None, 64 << 20),
        Board("mps2-an385", "cortex-m3", "mps2-an385", 3 << 20, ("cortex-m0",), icount=True),
        Board("mps2-an386", "cortex-m4", "mps2-an386", 3 << 20, icount=True),
        Board("mps3-an547", "cortex-m55", "mps3-an547", 400 << 10, icount=True),
        Board("netduinoplus2", "cortex-m4", "netduinoplus2", 96 << 10),
        Board("microbit", "cortex-m0", "microbit", 10 << 10),
    )
}


def board(name: str) -> Board:
    """The board called ``name``; ValueError naming the known ones."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"board={name!r} unknown; known: {', '.join(BOARDS)}") from None
