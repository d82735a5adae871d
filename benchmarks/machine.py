"""What machine the benchmark ran on, and its fp32 peak.

Peak FLOP/s = cores x clock x FMA pipes x fp32 lanes per pipe x 2 (an FMA is two FLOPs).
Lanes per pipe: 16 for AVX-512 on cores with 512-bit FMA units, 8 for AVX2, and 8 for AMD Zen 4
(family 25), which runs AVX-512 through two 256-bit pipes. Clock: the highest frequency the
kernel reports (cpufreq's maximum, else /proc/cpuinfo's current MHz). Override with
--flops-per-cycle where this guess is wrong for a machine.
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
    if "avx512f" in flags and not (cpu["vendor"] == "AuthenticAMD" and cpu["family"] <= 25):
        lanes, why = 16, "AVX-512 with 512-bit FMA units"
    elif "avx512f" in flags or "avx2" in flags:
        lanes, why = 8, ("AVX-512 on AMD Zen 4, executed as two 256-bit halves" if "avx512f" in flags else "AVX2")
    else:
        lanes, why = 4, "SSE"
    return FMA_PIPES * lanes * 2, f"{FMA_PIPES} FMA pipes x {lanes} fp32 lanes x 2 FLOPs ({why})"


def peak_gflops(cpu: dict, per_cycle: int) -> float:
    return cpu["cores"] * cpu["clock_ghz"] * per_cycle
