"""The boards edgeconv supports: one table of QEMU machine, CPU, memory, UART and counter,
used by the targets, the benchmark, the CLI and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from edgeconv.codegen.cpus import cpu as cpu_named


@dataclass(frozen=True)
class Board:
    """One firmware board (``firmware/boards/<name>``).

    ``machine``: the QEMU machine (None for the host); ``cpu``: the CPU it builds for by
    default, ``cpus`` the other CPUs it runs; ``ram_bytes``: RAM the layers' input,
    output and scratch buffers may use together (what is left after the harness, stack
    and frame buffers); ``flash``/``ram``: (origin, length) of the memory map the
    benchmark image links for; ``uart``: the UART ``-serial`` #0 reaches; ``counter``:
    the count source and its address (FPGAIO counter on MPS2/MPS3); ``icount``: QEMU runs
    with ``-icount shift=3`` (8 ns per instruction), so ``per_tick`` instructions elapse
    per counter tick (MPS2 counter at 25 MHz: 5; AN547 at 20 MHz: 6.25; micro:bit TIMER0
    at 16 MHz: 7.8125). Without ``-icount`` QEMU's timers follow the host's clock, so their
    counts measure the emulator, not the work (12 outputs: 10,280 ticks, 4,000: 13,321).
    ``qemu_cpu_hz``: the processor clock QEMU's SysTick runs at on that machine, for a
    firmware whose counter is SysTick and does not know its own clock (netduinoplus2).
    """

    name: str
    cpu: str
    machine: str | None
    ram_bytes: int
    cpus: tuple[str, ...] = ()
    icount: bool = False
    flash: tuple[int, int] | None = None
    ram: tuple[int, int] | None = None
    uart: str = ""
    counter: str = ""
    counter_addr: int | None = None
    per_tick: Fraction | None = None
    qemu_cpu_hz: int | None = None

    def __post_init__(self) -> None:
        for c in (self.cpu, *self.cpus):
            cpu_named(c)  # every CPU a board names is one of the CPU table's

    def check_cpu(self, cpu: str | None) -> str:
        """The cpu to build for; ValueError for an override the board cannot run."""
        if cpu is None or cpu == self.cpu:
            return self.cpu
        if cpu not in self.cpus:
            allowed = ", ".join((self.cpu, *self.cpus))
            raise ValueError(f"cpu={cpu!r} not supported on {self.name}; allowed: {allowed}")
        return cpu


_MPS2 = dict(flash=(0x0, 0x400000), ram=(0x20000000, 0x400000),
             uart="CMSDK UART0 0x40004000", counter="FPGAIO counter",
             counter_addr=0x40028018, per_tick=Fraction(5))

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("native", "generic", None, 64 << 20, uart="pty", counter="clock_gettime ns"),
        Board("mps2-an385", "cortex-m3", "mps2-an385", 3 << 20, ("cortex-m0",), icount=True,
              **_MPS2),
        Board("mps2-an386", "cortex-m4", "mps2-an386", 3 << 20, icount=True, **_MPS2),
        Board("mps2-an500", "cortex-m7", "mps2-an500", 3 << 20, icount=True, **_MPS2),
        Board("mps2-an505", "cortex-m33", "mps2-an505", 3 << 20, icount=True,
              flash=(0x10000000, 0x400000), ram=(0x38000000, 0x400000),
              uart="CMSDK UART0 0x50200000", counter="FPGAIO counter",
              counter_addr=0x50302018, per_tick=Fraction(25, 4)),
        Board("mps3-an547", "cortex-m55", "mps3-an547", 400 << 10, icount=True,
              flash=(0x0, 0x80000), ram=(0x20000000, 0x80000),
              uart="CMSDK UART0 0x59303000", counter="FPGAIO counter",
              counter_addr=0x59302018, per_tick=Fraction(25, 4)),
        Board("netduinoplus2", "cortex-m4", "netduinoplus2", 96 << 10, icount=True,
              flash=(0x08000000, 0x100000), ram=(0x20000000, 0x20000),
              uart="STM32 USART1 0x40011000", counter="DWT CYCCNT or SysTick",
              qemu_cpu_hz=168_000_000),
        Board("microbit", "cortex-m0", "microbit", 10 << 10, icount=True,
              flash=(0x0, 0x40000), ram=(0x20000000, 0x4000), uart="nRF51 UART0 0x40002000",
              counter="nRF51 TIMER0"),
    )
}


def board(name: str) -> Board:
    """The board called ``name``; ValueError naming the known ones."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"board={name!r} unknown; known: {', '.join(BOARDS)}") from None
