"""benchmarks/gpu_check.py in its CPU mode on a tiny config: the comparisons are made and pass, the
graphs broken on purpose are caught, a broken real graph fails the check, bad arguments exit 2."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.fast_step import kernel_rate

ROOT = Path(__file__).resolve().parent.parent
GPU_CHECK = ROOT / "benchmarks" / "gpu_check.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GPU_CHECK), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    done = run("--device", "cpu", "--tiny", "--threads", "1", "--skip-c", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads((out / "gpu_check.json").read_text()), out


@pytest.mark.slow
def test_the_cpu_mode_compares_every_step_and_passes(tiny_run):
    done, results, out = tiny_run
    found = results["correctness"]
    assert results["device"] == "cpu" and results["failures"] == []
    assert set(found["lockstep"]) == {"fast (cpu) vs reference (cpu)", "graphed (cpu) vs reference (cpu)"}
    for result in found["lockstep"].values():
        assert result["passed"] and result["steps"] == 24
        assert 0 < max(result["worst_step_error"].values()) <= found["step_tolerance"]  # compared, not skipped
        assert result["learning_rates_seen"] >= 3  # the decay reached the steps
        assert result["steps_without_moving_average_update"] == 0
    assert found["lockstep"]["graphed (cpu) vs reference (cpu)"]["graph_rates_followed_schedule"]
    assert found["runs"]["graphed vs fast, independent runs, bit for bit"]["identical"]
    assert not found["runs"]["fast vs reference, independent runs (reported only)"]["identical"]
    assert [(r["kind"], r["identical"]) for r in found["resume"]] == [("fast", True), ("graphed", True)]
    assert {row["mode"] for row in results["speed"]} == {"reference", "fast", "graphed"}
    assert all(row["steps_per_s"] > 0 for row in results["speed"])
    assert results["main_job"].startswith("skipped: needs CUDA") and results["c_kernel"] == "skipped: --skip-c"
    assert results["targets"]["graphed step >= 10,000 steps/s"]["verdict"] == "n/a"
    assert "Result: PASS" in (out / "gpu_check.md").read_text()
    assert (out / "gpu_check.png").read_bytes()[:4] == b"\x89PNG"
    assert "[5/5] the C kernel" in done.stderr  # a progress line per phase


@pytest.mark.slow
def test_each_graph_broken_on_purpose_is_caught(tiny_run):
    _, results, _ = tiny_run
    broken = results["correctness"]["broken"]
    assert set(broken) == {"learning rate frozen at capture", "stale inputs", "moving-average weight frozen at capture"}
    for name, result in broken.items():
        assert result["caught"], name
        assert max(result["worst_step_error"].values()) > 10 * results["correctness"]["step_tolerance"], name
    assert not broken["learning rate frozen at capture"]["graph_rates_followed_schedule"]
    assert broken["moving-average weight frozen at capture"]["worst_step_error"]["generator"] < 1e-3  # only the average


@pytest.mark.slow
def test_a_broken_real_graph_fails_the_check_and_names_it(tmp_path):
    done = run("--device", "cpu", "--tiny", "--steps", "8", "--threads", "1", "--skip-c", "--break-graph", "input",
               "--out", str(tmp_path))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "FAILED: lock-step graphed (cpu) vs reference (cpu)" in done.stderr
    assert "graphed vs fast, independent runs, bit for bit" in done.stderr
    assert json.loads((tmp_path / "gpu_check.json").read_text())["failures"]


@pytest.mark.parametrize("args, named", [
    (["--steps", "4"], "got 4"),
    (["--steps", "x"], "'x'"),
    (["--threads", "0"], "got 0"),
    (["--device", "tpu"], "'tpu'"),
    (["--no-such-option"], "--no-such-option"),
])
def test_bad_arguments_are_one_line_and_status_2(args, named):
    done = run(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and named in done.stderr, done.stderr


def test_out_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = run("--out", str(blocker))
    assert done.returncode == 2 and "not a folder" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where CUDA is absent")
def test_cuda_without_cuda_is_refused():
    done = run("--device", "cuda")
    assert done.returncode == 2 and "CUDA is not available" in done.stderr


def test_the_fast_step_gives_cudas_adam_the_rate_its_graph_holds():
    """CUDA's fused Adam reads a graph's float32 rate tensor widened to double; the plain step's float
    rate must be that same double, or the two round step sizes apart (the CPU's kernel reads doubles)."""
    rate = 6e-4
    as_float32 = struct.unpack("f", struct.pack("f", rate))[0]
    assert as_float32 != rate
    assert kernel_rate(rate, torch.device("cuda")) == as_float32 == torch.tensor(rate, dtype=torch.float32).item()
    assert kernel_rate(rate, torch.device("cpu")) == rate
