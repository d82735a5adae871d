"""What machine the benchmark ran on: its fp32 ceiling measured, and its ISA peak on paper.

The ceiling (fma_ceiling): gp_fma_ceiling from ganpack's C kernel, a register-only loop of
independent FMA chains on every thread at once. It is what "% of ceiling" is measured against:
it includes the clock the cores really reach and how many FMAs per cycle they really retire.

The ISA peak (kept for reference, `isa_peak` in the JSON) = cores x clock x FMA pipes (2) x
fp32 lanes of the widest SIMD the CPU reports (16 for AVX-512, 8 for AVX2, 4 otherwise) x 2 (an
FMA is two FLOPs). Clock: the highest frequency the kernel reports (cpufreq's maximum, else
/proc/cpuinfo's MHz). A figure on paper: a core with 128-bit FMA units (AMD Zen 1) or one that
splits 512-bit operations (Zen 4), or a virtual machine that reports a nominal clock below its
boost, puts the true peak elsewhere. Override with --flops-per-cycle where a better figure is known.
"""

import os
import platform
from pathlib import Path

FMA_PIPES = 2


def cpu_info() -> dict:
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    max_khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    clock_ghz = (int(max_khz.read_text()) / 1e6 if max_khz.exists()
                 else float(fields.get("cpu MHz", "0") or 0) / 1e3)
    return {
        "model": fields.get("model name", platform.processor() or "unknown"),
        "vendor": fields.get("vendor_id", ""),
        "family": int(fields.get("cpu family", "0") or 0),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "clock_ghz": round(clock_ghz, 3),
        "simd_flags": sorted(f for f in flags if f.startswith(("avx", "fma", "sse4"))),
    }


def flops_per_cycle(cpu: dict) -> tuple[int, str]:
    """fp32 FLOPs per cycle per core, and how that number was reached."""
    flags = set(cpu["simd_flags"])
    lanes, simd = (16, "AVX-512") if "avx512f" in flags else (8, "AVX2") if "avx2" in flags else (4, "SSE")
    return FMA_PIPES * lanes * 2, f"{FMA_PIPES} FMA pipes x {lanes} fp32 lanes ({simd}) x 2 FLOPs"


def peak_gflops(cpu: dict, per_cycle: int) -> float:
    return cpu["cores"] * cpu["clock_ghz"] * per_cycle


def fma_ceiling(threads: int = 0, seconds: float = 1.0, isa: str = "auto", repeats: int = 3) -> float:
    """Measured fp32 GFLOP/s of register-only FMA chains on `threads` threads (0: every online
    CPU), through the C kernel's gp_fma_ceiling: the best of `repeats` runs of `seconds` each
    (anything else running on the machine can only lower a reading, so the best is the ceiling)."""
    from ganpack.backends.c_backend import ISA_CODES, ffi, lib

    gflops, best = ffi.new("double *"), 0.0
    for _ in range(repeats):
        status = lib.gp_fma_ceiling(ISA_CODES[isa], threads, seconds, gflops)
        if status != lib.GP_OK:
            raise RuntimeError(f"gp_fma_ceiling({isa}, {threads} threads): "
                               f"{ffi.string(lib.gp_status_message(status)).decode()}")
        best = max(best, float(gflops[0]))
    return best
