"""gp_fma_ceiling through ffi: a positive finite figure, and a status code for every bad argument.

Sanity only: how fast the machine is (one thread against two, the ISA against its peak) is what
the function measures, never something a test can assert on a shared machine."""

import math

import pytest

from ganpack._kernel import ffi, lib

SECONDS = 0.02  # the shortest run allowed is 0.01


def ceiling(isa: int, threads: int = 1, seconds: float = SECONDS) -> tuple[int, float]:
    gflops = ffi.new("double *", -1.0)
    status = lib.gp_fma_ceiling(isa, threads, seconds, gflops)
    return status, gflops[0]


@pytest.mark.parametrize("isa", ["auto", "portable", "best"])
@pytest.mark.parametrize("threads", [0, 1, 2])
def test_ceiling_is_positive_and_finite(isa, threads):
    code = {"auto": lib.GP_ISA_AUTO, "portable": lib.GP_ISA_PORTABLE, "best": lib.gp_best_isa()}[isa]
    status, gflops = ceiling(code, threads)
    assert status == lib.GP_OK
    assert math.isfinite(gflops) and gflops > 0


def test_every_isa_the_cpu_has_runs_and_the_others_are_refused():
    best = lib.gp_best_isa()
    for isa in (lib.GP_ISA_PORTABLE, lib.GP_ISA_AVX2_FMA, lib.GP_ISA_AVX512):
        status, gflops = ceiling(isa)
        if isa <= best:  # the ISAs are ordered: a CPU with AVX-512 also has AVX2 + FMA here
            assert status == lib.GP_OK and gflops > 0, isa
        else:
            assert status == lib.GP_ERR_UNSUPPORTED_ISA and gflops == 0.0, isa


@pytest.mark.parametrize("isa", [3, 99, -2])
def test_unknown_isa(isa):
    assert ceiling(isa)[0] == lib.GP_ERR_UNSUPPORTED_ISA


@pytest.mark.parametrize("threads", [-1, 65, 1 << 30])
def test_thread_count_out_of_range(threads):
    status, gflops = ceiling(lib.GP_ISA_AUTO, threads)
    assert status == lib.GP_ERR_SHAPE and gflops == 0.0


@pytest.mark.parametrize("seconds", [0.0, 0.009, 10.01, -1.0, math.nan, math.inf])
def test_seconds_out_of_range(seconds):
    assert ceiling(lib.GP_ISA_AUTO, 1, seconds)[0] == lib.GP_ERR_SHAPE


def test_null_result_pointer():
    assert lib.gp_fma_ceiling(lib.GP_ISA_AUTO, 1, SECONDS, ffi.NULL) == lib.GP_ERR_NULL


def test_the_most_threads_allowed_run():
    """64 threads on a machine with fewer CPUs share them; the run still ends and reports."""
    status, gflops = ceiling(lib.GP_ISA_PORTABLE, 64, 0.01)
    assert status == lib.GP_OK and math.isfinite(gflops) and gflops > 0
