"""benchmarks/train_bench.py --quick runs and writes a complete report (never a check of speed)."""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TRAIN_BENCH = ROOT / "benchmarks" / "train_bench.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TRAIN_BENCH), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("train_bench")
    done = run("--quick", "--devices", "cpu", "--threads", "1", "--out", str(out_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads((out_dir / "train_bench.json").read_text()), out_dir


@pytest.mark.slow
def test_quick_run_measures_every_config_and_writes_a_plot(quick_run):
    done, results, out_dir = quick_run
    rows = {(row["device"], row["config"], row["mode"]): row for row in results["rows"]}
    assert set(rows) == {(device, config, mode) for device in ("cpu",) for config in ("default", "wide")
                         for mode in ("eager", "fast")}
    for row in rows.values():
        assert math.isfinite(row["steps_per_s"]) and row["steps_per_s"] > 0
        assert row["ms_per_step"] == pytest.approx(1e3 / row["steps_per_s"])  # one repeat: the same figure
        assert row["threads"] == 1 and row["batch_size"] == 256 and row["finite"]
        eager = rows[row["device"], row["config"], "eager"]["steps_per_s"]
        assert row["vs_eager"] == pytest.approx(row["steps_per_s"] / eager)
        assert 0 < row["profile"]["matmul_share_cpu"] <= 1 and "aten::addmm" in row["profile"]["counted"]
    assert rows["cpu", "wide", "eager"]["generator_hidden"] == rows["cpu", "wide", "fast"]["generator_hidden"] == [256]
    assert results["machine"]["cpu"]["model"] and results["machine"]["torch"] == torch.__version__
    assert results["settings"]["quick"] and results["settings"]["repeats"] == 1
    assert "| device | config | mode | threads | batch | steps/s | ms/step | vs eager | matmul share |" in done.stdout
    assert "measuring cpu / wide / eager, fast" in done.stderr  # the progress line
    assert rows["cpu", "default", "eager"]["train_step"].startswith("reference")
    assert rows["cpu", "default", "fast"]["train_step"].startswith("fast")
    assert (out_dir / "train_bench.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, named", [
    (["--devices", "tpu"], "'tpu'"),
    (["--modes", "bogus"], "'bogus'"),
    (["--preset", "nope"], "'nope'"),
    (["--threads", "0"], "got 0"),
    (["--threads", "abc"], "'abc'"),
    (["--steps", "0"], "got 0"),
    (["--devices", ","], "','"),
    (["--no-such-option"], "--no-such-option"),
])
def test_a_bad_argument_is_one_line_and_status_2(tmp_path, args, named):
    done = run(*args, "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and named in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()  # a mistake leaves no empty folder behind


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    done = run("--devices", "cpu,cuda")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "cuda requested but CUDA is not available" in done.stderr


@pytest.mark.slow
def test_a_new_mode_is_measured_next_to_eager(tmp_path, monkeypatch, capsys):
    """The harness's contract for fast paths: a mode is a name -> (train_step, function(trainer) -> step)."""
    spec = importlib.util.spec_from_file_location("train_bench", TRAIN_BENCH)
    train_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_bench)
    built = []

    def twice(trainer):  # a "mode" that does two eager steps per call: about half the steps/s
        built.append(trainer)
        return lambda real: (trainer.train_step(real), trainer.train_step(real))[1]

    monkeypatch.setattr(train_bench, "MODES", {**train_bench.MODES, "twice": ("reference", twice)})
    threads = torch.get_num_threads()
    try:  # the Trainer sets torch's thread count for the whole process
        status = train_bench.main(["--quick", "--devices", "cpu", "--preset", "default", "--modes", "eager,twice",
                                   "--threads", "1", "--profile-steps", "0", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    assert status == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "train_bench.json").read_text())["rows"]
    assert [row["mode"] for row in rows] == ["eager", "twice"] and len(built) == 1
    assert built[0].config.run.train_step == "reference"
    assert rows[0]["vs_eager"] == 1.0  # each against the eager row of its device and config
    assert rows[1]["vs_eager"] == pytest.approx(rows[1]["steps_per_s"] / rows[0]["steps_per_s"])
    assert rows[1]["profile"] is None
