"""The cycle model (edgeconv.bench.cycles): hand-assembled sequences run through the QEMU
trace and the timing tables, compared with counts done by hand from the TRM tables in the
comments; the disassembly classes; the benchmark's JSON fields on L7."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeconv.bench import cycles
from edgeconv.bench import target as bench_target
from edgeconv.resources import templates_dir

needs_tools = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="arm-none-eabi-gcc or qemu-system-arm not installed")

# Each kernel is called once from main; the window runs from main's BL to the return.
# Cortex-M4 costs (P = 1: a taken branch, call or return costs 1 + 1 = 2).
KERNELS = r"""
    .syntax unified
    .thumb
    .text

    .global k_loop
    .type k_loop, %function
    .thumb_func
@ r0, r1: two arrays of 8 words; returns the SMLAD sum.
k_loop:
    push {r4, r5}          @ 1 + N = 3
    movs r3, #8            @ 1
1:  ldr r4, [r0], #4       @ 2
    ldr r5, [r1], #4       @ 1: pipelined (r4 is not in its address)
    smlad r2, r4, r5, r2   @ 1
    subs r3, r3, #1        @ 1
    bne 1b                 @ 1, + 1 when taken (7 of the 8 times)
    mov r0, r2             @ 1
    pop {r4, r5}           @ 1 + N = 3
    bx lr                  @ 1 + 1
    .size k_loop, . - k_loop

    .global k_mem
    .type k_mem, %function
    .thumb_func
@ r0: 8 words, word 0 holding r0 itself, word 1 the byte offset 16.
k_mem:
    ldr r1, [r0]           @ 2
    ldr r2, [r1]           @ 2: its address is the load just before: no pipelining
    ldr r3, [r0, #4]       @ 1: pipelined
    str r3, [r0, #8]       @ 1: store with an immediate offset
    ldr r2, [r0, #12]      @ 2: nothing pipelines after a store
    str r2, [r0, r3]       @ 1: register-offset store pipelined after a load
    str r2, [r0, r3]       @ 2: register-offset store after a store
    ldrd r2, r3, [r0]      @ 1 + N = 3
    ldr r1, [r0, #4]       @ 2: nothing pipelines after LDRD
    ldm r0, {r1, r2, r3}   @ 1 + N = 4
    ldr r1, =0x12345678    @ 2: literal load (+ the flash wait states)
    bx lr                  @ 1 + 1
    .ltorg
    .size k_mem, . - k_mem

    .global k_it
    .type k_it, %function
    .thumb_func
k_it:
    cmp r0, #0             @ 1
    ite eq                 @ 1
    moveq r0, #1           @ 1
    movne r0, #2           @ 1: condition failed, charged as executed
    bx lr                  @ 1 + 1
    .size k_it, . - k_it

    .global k_thumb1
    .type k_thumb1, %function
    .thumb_func
@ r0: 4 words; r1 = 4.  Thumb-1 only, timed with the M0 and the M4 tables.
k_thumb1:
    movs r2, #0            @ 1
1:  ldr r3, [r0]           @ 2
    adds r0, #4            @ 1
    muls r3, r3, r3        @ M4 1; M0 1 or 32
    adds r2, r2, r3        @ 1
    subs r1, #1            @ 1
    bne 1b                 @ 1, + P when taken (3 of the 4 times)
    movs r0, r2            @ 1
    bx lr                  @ 1 + P
    .size k_thumb1, . - k_thumb1

    .global k_flash
    .type k_flash, %function
    .thumb_func
@ r0: a constant table in flash; r1: words in RAM.
k_flash:
    ldr r2, [r0]           @ 2, 1 word from flash
    ldr r3, [r1]           @ 1 (pipelined), RAM
    ldrd r2, r3, [r0, #4]  @ 3, 2 words from flash
    ldm r1, {r2, r3}       @ 3, RAM
    movs r3, #3            @ 1
    ldr r2, [r0, r3, lsl #2]  @ 2, 1 word from flash
    bx lr                  @ 1 + 1
    .size k_flash, . - k_flash
"""

MAIN = r"""
#include <stdint.h>
int k_loop(const uint32_t *a, const uint32_t *b);
void k_mem(uint32_t *words);
int k_it(int x);
int k_thumb1(const uint32_t *a, int n);
void k_flash(const uint32_t *table, uint32_t *words);
static const uint32_t table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static uint32_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {8, 7, 6, 5, 4, 3, 2, 1};
static uint32_t words[8];
volatile int sink;
int main(void)
{
    words[0] = (uint32_t)(uintptr_t)words;
    words[1] = 16u;
    sink = k_loop(a, b);
    k_mem(words);
    sink = k_it(1);
    sink = k_thumb1(a, 4);
    k_flash(table, words);
    return 0;
}
"""

NAMES = ["k_loop", "k_mem", "k_it", "k_thumb1", "k_flash"]
# Instructions in each window: the BL, the kernel's executed instructions.
INSTRUCTIONS = {"k_loop": 1 + 2 + 5 * 8 + 3, "k_mem": 1 + 12, "k_it": 1 + 5,
                "k_thumb1": 1 + 1 + 6 * 4 + 2, "k_flash": 1 + 7}


@pytest.fixture(scope="module")
def kernels_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kernels' image for the MPS2 AN386 (Cortex-M4)."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    work = tmp_path_factory.mktemp("cycles")
    board = bench_target.BOARDS["mps2-an386"]
    (work / "kernels.S").write_text(KERNELS)
    (work / "main.c").write_text(MAIN)
    (work / "link.ld").write_text(bench_target.link_script(board))
    elf = work / "kernels.elf"
    subprocess.run(["arm-none-eabi-gcc", *bench_target.compile_flags("cortex-m4", "O3"),
                    "-nostartfiles", "-T", str(work / "link.ld"), str(work / "main.c"),
                    str(work / "kernels.S"), str(templates_dir() / "bench" / "startup.c"),
                    "-o", str(elf)], check=True)
    return elf


@pytest.fixture(scope="module")
def traced(kernels_elf: Path) -> tuple[np.ndarray, dict, dict]:
    """The kernels' image traced once."""
    instructions, functions = cycles.disassemble(kernels_elf)
    addresses, _ = cycles.trace_addresses(kernels_elf, "mps2-an386", timeout=60)
    return addresses, instructions, functions


def _cycles(traced: tuple[np.ndarray, dict, dict], table: cycles.Timing) -> dict[str, int]:
    addresses, instructions, functions = traced
    found = cycles.calls_in_trace(addresses, instructions, functions, NAMES, table)
    for name, call in found.items():
        assert call.calls == 1 and call.instructions == INSTRUCTIONS[name], call
    return {name: call.cycles for name, call in found.items()}


@needs_tools
def test_m4_hand_counts(traced: tuple[np.ndarray, dict, dict]) -> None:
    assert _cycles(traced, cycles.timing("cortex-m4")) == {
        # BL 2, PUSH 3, MOVS 1, 8 iterations of 2+1+1+1+1 = 6 plus 7 refills, MOV 1,
        # POP 3, BX 2
        "k_loop": 2 + 3 + 1 + 8 * 6 + 7 + 1 + 3 + 2,
        # BL 2, then 2+2+1+1+2+1+2+3+2+4+2 = 22, BX 2
        "k_mem": 2 + 22 + 2,
        # BL 2, CMP, ITE, MOVEQ, MOVNE 1 each, BX 2
        "k_it": 2 + 4 + 2,
        # BL 2, MOVS 1, 4 iterations of 2+1+1+1+1+1 = 7 plus 3 refills, MOVS 1, BX 2
        "k_thumb1": 2 + 1 + 4 * 7 + 3 + 1 + 2,
        # BL 2, LDR 2, LDR 1, LDRD 3, LDM 3, MOVS 1, LDR 2, BX 2
        "k_flash": 2 + 2 + 1 + 3 + 3 + 1 + 2 + 2,
    }


@needs_tools
def test_m4_flash_wait_and_refill(traced: tuple[np.ndarray, dict, dict]) -> None:
    base = _cycles(traced, cycles.timing("cortex-m4"))
    # 5 wait states on each non-sequential fetch (the BL, taken BNEs, the BX) and on
    # k_mem's literal load
    slow = _cycles(traced, cycles.timing("cortex-m4", flash_wait=5))
    taken = {"k_loop": 1 + 7 + 1, "k_mem": 1 + 1 + 1, "k_it": 1 + 1, "k_thumb1": 1 + 3 + 1,
             "k_flash": 1 + 1}
    assert slow == {name: base[name] + 5 * taken[name] for name in NAMES}
    # a 3-cycle refill instead of 1 on every taken branch
    refill = _cycles(traced, cycles.timing("cortex-m4", branch_refill=3))
    taken["k_mem"] = 2
    assert refill == {name: base[name] + 2 * taken[name] for name in NAMES}


@needs_tools
def test_m4_flash_data_reads(kernels_elf: Path, traced: tuple[np.ndarray, dict, dict]) -> None:
    """With the registers in the trace, reads of the flash table pay the wait states too:
    k_flash reads 1 + 2 + 1 words from flash (the LDR, the LDRD and the indexed LDR), its
    RAM reads pay nothing; the other kernels read only RAM."""
    _, instructions, functions = traced
    addresses, reads, _ = cycles.trace_flash_reads(
        kernels_elf, "mps2-an386", instructions, bench_target.BOARDS["mps2-an386"].flash,
        timeout=60)
    fetch_only = _cycles(traced, cycles.timing("cortex-m4", flash_wait=5))
    found = cycles.calls_in_trace(addresses, instructions, functions, NAMES,
                                  cycles.timing("cortex-m4", flash_wait=5), flash_reads=reads)
    assert {n: c.cycles - fetch_only[n] for n, c in found.items()} == {
        "k_loop": 0, "k_mem": 0, "k_it": 0, "k_thumb1": 0, "k_flash": 5 * 4}
    assert found["k_flash"].by_kind["flash_data"] == 20


@needs_tools
def test_m0_table_and_multiplier(traced: tuple[np.ndarray, dict, dict]) -> None:
    """The Thumb-1 kernel under the Cortex-M0 table: loads 2, taken branches 3, BL 4."""
    fast = _cycles(traced, cycles.timing("cortex-m0"))
    # BL 4, MOVS 1, 4 iterations of LDR 2, ADDS, MULS, ADDS, SUBS, BNE 1 = 7 plus
    # 3 refills of 2, MOVS 1, BX 3
    assert fast["k_thumb1"] == 4 + 1 + 4 * 7 + 3 * 2 + 1 + 3
    slow = _cycles(traced, cycles.timing("cortex-m0", mul_cycles=32))
    assert slow["k_thumb1"] == fast["k_thumb1"] + 4 * 31


OBJDUMP = """\
00000100 <f>:
 100:	e92d 41f0 	stmdb	sp!, {r4, r5, r6, r7, r8, lr}
 104:	f910 4b01 	ldrsb.w	r4, [r0], #1
 108:	5c8d      	ldrb	r5, [r1, r2]
 10a:	fb24 6605 	smlad	r6, r4, r5, r6
 10e:	bfb8      	it	lt
 110:	2000      	movlt	r0, #0
 112:	d9f7      	bls.n	104 <f+0x4>
 114:	4a01      	ldr	r2, [pc, #4]	@ (11c <f+0x1c>)
 116:	ec90 0f04 	vldrb.s16	q0, [r0], #8
 11a:	e8bd 81f0 	ldmia.w	sp!, {r4, r5, r6, r7, r8, pc}
 11e:	0000      	.word	0x00000000
00000120 <g>:
 120:	4770      	bx	lr
"""


def test_parse_objdump_classes() -> None:
    instructions, functions = cycles.parse_objdump(OBJDUMP)
    assert functions == {"f": (0x100, 0x120), "g": (0x120, 0x124)}
    kinds = {a: (i.kind, i.size) for a, i in instructions.items()}
    assert kinds == {0x100: ("multiple", 4), 0x104: ("load", 4), 0x108: ("load", 2),
                     0x10A: ("dsp_mul", 4), 0x10E: ("it", 2), 0x110: ("alu", 2),
                     0x112: ("branch", 2), 0x114: ("load", 2), 0x116: ("vector", 4),
                     0x11A: ("multiple", 4), 0x120: ("branch", 2)}
    push, sb, rb, lit, pop = (instructions[a] for a in (0x100, 0x104, 0x108, 0x114, 0x11A))
    assert push.registers == 6 and pop.registers == 6
    assert sb.dest == {4} and sb.address_regs == {0} and sb.immediate_offset
    assert rb.address_regs == {1, 2} and not rb.immediate_offset
    assert lit.literal and not sb.literal
    assert instructions[0x116].vector_memory


def test_estimate_sequence_without_qemu() -> None:
    """``estimate`` on a made-up executed sequence: f's loop body twice, then out."""
    instructions, _ = cycles.parse_objdump(OBJDUMP)
    seq = [0x104, 0x108, 0x10A, 0x10E, 0x110, 0x112] * 2 + [0x114, 0x116]
    total, by_kind = cycles.estimate(np.array(seq, dtype=np.uint32), instructions,
                                     cycles.timing("cortex-m4"))
    # per pass: LDRSB 2, LDRB 1 (pipelined: r4 is not in [r1, r2]), SMLAD 1, IT 1,
    # MOVLT 1, BLS 1 = 7; the first BLS is taken (+1); then LDR literal 2 (not after a
    # load); the last address only closes the window
    assert total == 7 * 2 + 1 + 2
    assert by_kind["load"] == 2 * (2 + 1) + 2 and by_kind["branch"] == 2 + 1
    # Cortex-M55: a vector load alone costs two beats
    m55 = cycles.timing("cortex-m55")
    vld = instructions[0x116]
    assert m55.cost(vld) == 2 and m55.pair(instructions[0x114], vld) == 0


MVE_LOOP = """\
00000200 <v>:
 200:	ec90 0f04 	vldrb.s16	q0, [r0], #8
 204:	eef0 0f00 	vmlava.s16	r2, q0, q1
 208:	f00f c001 	le	lr, 200 <v>
 20c:	4770      	bx	lr
"""


def test_m55_beats_and_loop_end() -> None:
    instructions, _ = cycles.parse_objdump(MVE_LOOP)
    seq = np.array([0x200, 0x204, 0x208] * 2 + [0x20C], dtype=np.uint32)
    # M55: VLDRB 2 beats, VMLAVA 2 less 1 overlapping the load, LE 1 without refill
    m55, _ = cycles.estimate(seq, instructions, cycles.timing("cortex-m55"))
    assert m55 == 2 * (2 + 1 + 1)
    # the same addresses under the M4 table: 1 each, the taken LE refills (+1)
    m4, _ = cycles.estimate(seq, instructions, cycles.timing("cortex-m4"))
    assert m4 == 6 + 1


def test_timing_bad_arguments() -> None:
    with pytest.raises(ValueError, match="cpu='cortex-m85'"):
        cycles.timing("cortex-m85")
    with pytest.raises(ValueError, match="flash_wait=-1"):
        cycles.timing("cortex-m4", flash_wait=-1)
    with pytest.raises(ValueError, match="branch_refill=4"):
        cycles.timing("cortex-m4", branch_refill=4)
    with pytest.raises(ValueError, match="mul_cycles=32.*cortex-m4"):
        cycles.timing("cortex-m4", mul_cycles=32)
    with pytest.raises(ValueError, match="flash_wait=99"):
        bench_target.main(["--layers", "L7", "--flash-wait", "99"])
    with pytest.raises(ValueError, match="--flash-data needs --flash-wait"):
        bench_target.main(["--layers", "L7", "--flash-data"])
    with pytest.raises(ValueError, match="--no-cycles"):
        bench_target.main(["--layers", "L7", "--no-cycles", "--flash-wait", "5"])


@needs_tools
def test_bench_json_l7_cycles(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert bench_target.main(["--layers", "L7", "--opt", "O3", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    (row,) = doc["runs"]["O3"]
    assert row["name"] == "L7" and row["flash_bytes"] > 0
    # every instruction takes at least a cycle; L7's loads and refills make it more,
    # and it must stay under CMSIS-NN's 22.21 cycles/MAC
    assert row["instructions"] < row["cycles"] < 22.21 * 486
    assert row["cycles_per_mac"] == pytest.approx(row["cycles"] / 486)
    assert sum(row["cycles_by_kind"].values()) == pytest.approx(row["cycles"], abs=10)
    assert row["cycles_by_kind"]["dsp_mul"] > 0 and row["cycles_by_kind"]["load"] > 0
    assert doc["cycle_model"] == {"cpu": "cortex-m4", "source": cycles.TIMINGS[
        "cortex-m4"].source, "flash_wait": 0, "flash_data": False, "branch_refill": 1}
    assert bench_target.main(["--layers", "L7", "--opt", "O3", "--no-cycles", "--json",
                              str(out)]) == 0
    (row,) = json.loads(out.read_text())["runs"]["O3"]
    assert row["cycles"] is None and row["cycles_per_mac"] is None
