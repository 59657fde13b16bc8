"""Estimated cycles of a function call from an executed-instruction trace.

QEMU counts instructions, not cycles.  This module runs a bare-metal image under QEMU with
one instruction per translation block and the ``exec`` log (``-singlestep -d exec,nochain``
on QEMU 7.2, ``-accel tcg,one-insn-per-tb=on`` from 8.1), reads the log from a pipe (it is
never written to disk: one line per executed instruction), joins every executed address
with the ELF's disassembly (``arm-none-eabi-objdump -d``) and applies a per-CPU timing
table to each call from ``main`` to the functions asked for: the window runs from the call
instruction in ``main`` to the callee's return into ``main``.

The timing model (``TIMINGS``, one table for every CPU)
-------------------------------------------------------
Every executed instruction costs its table cost; two rules look at neighbours:

* **taken branch**: an instruction after which execution does not continue at the next
  address (taken B/Bcc/CBZ, BL, BX, POP/LDM/LDR/MOV/ADD to PC, TBB/TBH) adds ``P``
  cycles of pipeline refill.  The TRMs give P = 1..3 (alignment and width of the target,
  whether the address was speculated); the default is **P = 1, a taken branch costs 2
  cycles** (the figure CMSIS-NN's reference cycles were estimated with); ``branch_refill``
  changes it.
* **load pipelining** (Cortex-M3/M4 TRM, "Load/store timings"): a single LDR/STR
  (any width) right after a single LDR costs 1 cycle instead of its table cost unless the
  first load's destination register forms the second one's address.  Nothing pipelines
  after a store, after LDRD/STRD or after LDM/STM.

Cortex-M4 (Technical Reference Manual r0p1, ARM 100166, table 3-1 and section 3.3.2
"Load/store timings"), the reference entry:

==================================================  ===============================
instruction                                         cycles
==================================================  ===============================
data processing, MOV/MOVW/MOVT, shifts, compare,    1
extend/pack (SXTB16, PKHBT...), saturate, bitfield,
SIMD (SADD16, SEL...), IT, NOP
MUL, MLA, MLS, SMULL, UMULL, SMLAL, UMLAL, SMLAD,   1
SMUAD, SMLABB..., SMMUL(R), SMLALD...
SDIV, UDIV                                          2..12 (operand dependent): 12
LDR/LDRB/LDRH/LDRSB/LDRSH (any addressing mode)     2, 1 when pipelined after a load
STR/STRB/STRH with an immediate or no offset        1 (the store completes in the
                                                    write buffer while the next
                                                    instruction executes)
STR/STRB/STRH with a register offset                2, 1 when pipelined after a load
LDRD, STRD                                          1 + N = 3, never pipelined
LDM, STM, PUSH, POP                                 1 + N (N registers)
B, Bcc, CBZ, CBNZ, BL, BX, BLX                      1, + P when taken (BL always)
TBB, TBH                                            2, + P
LDR/POP/LDM to PC, MOV/ADD to PC                    the above + P
==================================================  ===============================

Other CPUs, each stated as what it is:

* **Cortex-M3** (TRM r2p1, ARM DDI 0337I, table 3-1): as M4 but MLA/MLS 2, SMULL/UMULL 3..5 and
  SMLAL/UMLAL 4..7 cycles (early termination on small operands): the upper bounds 5 and 7
  are used; no DSP instructions.
* **Cortex-M0** (TRM r0p0, ARM DDI 0432C, table 3-1): every data-processing instruction 1; loads and
  stores 2, no pipelining; LDM/STM/PUSH/POP 1 + N; POP with PC 4 + N; taken branch 3
  (P = 2), BL 4 (BLX 3); MULS 1 or 32 cycles as the silicon vendor configured the multiplier
  (``mul_cycles``, default 1: the fast multiplier).
* **Cortex-M7** (no per-instruction table in its TRM): a stated approximation as a
  single-issue core with 1-cycle loads and stores (64-bit load port: LDRD 1, LDM/STM/
  PUSH/POP 1 + N/2), 1-cycle multiplies, the M4's branch rule.  Dual issue, which can
  nearly halve the time of well-scheduled code, is not modelled: read it as an upper bound.
* **Cortex-M33** (its TRM gives no per-instruction table): the Cortex-M4 table, the same
  class of three-stage ARMv8-M mainline pipeline with a single-cycle DSP multiplier.
* **Cortex-M55** (a stated approximation): scalar code as the Cortex-M4 table; an MVE
  (Helium) vector instruction takes 2 cycles (two 64-bit beats per 128-bit vector), 1
  when it directly follows a vector instruction of the other class (memory against
  arithmetic), modelling the beat-wise overlap of a load with a multiply-accumulate;
  LE/LETP at the end of a low-overhead loop costs 1 with no refill (loop branch cache).

Flash wait states (``flash_wait`` N, 0 by default; e.g. 5 for an STM32F4 at 168 MHz with
its ART accelerator off) add N cycles to every non-sequential instruction fetch (each taken
branch, call and return refills the pipeline from flash) and to every PC-relative literal
load (``LDR Rt, [PC, #imm]``, the literal pool is in flash).  Sequential fetches are
assumed hidden by the flash prefetch buffer.  Data reads through a register (weights,
tables) pay N per word read from flash only when asked (``call_cycles(..., flash=...)``,
``edgeconv bench --flash-data``): the trace then carries the registers before every
instruction, from which each load's address is computed (about 4x the log, several
times slower); otherwise every such read is charged as a zero-wait-state read.

Not modelled: caches (M7/M55 I- and D-caches, the STM32 ART accelerator and its data
cache), bus contention (an instruction fetch and a data read from flash at once),
unaligned accesses (+1 or +2 cycles), the register-dependency stall of a load whose
address comes from the data-processing instruction just before it, LDR PC's and TBB's
longer refill, IT folding (an IT after a 16-bit instruction may take 0 cycles),
condition-failed instructions in IT blocks (charged as executed), the data-dependent
cycles of SDIV/UDIV (charged at their upper bound), branch prediction and dual issue on
the M7, interrupts.  The estimate is a count of the executed mix under these rules, not a
measurement of any silicon.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

__all__ = ["TIMINGS", "CallCycles", "Instruction", "Timing", "call_cycles", "call_windows",
           "calls_in_trace", "disassemble", "estimate", "parse_objdump", "timing",
           "trace_addresses", "trace_flash_reads"]

# --- disassembly -----------------------------------------------------------------------

_REG_ALIASES = {"sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14, "pc": 15}
_REG_RE = re.compile(r"\b(r1[0-5]|r[0-9]|sb|sl|fp|ip|sp|lr|pc)\b")
_CONDITIONS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls",
               "ge", "lt", "gt", "le", "al")

# Instruction classes (``Instruction.kind``) by base mnemonic (no .n/.w, condition or S).
_KINDS: dict[str, tuple[str, ...]] = {
    "load": ("ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrt", "ldrbt", "ldrht", "ldrsbt",
             "ldrsht", "ldrex", "ldrexb", "ldrexh", "lda", "ldab", "ldah", "ldaex",
             "ldaexb", "ldaexh"),
    "store": ("str", "strb", "strh", "strt", "strbt", "strht", "strex", "strexb", "strexh",
              "stl", "stlb", "stlh", "stlex", "stlexb", "stlexh"),
    "load_double": ("ldrd", "strd", "ldrexd", "strexd"),
    "multiple": ("ldm", "ldmia", "ldmfd", "ldmdb", "ldmea", "stm", "stmia", "stmea",
                 "stmdb", "stmfd", "push", "pop"),
    "branch": ("b", "bx", "blx", "cbz", "cbnz", "bxns", "blxns", "bxaut"),
    "call": ("bl",),
    "table_branch": ("tbb", "tbh"),
    "mul": ("mul",),
    "mla": ("mla", "mls"),
    "mull": ("smull", "umull"),
    "mlal": ("smlal", "umlal", "umaal", "smlalbb", "smlalbt", "smlaltb", "smlaltt",
             "smlald", "smlaldx", "smlsld", "smlsldx"),
    "dsp_mul": ("smlabb", "smlabt", "smlatb", "smlatt", "smlawb", "smlawt", "smulbb",
                "smulbt", "smultb", "smultt", "smulwb", "smulwt", "smlad", "smladx",
                "smlsd", "smlsdx", "smuad", "smuadx", "smusd", "smusdx", "smmul", "smmulr",
                "smmla", "smmlar", "smmls", "smmlsr"),
    "div": ("sdiv", "udiv"),
    "loop_end": ("le", "letp"),
}
_KIND_OF = {m: kind for kind, names in _KINDS.items() for m in names}
_ALU = frozenset((
    "adc", "add", "addw", "adr", "and", "asr", "bfc", "bfi", "bic", "clz", "cmn", "cmp",
    "eor", "lsl", "lsr", "mov", "movw", "movt", "mvn", "neg", "orn", "orr", "rbit", "rev",
    "rev16", "revsh", "ror", "rrx", "rsb", "sbc", "sbfx", "sub", "subw", "teq", "tst",
    "ubfx", "ssat", "usat", "ssat16", "usat16", "sxtb", "sxth", "uxtb", "uxth", "sxtb16",
    "uxtb16", "sxtab", "sxtah", "uxtab", "uxtah", "sxtab16", "uxtab16", "pkhbt", "pkhtb",
    "sel", "qadd", "qsub", "qdadd", "qdsub", "usad8", "usada8", "nop", "yield", "wfe",
    "wfi", "sev", "dmb", "dsb", "isb", "cpsid", "cpsie", "mrs", "msr", "bkpt", "svc",
    "udf", "dls", "dlstp", "wls", "wlstp", "csel", "csinc", "csinv", "csneg", "cset",
    "csetm", "cinc", "cinv", "cneg", "lsll", "lsrl", "asrl", "uqshl", "sqshl", "urshr",
    "srshr", "uqrshl", "sqrshr", "uqshll", "urshrl", "srshrl", "sqshll", "uqrshll",
    "sqrshrl",
) + tuple(f"{p}{op}{w}" for p in ("s", "q", "sh", "u", "uq", "uh")
          for op in ("add", "sub", "asx", "sax") for w in ("8", "16")
          if not (op in ("asx", "sax") and w == "8")))


@dataclass(frozen=True)
class Instruction:
    """One disassembled instruction: its address and size in bytes, the mnemonic and
    operands as objdump prints them, its class (``kind``), the registers a load writes
    (``dest``) and those forming a load's or store's address (``address_regs``),
    ``registers`` the register count of LDM/STM/PUSH/POP, ``literal`` for a PC-relative
    load and ``vector`` for an MVE instruction (``vector_memory`` for its loads/stores).
    ``read``: for a data read through a register, ``(base, index, shift, offset,
    accesses)``: the first address is ``R[base] + offset + (R[index] << shift)`` (no index:
    None) and the instruction reads ``accesses`` words from there on."""

    address: int
    size: int
    mnemonic: str
    operands: str
    kind: str
    dest: frozenset[int] = frozenset()
    address_regs: frozenset[int] = frozenset()
    registers: int = 0
    immediate_offset: bool = True
    literal: bool = False
    vector: bool = False
    vector_memory: bool = False
    read: tuple[int, int | None, int, int, int] | None = None


def _reg_numbers(text: str) -> list[int]:
    return [_REG_ALIASES[r] if r in _REG_ALIASES else int(r[1:]) for r in _REG_RE.findall(text)]


def _register_list(text: str) -> int:
    """Registers in ``{r4, r5-r7, lr}``."""
    inner = text[text.find("{") + 1:text.rfind("}")]
    count = 0
    for item in inner.split(","):
        ends = _reg_numbers(item)
        count += ends[1] - ends[0] + 1 if "-" in item and len(ends) == 2 else len(ends)
    return count


def _base_mnemonic(mnemonic: str) -> str:
    """``ldrsb.w`` -> ``ldrsb``, ``movlt`` -> ``mov``, ``adds`` -> ``add``, ``bls.n`` ->
    ``b``, ``vldrb.s16`` -> ``vldrb``: the table key of an objdump mnemonic."""
    m = mnemonic.lower().split(".")[0]

    def known(name: str) -> bool:
        return name in _KIND_OF or name in _ALU or name.startswith("it")

    if known(m) or m.startswith("v"):
        return m
    # the condition first: "bls" is B with LS, not BL with S ("lsls", "movs" and "bics"
    # leave no known stem without their last two letters)
    if m[-2:] in _CONDITIONS:
        stem = m[:-2]
        if known(stem):
            return stem
        if stem.endswith("s") and known(stem[:-1]):
            return stem[:-1]
    if m.endswith("s") and known(m[:-1]):
        return m[:-1]
    return m


def _read_operand(base: str, kind: str, ops: str,
                  registers: int) -> tuple[int, int | None, int, int, int] | None:
    """``Instruction.read`` of a load (None for stores, PC-relative loads and gathers)."""
    if kind == "multiple" or base in ("vpop", "vldm", "vldmia", "vldmdb"):
        if base.startswith(("st", "push", "vst", "vpush")):
            return None
        first = 13 if base in ("pop", "vpop") else _reg_numbers(ops.split(",")[0])[0]
        down = base.endswith(("db", "ea"))
        return (first, None, 0, -4 * registers if down else 0, registers)
    loads = ("load", "load_double", "fp_memory", "vector")
    if kind not in loads or not base.startswith(("ld", "vld")) or "[" not in ops:
        return None
    inside, _, after = ops.partition("[")[2].partition("]")
    parts = [p.strip() for p in inside.split(",")]
    regs = _reg_numbers(parts[0])
    if not regs or regs[0] == 15 or re.search(r"q\d", inside):
        return None
    post = after.strip().startswith(",")
    index, shift, offset = None, 0, 0
    if len(parts) > 1 and not post:
        if parts[1].startswith("#"):
            offset = int(parts[1][1:], 0)
        elif _reg_numbers(parts[1]):
            index = _reg_numbers(parts[1])[0]
            if len(parts) > 2 and "lsl" in parts[2]:
                shift = int(parts[2].split("#")[1], 0)
    return (regs[0], index, shift, offset, 2 if kind == "load_double" else 1)


def _classify(address: int, size: int, mnemonic: str, operands: str) -> Instruction:
    base = _base_mnemonic(mnemonic)
    ops = operands.split("@")[0].strip()  # objdump's "@ (addr <sym>)" comment
    if base.startswith("v"):  # VFP or MVE
        vector = bool(re.search(r"\bq\d", ops))  # VCTP, VPST: scalar, 1 cycle
        memory = base.startswith(("vldr", "vstr", "vld", "vst", "vpush", "vpop"))
        kind = "vector" if vector else ("fp_memory" if memory else "fp")
        regs = _register_list(ops) if base in ("vpush", "vpop", "vldm", "vstm") else 0
        return Instruction(address, size, mnemonic, ops, kind, registers=regs,
                           literal=memory and "[pc" in ops, vector=vector,
                           vector_memory=vector and memory,
                           read=_read_operand(base, kind, ops, regs) if memory else None)
    if base.startswith("it") and set(base[2:]) <= {"t", "e"}:
        return Instruction(address, size, mnemonic, ops, "it")
    kind = _KIND_OF.get(base, "alu")
    if kind in ("load", "store", "load_double"):
        head, _, addr = ops.partition("[")
        addr_part = addr.split("]")[0]
        dest = frozenset(_reg_numbers(head)) if kind != "store" else frozenset()
        return Instruction(address, size, mnemonic, ops, kind, dest=dest,
                           address_regs=frozenset(_reg_numbers(addr_part)),
                           immediate_offset=len(_reg_numbers(addr_part)) <= 1,
                           literal=addr_part.strip().startswith("pc"),
                           read=_read_operand(base, kind, ops, 0))
    if kind == "multiple":
        regs = _register_list(ops)
        return Instruction(address, size, mnemonic, ops, kind, registers=regs,
                           read=_read_operand(base, kind, ops, regs))
    return Instruction(address, size, mnemonic, ops, kind)


_INSN_LINE = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(\S+)\s*(.*)$")
_SYMBOL_LINE = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")


def parse_objdump(text: str) -> tuple[dict[int, Instruction], dict[str, tuple[int, int]]]:
    """Instructions by address and functions' ``(start, end)`` address ranges from the
    text of ``arm-none-eabi-objdump -d`` (literal-pool ``.word`` lines are skipped)."""
    instructions: dict[int, Instruction] = {}
    starts: list[tuple[int, str]] = []
    for line in text.splitlines():
        sym = _SYMBOL_LINE.match(line)
        if sym:
            starts.append((int(sym.group(1), 16), sym.group(2)))
            continue
        m = _INSN_LINE.match(line)
        if m is None or m.group(3).startswith("."):
            continue
        address = int(m.group(1), 16)
        size = sum(len(h) // 2 for h in m.group(2).split())
        instructions[address] = _classify(address, size, m.group(3), m.group(4))
    starts.sort()
    ends = [a for a, _ in starts[1:]] + [max(instructions, default=0) + 4]
    return instructions, {name: (a, e) for (a, name), e in zip(starts, ends, strict=True)}


def disassemble(elf: Path) -> tuple[dict[int, Instruction], dict[str, tuple[int, int]]]:
    """:func:`parse_objdump` of ``arm-none-eabi-objdump -d elf``.  The architecture is
    forced to ARMv8.1-M mainline, a superset of every Cortex-M's Thumb: without it objdump
    prints the M55's MVE instructions as coprocessor ones (LDC, CDP)."""
    out = subprocess.run(["arm-none-eabi-objdump", "-d", "-m", "armv8.1-m.main", str(elf)],
                         check=True, capture_output=True, text=True).stdout
    return parse_objdump(out)


# --- the timing table ------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Cycle costs of one CPU (see the module docstring for sources and rules).

    ``load``/``store_imm``/``store_reg``: single loads and stores; ``pipelined``: the
    cost of a single load or store right after a single load that does not form its
    address (None: no pipelining); ``double``: LDRD/STRD; ``multiple_base`` +
    ``multiple_per_reg`` * N: LDM/STM/PUSH/POP; ``branch_refill`` P added after a taken
    branch; ``call``: BL before refill; ``pc_load_extra``: extra for POP/LDM loading
    PC; ``vector``/``vector_overlap``: MVE instruction alone / after one of the other
    class; ``flash_wait``: added per non-sequential fetch, per literal load and, when the
    trace has them, per data word read from flash."""

    cpu: str
    source: str
    mul: int = 1
    mla: int = 1
    mull: int = 1
    mlal: int = 1
    dsp_mul: int = 1
    div: int = 12
    load: int = 2
    pipelined: int | None = 1
    store_imm: int = 1
    store_reg: int = 2
    double: int = 3
    multiple_base: int = 1
    multiple_per_reg: float = 1.0
    branch_refill: int = 1
    call: int = 1
    table_branch: int = 2
    pc_load_extra: int = 0
    fp: int = 1
    fp_memory: int = 2
    vector: int = 1
    vector_overlap: int = 1
    loop_end_refill: bool = True
    flash_wait: int = 0

    def with_options(self, *, flash_wait: int | None = None, branch_refill: int | None = None,
                     mul_cycles: int | None = None) -> Timing:
        """This table with the parameters changed (each checked: ValueError)."""
        changes: dict[str, int] = {}
        if flash_wait is not None:
            if not isinstance(flash_wait, int) or not 0 <= flash_wait <= 15:
                raise ValueError(f"flash_wait={flash_wait!r}: allowed are integers 0..15")
            changes["flash_wait"] = flash_wait
        if branch_refill is not None:
            if branch_refill not in (1, 2, 3):
                raise ValueError(f"branch_refill={branch_refill!r}: allowed are 1, 2, 3")
            changes["branch_refill"] = branch_refill
        if mul_cycles is not None:
            if self.cpu != "cortex-m0" or mul_cycles not in (1, 32):
                raise ValueError(f"mul_cycles={mul_cycles!r}: only cortex-m0 has a "
                                 f"configurable multiplier, allowed are 1, 32 (cpu is "
                                 f"{self.cpu})")
            changes["mul"] = mul_cycles
        return replace(self, **changes)

    def cost(self, insn: Instruction) -> float:
        """Cycles of ``insn`` alone, executed in sequence (no refill, no pipelining)."""
        kind = insn.kind
        if kind == "load":
            c = self.load
        elif kind == "store":
            c = self.store_imm if insn.immediate_offset else self.store_reg
        elif kind == "load_double":
            c = self.double
        elif kind == "multiple":
            c = self.multiple_base + self.multiple_per_reg * insn.registers
        elif kind == "call":
            c = self.call
        elif kind == "table_branch":
            c = self.table_branch
        elif kind in ("mul", "mla", "mull", "mlal", "dsp_mul", "div", "fp", "fp_memory",
                      "vector"):
            c = getattr(self, kind)
            if kind == "fp_memory" and insn.registers:
                c = self.multiple_base + self.multiple_per_reg * insn.registers
        else:  # alu, it, branch, loop_end
            c = 1
        return c + (self.flash_wait if insn.literal else 0)

    def pair(self, first: Instruction, second: Instruction) -> float:
        """Cycles added (negative: saved) by ``second`` executing right after ``first``:
        the refill after a taken branch and the pipelining of loads or vector beats."""
        extra = 0.0
        if second.address != first.address + first.size:  # non-sequential: a taken branch
            if self.loop_end_refill or first.kind != "loop_end":
                extra += self.branch_refill + self.flash_wait
                if first.kind == "multiple" and first.operands.endswith("pc}"):
                    extra += self.pc_load_extra
        if (self.pipelined is not None and first.kind == "load"
                and second.kind in ("load", "store") and not first.dest & second.address_regs):
            pipelined = self.pipelined + (self.flash_wait if second.literal else 0)
            extra += min(0, pipelined - self.cost(second))
        if (first.vector and second.vector and first.vector_memory != second.vector_memory):
            extra += self.vector_overlap - self.vector
        return extra


_M4 = Timing("cortex-m4", "Cortex-M4 TRM r0p1, table 3-1 and 3.3.2 load/store timings")
TIMINGS: dict[str, Timing] = {t.cpu: t for t in (
    _M4,
    replace(_M4, cpu="cortex-m3", source="Cortex-M3 TRM r2p1, table 3-1 (long multiplies "
            "at their upper bounds)", mla=2, mull=5, mlal=7),
    Timing("cortex-m0", "Cortex-M0 TRM r0p0, table 3-1 (MULS 1 or 32 as configured)",
           load=2, pipelined=None, store_imm=2, store_reg=2, double=2,
           branch_refill=2, call=2, pc_load_extra=1),
    replace(_M4, cpu="cortex-m7", source="approximation: single-issue, 1-cycle loads and "
            "stores, 64-bit load port; dual issue not modelled (upper bound)",
            load=1, pipelined=1, store_imm=1, store_reg=1, double=1,
            multiple_per_reg=0.5, fp_memory=1),
    replace(_M4, cpu="cortex-m33", source="approximation: the Cortex-M4 table"),
    replace(_M4, cpu="cortex-m55", source="approximation: scalar as Cortex-M4; MVE 2 "
            "cycles per vector instruction, 1 when overlapping one of the other class; "
            "LE/LETP without refill", vector=2, vector_overlap=1, loop_end_refill=False),
)}


def timing(cpu: str, *, flash_wait: int | None = None, branch_refill: int | None = None,
           mul_cycles: int | None = None) -> Timing:
    """The timing table of ``cpu`` with its parameters changed; ValueError naming the
    CPUs with a table."""
    if cpu not in TIMINGS:
        raise ValueError(f"cpu={cpu!r}: no timing table, allowed are {', '.join(TIMINGS)}")
    return TIMINGS[cpu].with_options(flash_wait=flash_wait, branch_refill=branch_refill,
                                     mul_cycles=mul_cycles)


# --- the trace -------------------------------------------------------------------------

_TRACE_PC = re.compile(rb"\[[0-9a-f]+/([0-9a-f]+)/")


def _qemu_version() -> tuple[int, int]:
    out = subprocess.run(["qemu-system-arm", "--version"], check=True, capture_output=True,
                         text=True).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    if m is None:
        raise RuntimeError(f"cannot read the QEMU version from {out!r}")
    return int(m.group(1)), int(m.group(2))


def _one_insn_per_tb() -> list[str]:
    """QEMU's switch for one instruction per translation block."""
    if _qemu_version() >= (8, 1):
        return ["-accel", "tcg,one-insn-per-tb=on"]
    return ["-singlestep"]


_HEX_DIGIT = np.zeros(256, dtype=np.int64)
_HEX_DIGIT[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16)
_HEX_WEIGHT = 16 ** np.arange(7, -1, -1, dtype=np.int64)


def _hex8(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The 8-digit lower-case hex numbers starting at ``pos`` in ``buf``."""
    return _HEX_DIGIT[buf[pos[:, None] + np.arange(8)]] @ _HEX_WEIGHT


class _FlashReads:
    """Counts, for each logged instruction, its data reads from the flash range through
    a register, from QEMU's ``cpu`` log (the registers before each instruction:
    ``R00=xxxxxxxx R01=...``, four 13-character fields a line)."""

    def __init__(self, instructions: dict[int, Instruction], flash: tuple[int, int]):
        self.known = np.array(sorted(instructions), dtype=np.int64)
        reads = [instructions[a].read for a in self.known.tolist()]
        self.has_read = np.array([r is not None for r in reads])
        cols = [(r if r is not None else (0, None, 0, 0, 0)) for r in reads]
        self.base = np.array([c[0] for c in cols], dtype=np.int64)
        self.index = np.array([-1 if c[1] is None else c[1] for c in cols], dtype=np.int64)
        self.shift = np.array([c[2] for c in cols], dtype=np.int64)
        self.offset = np.array([c[3] for c in cols], dtype=np.int64)
        self.accesses = np.array([c[4] for c in cols], dtype=np.uint8)
        self.flash = flash

    @staticmethod
    def _register(buf: np.ndarray, r00: np.ndarray, reg: np.ndarray) -> np.ndarray:
        return _hex8(buf, r00 + 4 + 13 * (reg % 4) + 52 * (reg // 4))

    def __call__(self, buf: np.ndarray, pcs: np.ndarray) -> np.ndarray:
        is_r00 = ((buf[:-3] == ord("R")) & (buf[1:-2] == ord("0")) & (buf[2:-1] == ord("0"))
                  & (buf[3:] == ord("=")))
        r00 = np.flatnonzero(is_r00)
        if len(r00) != len(pcs) or (len(r00) and (buf[r00 + 52] != ord("R")).any()):
            raise RuntimeError("QEMU's cpu log is not in the expected R00=... layout")
        ids = np.minimum(np.searchsorted(self.known, pcs), len(self.known) - 1)
        rows = np.flatnonzero(self.has_read[ids] & (self.known[ids] == pcs))
        counts = np.zeros(len(pcs), dtype=np.uint8)
        if len(rows):
            i = ids[rows]
            address = self._register(buf, r00[rows], self.base[i]) + self.offset[i]
            indexed = self.index[i] >= 0
            address[indexed] += self._register(
                buf, r00[rows][indexed], self.index[i][indexed]) << self.shift[i][indexed]
            lo, length = self.flash
            in_flash = (address >= lo) & (address < lo + length)
            counts[rows[in_flash]] = self.accesses[i][in_flash]
        return counts


def trace_addresses(elf: Path, machine: str, *,
                    timeout: float = 600.0) -> tuple[np.ndarray, str]:
    """Run ``elf`` on QEMU ``machine`` logging every executed instruction; return the
    executed addresses in order (uint32) and the semihosting console text.

    The log is QEMU's ``exec`` trace with one instruction per translation block and no
    block chaining, read from a pipe in chunks (never stored); ``-icount`` is left out
    so that no block is logged twice when its instruction budget expires."""
    addresses, _, console = _trace(elf, machine, timeout, None)
    return addresses, console


def trace_flash_reads(elf: Path, machine: str, instructions: dict[int, Instruction],
                      flash: tuple[int, int], *,
                      timeout: float = 600.0) -> tuple[np.ndarray, np.ndarray, str]:
    """:func:`trace_addresses` plus, for each executed instruction, the number of data
    words it read through a register from the ``flash`` range ``(origin, length)``.  It
    adds QEMU's ``cpu`` log (the registers before every instruction): about four times the
    text, several times slower."""
    addresses, reads, console = _trace(elf, machine, timeout,
                                       _FlashReads(instructions, flash))
    return addresses, reads, console


def _trace(elf: Path, machine: str, timeout: float, flash_reads: _FlashReads | None,
           chunk_bytes: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, str]:
    log = "exec,nochain" + (",cpu" if flash_reads is not None else "")
    cmd = ["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none",
           "-serial", "none", "-semihosting-config", "enable=on,target=native",
           "-kernel", str(elf), *_one_insn_per_tb(), "-d", log, "-D", "/dev/stdout"]
    cache: dict[bytes, int] = {}
    parts: list[np.ndarray] = []
    reads: list[np.ndarray] = []
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            tail = b""
            while True:
                block = proc.stdout.read(chunk_bytes)
                if not block:
                    break
                # whole records: up to the last line start ("Trace ..." or "R00=...")
                cut = (block.rfind(b"\nTrace ") if flash_reads is not None
                       else block.rfind(b"\n")) + 1
                text, tail = tail + block[:cut], block[cut:]
                found = _TRACE_PC.findall(text)
                for key in set(found) - cache.keys():
                    cache[key] = int(key, 16)
                pcs = np.fromiter(map(cache.__getitem__, found), dtype=np.uint32,
                                  count=len(found))
                parts.append(pcs)
                if flash_reads is not None:
                    reads.append(flash_reads(np.frombuffer(text, dtype=np.uint8), pcs))
            if tail and flash_reads is not None:  # the last record
                pcs = np.array([int(k, 16) for k in _TRACE_PC.findall(tail)], np.uint32)
                parts.append(pcs)
                reads.append(flash_reads(np.frombuffer(tail, dtype=np.uint8), pcs))
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        console = err.read().decode(errors="replace")
    if code != 0:
        raise RuntimeError(f"QEMU {machine} trace run exited with {code}: {console[-500:]}")
    addresses = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
    counts = np.concatenate(reads) if reads else np.zeros(len(addresses), np.uint8)
    return addresses, counts, console


# --- the estimate ----------------------------------------------------------------------


@dataclass(frozen=True)
class CallCycles:
    """One function's calls from ``main``: ``calls``, executed ``instructions`` (the call
    instruction, the callee and everything it calls, up to its return) and estimated
    ``cycles``; ``by_kind`` splits the cycles by instruction class (refills go to the
    branch, pipelining savings to the load that saves them)."""

    name: str
    calls: int
    instructions: int
    cycles: int
    by_kind: dict[str, int] = field(default_factory=dict)


def estimate(addresses: np.ndarray, instructions: dict[int, Instruction], table: Timing,
             flash_reads: np.ndarray | None = None) -> tuple[float, dict[str, float]]:
    """Cycles of the executed ``addresses`` in order (the last one only gives the
    successor of the one before it and is not counted), with its split by class.
    ``flash_reads`` (one count per address, :func:`trace_flash_reads`) charges
    ``table.flash_wait`` per data word read from flash, under ``"flash_data"``."""
    if len(addresses) < 2:
        return 0.0, {}
    known = np.array(sorted(instructions), dtype=np.int64)
    ids = np.minimum(np.searchsorted(known, addresses), len(known) - 1)
    stray = np.flatnonzero(known[ids] != addresses)
    if len(stray):
        raise RuntimeError(f"executed address {int(addresses[stray[0]]):#x} is not an "
                           "instruction of the disassembly")
    n = len(known)
    insns = [instructions[a] for a in known.tolist()]
    by_kind: dict[str, float] = {}
    total = 0.0
    counts = np.bincount(ids[:-1], minlength=n)
    for i in np.flatnonzero(counts):
        c = float(counts[i]) * table.cost(insns[i])
        total += c
        by_kind[insns[i].kind] = by_kind.get(insns[i].kind, 0.0) + c
    pairs, pair_counts = np.unique(ids[:-1] * n + ids[1:], return_counts=True)
    for key, count in zip(pairs.tolist(), pair_counts.tolist(), strict=True):
        first, second = insns[key // n], insns[key % n]
        extra = table.pair(first, second)
        if extra:
            total += count * extra
            kind = first.kind if extra > 0 else second.kind
            by_kind[kind] = by_kind.get(kind, 0.0) + count * extra
    if flash_reads is not None and table.flash_wait:
        data = float(table.flash_wait * int(flash_reads[:-1].sum()))
        total += data
        by_kind["flash_data"] = data
    return total, by_kind


def call_windows(addresses: np.ndarray, entry: int,
                 caller: tuple[int, int]) -> list[tuple[int, int]]:
    """``(start, stop)`` index ranges of calls from the ``caller`` address range to the
    function at ``entry``: from the call instruction to the first instruction back in
    the caller (included, as the successor of the return)."""
    lo, hi = caller
    in_caller = (addresses >= lo) & (addresses < hi)
    starts = np.flatnonzero((addresses[1:] == entry) & in_caller[:-1])
    back = np.flatnonzero(in_caller)
    windows = []
    for s in starts.tolist():
        k = np.searchsorted(back, s + 1)
        if k == len(back):
            raise RuntimeError(f"the call at trace index {s} never returns to the caller")
        windows.append((s, int(back[k])))
    return windows


def call_cycles(elf: Path, machine: str, names: Sequence[str], table: Timing, *,
                caller: str = "main", flash: tuple[int, int] | None = None,
                timeout: float = 600.0) -> dict[str, CallCycles]:
    """Trace ``elf`` on QEMU ``machine`` and estimate with ``table`` the cycles of every
    call from ``caller`` to each function in ``names``; with ``flash`` ``(origin,
    length)`` data reads from that range pay ``table.flash_wait`` too (a slower trace)."""
    instructions, functions = disassemble(elf)
    for name in (caller, *names):
        if name not in functions:
            raise ValueError(f"names={list(names)!r}: no function {name!r} in {elf}")
    reads = None
    if flash is None:
        addresses, _ = trace_addresses(elf, machine, timeout=timeout)
    else:
        addresses, reads, _ = trace_flash_reads(elf, machine, instructions, flash,
                                                timeout=timeout)
    return calls_in_trace(addresses, instructions, functions, names, table, caller=caller,
                          flash_reads=reads)


def calls_in_trace(addresses: np.ndarray, instructions: dict[int, Instruction],
                   functions: dict[str, tuple[int, int]], names: Iterable[str],
                   table: Timing, *, caller: str = "main",
                   flash_reads: np.ndarray | None = None) -> dict[str, CallCycles]:
    """:func:`call_cycles` on a trace already read."""
    results = {}
    for name in names:
        windows = call_windows(addresses, functions[name][0], functions[caller])
        cycles, count, by_kind = 0.0, 0, {}
        for start, stop in windows:
            c, kinds = estimate(addresses[start:stop + 1], instructions, table,
                                None if flash_reads is None else flash_reads[start:stop + 1])
            cycles += c
            count += stop - start
            for k, v in kinds.items():
                by_kind[k] = by_kind.get(k, 0.0) + v
        results[name] = CallCycles(name, len(windows), count, round(cycles),
                                   {k: round(v) for k, v in sorted(by_kind.items())})
    return results
