"""The coverage-guided fuzz target (tests/fuzz_kernel.py) runs for a bounded time in CI, and its
oracle is right on inputs chosen by hand: no false alarm, and a wrong output still caught."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("atheris", reason="atheris has wheels for CPython 3.11-3.13 on x86-64 Linux only")
pytest.importorskip("ganpack.backends.c_backend", reason="the C kernel is not built")

import fuzz_kernel  # noqa: E402  (needs atheris and the kernel, checked just above)

FUZZ_SECONDS = 30


@pytest.mark.slow  # a fuzzing run of fixed length
def test_fuzzing_the_kernel_api_finds_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "fuzz_kernel.py"), str(corpus),
         f"-max_total_time={FUZZ_SECONDS}", "-timeout=10", "-rss_limit_mb=2048", "-max_len=4096", "-seed=1",
         f"-artifact_prefix={tmp_path}/"],  # a crashing input is saved there, not in the checkout
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "Done" in log and "==ERROR" not in log and "Uncaught Python exception" not in log
    runs = int(log.rsplit("Done ", 1)[1].split()[0])
    assert runs > 1000, log[-2000:]  # it really ran
    assert len(list(corpus.iterdir())) > 1  # and coverage guidance kept inputs that reached new code


# ---------------------------------------------------------------------------------------------
# the oracle on chosen inputs

class Scripted:
    """A FuzzedDataProvider that hands out the given values in order, then what atheris's provider
    gives once its bytes run out (the minimum, False, b"", 0.0): an input written by value."""

    def __init__(self, *values):
        self.values = list(values)

    def _next(self, default):
        return self.values.pop(0) if self.values else default

    def ConsumeIntInRange(self, low, high):  # noqa: N802  (atheris's names)
        value = self._next(low)
        assert low <= value <= high, (value, low, high)
        return value

    def ConsumeBytes(self, count):  # noqa: N802
        return self._next(b"")[:count]

    def ConsumeBool(self):  # noqa: N802
        return self._next(False)

    def ConsumeFloat(self):  # noqa: N802
        return self._next(0.0)

    def ConsumeProbability(self):  # noqa: N802
        return self._next(0.0)


def huge_weight_input():
    """One identity layer 1 -> 1 with the finite weight 2e38, bias 0, over two rows. Seed 108 draws
    x = (2.92, 0.051): row 0's w x is 5.8e38, past FLT_MAX (3.4e38), so the kernel's float32 gives
    inf where numpy's float64 gives 5.8e38 (a false mismatch before the fuzzer knew float32 overflows);
    row 1's 1.0e37 fits and is still compared."""
    layer = np.array([2e38, 0.0], np.float32).tobytes()  # weight (1, 1), bias (1,)
    return Scripted(1, 1, 1,  # n_layers, widths
                    -1, 1,  # isa: auto, threads
                    layer, False,  # the raw weights, not squashed to sane magnitudes
                    0, 0.5, 0,  # identity (and its alpha draw: none), float32 weights
                    2, 108)  # batch, input seed


def test_a_huge_finite_weight_is_no_false_mismatch():
    x = np.random.default_rng(108).normal(size=(2, 1)).astype(np.float32)
    assert 2e38 * abs(float(x[0, 0])) > fuzz_kernel.FLOAT32_MAX > 2e38 * abs(float(x[1, 0]))  # the input is as said
    fuzz_kernel.fuzz_c_api(huge_weight_input())


class CorruptRun:
    """The kernel's lib, but the first gp_stack_run's output is multiplied by `factor` at (row, 0)."""

    def __init__(self, lib, row, factor):
        self.lib, self.row, self.factor, self.done = lib, row, factor, False

    def __getattr__(self, name):
        return getattr(self.lib, name)

    def gp_stack_run(self, stack, x, batch, out):
        status = self.lib.gp_stack_run(stack, x, batch, out)
        if not self.done:
            self.done = True
            out[self.row] *= self.factor  # out: (batch, 1) floats
        return status


@pytest.mark.parametrize("factor", [1.001, float("nan")])  # 0.1% off is 10 times the tolerance
def test_a_wrong_output_is_still_a_mismatch(monkeypatch, factor):
    """In the row that cannot overflow (row 1), a wrong value is found: the overflowing row is left
    out of the comparison, not the whole run."""
    monkeypatch.setattr(fuzz_kernel, "lib", CorruptRun(fuzz_kernel.lib, 1, factor))
    with pytest.raises(AssertionError, match="C kernel disagrees with numpy"):
        fuzz_kernel.fuzz_c_api(huge_weight_input())


def test_the_overflow_bound_is_per_row_and_covers_every_layer():
    weights = [np.full((1, 1), 1e20, np.float32), np.full((1, 1), 1e20, np.float32)]
    biases = [np.zeros(1, np.float32)] * 2
    x = np.array([[1e-3], [1.0]], np.float32)
    assert fuzz_kernel.float32_safe_rows(weights, biases, [0, 0], x).tolist() == [True, False]  # 1e37, 1e40
    assert fuzz_kernel.float32_safe_rows(weights, biases, [3, 0], x).tolist() == [True, True]  # tanh caps at 1
