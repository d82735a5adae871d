"""DistributedDataParallel on the CPU: 2 gloo processes under torchrun end with identical weights."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training import checkpoint, distributed
from training.distributed import World, close_world

TESTS = Path(__file__).resolve().parent


def torchrun_command(*args, cwd):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")])}
    return command, env


def torchrun(*args, cwd):
    command, env = torchrun_command(*args, cwd=cwd)
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@pytest.mark.slow
def test_two_cpu_ranks_end_with_identical_weights(tmp_path):
    result = torchrun(str(TESTS / "ddp_worker.py"), str(tmp_path), cwd=TESTS.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["steps"] == rank1["steps"] == 2 * 4  # 1,024 images / global batch 256, 2 epochs
    for network in ("generator", "discriminator"):
        for key, tensor in rank0[network].items():
            assert torch.equal(tensor, rank1[network][key]), f"{network}.{key} differs between ranks"
    # rank 0 alone wrote the run folder, and its log holds the rank-averaged metrics
    records = (tmp_path / "runs" / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(records) == 8 and all(0 < json.loads(r)["d_real"] < 1 for r in records)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp"]


@pytest.mark.slow
def test_torchrun_command_line(tmp_path):
    result = torchrun("-m", "training.run", "--dry-run", "--out_dir", str(tmp_path / "runs"), "--name", "cli",
                      "--progress", "false", "--threads", "1", "--batch_size", "64", cwd=TESTS.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x 2 processes" in result.stdout and "global batch 128" in result.stdout
    assert (tmp_path / "runs" / "cli" / "samples" / "final.png").exists()


@pytest.mark.slow
def test_a_signal_under_torchrun_stops_every_rank_at_one_step_and_the_run_resumes_exactly(tmp_path):
    """torchrun passes SIGTERM on to both ranks, each at a step of its own: they agree on one step,
    rank 0 checkpoints, and the resumed run ends with the weights of a run never stopped."""
    root = TESTS.parent
    runs = tmp_path / "runs"

    def train(name, *extra):  # 5,000 bundled digits, global batch 256: 19 steps an epoch
        return ("-m", "training.run", "--out_dir", str(runs), "--name", name, "--epochs", "8", "--batch_size", "128",
                "--log_every", "4", "--threads", "1", "--progress", "false", "--eval_every", "0",
                "--export", "false", *extra)

    whole = torchrun(*train("whole"), cwd=root)
    assert whole.returncode == 0, whole.stderr[-3000:]
    command, env = torchrun_command(*train("stopped"), cwd=root)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, env=env)
    metrics = runs / "stopped" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().strip()) and process.poll() is None:
        assert time.monotonic() < deadline, "no metrics in time"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert "checkpoint saved" in out, err[-3000:]
    stopped, _ = checkpoint.load_latest(runs / "stopped")
    assert 0 < stopped["step"] < 8 * 19 and stopped["step"] % 4 == 0  # stopped early, at an agreed step

    resumed = torchrun("-m", "training.run", "--resume", str(runs / "stopped"), "--progress", "false", cwd=root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"from step_{stopped['step']:08d}" in resumed.stdout or f"step {stopped['step']})" in resumed.stdout
    a, b = (checkpoint.load_latest(runs / name)[0] for name in ("whole", "stopped"))
    assert a["step"] == b["step"] == 8 * 19
    for network in ("generator", "discriminator", "generator_ema"):
        for key, tensor in a[network].items():
            assert torch.equal(tensor, b[network][key]), f"{network}.{key} differs from the run never stopped"


def test_a_finished_run_waits_for_every_rank_before_leaving(monkeypatch):
    """A gloo rank that tore down while rank 0 was still writing its package aborted
    ("terminate called without an active exception"): after a finished run every rank meets first."""
    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    close_world(World(rank=1, size=2), finished=True)
    assert calls == ["barrier", "destroy"]
    calls.clear()
    close_world(World(rank=1, size=2), finished=False)  # after an error a peer may be gone: no wait
    assert calls == ["destroy"]
    calls.clear()
    close_world(World(), finished=True)  # a plain run has no group
    assert calls == []
