"""The coverage-guided fuzz target (tests/fuzz_kernel.py) runs for a bounded time in CI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a fuzzing run of fixed length

pytest.importorskip("atheris", reason="atheris has wheels for CPython 3.11-3.13 on x86-64 Linux only")
pytest.importorskip("ganpack.backends.c_backend", reason="the C kernel is not built")

FUZZ_SECONDS = 30


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
