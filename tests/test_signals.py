"""Ctrl-C and SIGTERM save a checkpoint at the current step, and the run resumes from it."""

import json
import signal
import subprocess
import sys
import time

import pytest

from training import checkpoint

pytestmark = pytest.mark.slow  # each case trains, is signalled and resumes: about 15 s


def wait_for_metrics(path, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return
        if process.poll() is not None:
            pytest.fail(f"training exited early: {process.communicate()}")
        time.sleep(0.05)
    pytest.fail("training wrote no metrics in time")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_checkpoint_and_the_run_resumes(tmp_path, signum):
    run_dir = tmp_path / "runs" / "sig"
    # 5,000 bundled digits, far more epochs than it will get through before the signal
    argv = [sys.executable, "-m", "training.run", "--out_dir", str(tmp_path / "runs"), "--name", "sig",
            "--epochs", "1000", "--log_every", "5", "--threads", "1", "--progress", "false", "--eval_every", "0"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_metrics(run_dir / "metrics.jsonl", process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert "checkpoint saved" in out and "--resume" in out
    state, _ = checkpoint.load_latest(run_dir)
    assert state["step"] >= 5
    stopped_epoch = state["epoch"]

    # Continue to the end of the next epoch only: the run completes from where it stopped.
    resumed = subprocess.run([sys.executable, "-m", "training.run", "--resume", str(run_dir),
                              "--epochs", str(stopped_epoch + 1), "--progress", "false"],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    final, _ = checkpoint.load_latest(run_dir)
    assert final["epoch"] == stopped_epoch + 1 and final["step_in_epoch"] == 0
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))
