"""Which precision inference runs in: ``--precision auto|32|bf16``.

bf16 autocast pays off where the hardware multiplies bf16 natively: on CUDA, and on CPUs with
AMX-BF16 (Sapphire Rapids and later) or AVX512-BF16 (Cooper Lake, Zen 4 and later). Elsewhere bf16
is emulated and slower than fp32, so ``auto`` keeps fp32 there.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from pathlib import Path
from typing import Literal

Precision = Literal["auto", "32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "32", "bf16")
# CPU flags (as /proc/cpuinfo names them) of native bf16 matrix or dot-product instructions.
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
# Lightning's names for the two precisions.
LIGHTNING_PRECISION = {"32": "32-true", "bf16": "bf16-mixed"}


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def choose_precision(requested: Precision, accelerator: str, flags: Collection[str]) -> Literal["32", "bf16"]:
    """The precision to run in: ``requested`` unless it is ``auto``, which picks bf16 on CUDA and
    on CPUs whose ``flags`` include native bf16 instructions, fp32 elsewhere."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return requested
    native = accelerator == "cuda" or (accelerator == "cpu" and bool(BF16_CPU_FLAGS & set(flags)))
    return "bf16" if native else "32"
