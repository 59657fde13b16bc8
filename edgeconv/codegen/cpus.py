"""The CPUs codegen targets: one table of their features and compiler flags.

Every CPU name used by codegen, the targets, the benchmark and the tests comes from
``CPUS``; the firmware's ``arch/cortex-m/cortexm.mk`` repeats the float flags for users
who run make by hand, and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cpu:
    """One CPU: ``dsp`` (ARMv7E-M/ARMv8-M DSP extension: SMLAD, SXTB16), ``mve`` (Helium),
    ``thumb1`` (ARMv6-M: Thumb-1 only, no 32x32->64 multiply); ``float_flags`` the
    ``arm-none-eabi-gcc`` FPU/ABI flags that go with ``-mcpu``."""

    name: str
    arch: str
    dsp: bool = False
    mve: bool = False
    thumb1: bool = False
    float_flags: tuple[str, ...] = ()

    @property
    def is_arm(self) -> bool:
        """Whether this is a Cortex-M CPU (built with arm-none-eabi-gcc)."""
        return self.name != "generic"

    def gcc_flags(self) -> list[str]:
        """``arm-none-eabi-gcc`` flags selecting this CPU (``[]`` for the host)."""
        if not self.is_arm:
            return []
        return [f"-mcpu={self.name}", "-mthumb", *self.float_flags]


CPUS: dict[str, Cpu] = {c.name: c for c in (
    Cpu("generic", "host"),
    Cpu("cortex-m0", "armv6-m", thumb1=True),
    Cpu("cortex-m3", "armv7-m"),
    Cpu("cortex-m4", "armv7e-m", dsp=True,
        float_flags=("-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")),
    Cpu("cortex-m7", "armv7e-m", dsp=True, float_flags=("-mfpu=fpv5-d16", "-mfloat-abi=hard")),
    Cpu("cortex-m33", "armv8-m.main", dsp=True,
        float_flags=("-mfpu=fpv5-sp-d16", "-mfloat-abi=hard")),
    Cpu("cortex-m55", "armv8.1-m.main", dsp=True, mve=True, float_flags=("-mfloat-abi=hard",)),
)}
CPU_NAMES: tuple[str, ...] = tuple(CPUS)


def cpu(name: object) -> Cpu:
    """The CPU called ``name``; ValueError naming the allowed ones."""
    if not isinstance(name, str) or name not in CPUS:
        raise ValueError(f"cpu={name!r}: allowed are {', '.join(CPUS)}")
    return CPUS[name]
