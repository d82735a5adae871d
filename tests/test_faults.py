"""Training under faults, for real: SIGKILL mid-epoch and mid-checkpoint-write, then resume to the
same weights as an uninterrupted run; a full disk before and during the run; a torn log line."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training import checkpoint
from training.errors import TrainingError
from training.run import main
from training.rundir import MetricsLog, read_metrics

TESTS = Path(__file__).parent
EPOCHS = 6  # 78 steps of batch 64 each on the 5,000 bundled digits; checkpoints after epochs 2, 4 and 6


def train_argv(runs: Path, name: str) -> list[str]:
    return ["--out_dir", str(runs), "--name", name, "--epochs", str(EPOCHS), "--batch_size", "64",
            "--checkpoint_every", "2", "--log_every", "10", "--threads", "1", "--progress", "false",
            "--eval_every", "0", "--export", "false", "--sample_every", "100"]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


def final_weights(run_dir: Path) -> dict:
    state, _ = checkpoint.load_latest(run_dir)
    assert state["epoch"] == EPOCHS
    return {f"{net}.{key}": value for net in ("generator", "discriminator", "generator_ema")
            for key, value in state[net].items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    runs = tmp_path_factory.mktemp("runs")
    done = run([sys.executable, "-m", "training.run", *train_argv(runs, "whole")])
    assert done.returncode == 0, done.stderr
    return final_weights(runs / "whole")


def assert_same(weights: dict, reference: dict) -> None:
    assert weights.keys() == reference.keys()
    for key in reference:
        assert torch.equal(weights[key], reference[key]), f"{key} differs from the uninterrupted run"


def resume(run_dir: Path) -> subprocess.CompletedProcess:
    resumed = run([sys.executable, "-m", "training.run", "--resume", str(run_dir), "--progress", "false"])
    assert resumed.returncode == 0, resumed.stderr
    return resumed


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, uninterrupted):
    run_dir = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "training.run", *train_argv(tmp_path, "killed")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics, deadline = run_dir / "metrics.jsonl", time.monotonic() + 120
    while not (metrics.exists() and any(r["step"] >= 200 for r in read_metrics(metrics))):  # inside epoch 3
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    state, _ = checkpoint.load_latest(run_dir)
    assert state["epoch"] < EPOCHS  # it really was cut short
    resume(run_dir)
    assert_same(final_weights(run_dir), uninterrupted)
    steps = [r["step"] for r in read_metrics(metrics)]
    assert steps == sorted(set(steps))  # the log has no repeats after the replay


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint_then_resume_matches(tmp_path, uninterrupted):
    run_dir = tmp_path / "torn"
    killed = run([sys.executable, str(TESTS / "kill_during_checkpoint.py"), "2", *train_argv(tmp_path, "torn")],
                 env={**os.environ,
                      "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])})
    assert killed.returncode == -signal.SIGKILL
    partial = list((run_dir / "checkpoints").glob("*.tmp"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0  # half a checkpoint on disk
    assert [p.name for p in checkpoint.list_checkpoints(run_dir)] == ["step_000000156.pt"]  # epoch 2 only
    resumed = resume(run_dir)
    assert "did not finish" in resumed.stdout
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
    assert_same(final_weights(run_dir), uninterrupted)


@pytest.mark.slow
def test_a_corrupt_newest_checkpoint_is_refused_and_the_previous_one_resumes(tmp_path, uninterrupted):
    run_dir = tmp_path / "corrupt"
    done = run([sys.executable, "-m", "training.run", *train_argv(tmp_path, "corrupt"), "--epochs", "4"])
    assert done.returncode == 0, done.stderr
    newest = checkpoint.list_checkpoints(run_dir)[-1]  # epoch 4
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as by a failing disk
    resumed = run([sys.executable, "-m", "training.run", "--resume", str(run_dir), "--epochs", str(EPOCHS),
                   "--progress", "false"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipping checkpoint '{newest}' cannot be read" in resumed.stdout
    assert "from step_000000156.pt (epoch 2" in resumed.stdout
    assert_same(final_weights(run_dir), uninterrupted)


def test_a_full_disk_is_refused_before_the_first_step(tmp_path, monkeypatch):
    import training.trainer as trainer_module

    usage = trainer_module.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(trainer_module.shutil, "disk_usage",
                        lambda path: usage._replace(free=1_000_000))  # 1 MB left
    with pytest.raises(TrainingError, match=r"not enough free space.*1\.0 MB free"):
        main(train_argv(tmp_path, "full"))
    assert not (tmp_path / "full" / "metrics.jsonl").exists()  # no step was taken


def test_disk_filling_up_mid_run_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real_save, saves = checkpoint.torch.save, []

    def save_until_full(obj, file):
        saves.append(file.name)
        if len(saves) == 2:
            file.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, file)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_full)
    with pytest.raises(TrainingError, match="No space left on device.*previous checkpoints are kept"):
        main(train_argv(tmp_path, "filling"))
    folder = tmp_path / "filling" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["step_000000156.pt"]  # no .tmp left behind
    assert checkpoint.load_checkpoint(folder / "step_000000156.pt")["epoch"] == 2


def test_a_torn_last_log_line_is_dropped_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 10}) + "\n" + json.dumps({"step": 20}) + "\n" + '{"step": 3')
    assert [r["step"] for r in read_metrics(path)] == [10, 20]
    MetricsLog(path, resume_step=10).close()
    assert path.read_text() == json.dumps({"step": 10}) + "\n"
