"""Staging folders (export/staging.py): a killed export's is removed by the next export to the same
destination; a running export's, another destination's and anything else beside it are kept."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from export.staging import GRACE_S, remove_stale_staging

fcntl = pytest.importorskip("fcntl")  # without flock, staging folders are judged by age alone

ROOT = Path(__file__).resolve().parent.parent
HOLD_LOCK = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(descriptor, fcntl.LOCK_EX)  # as a running export holds its staging folder
print("locked", flush=True)
time.sleep(120)
"""


def left_behind(folder: Path, age_s: float = 10 * GRACE_S) -> Path:
    """A staging folder with half a package in it, last changed age_s ago."""
    folder.mkdir()
    (folder / "generator.onnx").write_bytes(b"half a graph")
    then = time.time() - age_s
    os.utime(folder, (then, then))
    return folder


def test_only_the_destinations_stale_staging_folders_go(tmp_path):
    stale = left_behind(tmp_path / ".pkg.k3x_9q0a.partial")
    young = left_behind(tmp_path / ".pkg.young123.partial", age_s=1)  # mkdtemp'd, lock not yet taken
    other = left_behind(tmp_path / ".other.k3x_9q0a.partial")  # another destination's
    near_misses = [left_behind(tmp_path / name) for name in
                   (".pkg.k3x_9q0a.partial.bak", "pkg.k3x_9q0a.partial", ".pkg.short.partial", ".pkg.k3x_9q0a")]
    target = left_behind(tmp_path / "elsewhere")
    (tmp_path / ".pkg.link1234.partial").symlink_to(target)
    assert remove_stale_staging(tmp_path / "pkg") == [stale]
    assert not stale.exists()
    for kept in (young, other, *near_misses, target):
        assert (kept / "generator.onnx").exists(), kept
    assert (tmp_path / ".pkg.link1234.partial").is_symlink()


def test_a_running_exports_folder_is_kept_until_its_process_dies(tmp_path):
    live = left_behind(tmp_path / ".pkg.a1b2c3d4.partial")  # old: only the lock protects it
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert remove_stale_staging(tmp_path / "pkg") == []
        assert (live / "generator.onnx").exists()
    finally:
        holder.kill()  # SIGKILL, as a killed export dies: the kernel drops its lock
        holder.wait()
    assert remove_stale_staging(tmp_path / "pkg") == [live]
    assert not live.exists()


@pytest.mark.slow
def test_the_export_after_a_killed_one_removes_its_staging_folder(tmp_path):
    from training import checkpoint
    from training.config import TrainConfig
    from training.model import build_models

    config = TrainConfig()
    generator, discriminator = build_models(config.model)
    checkpoint.save_checkpoint({"config": config.to_dict(), "generator": generator.state_dict(),
                                "discriminator": discriminator.state_dict(), "epoch": 1, "step": 4},
                               tmp_path / "step.pt")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "export", "step.pt", "--out", "pkg"]

    export = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".pkg.*.partial")) and export.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    export.send_signal(signal.SIGKILL)
    export.wait()
    (killed,) = tmp_path.glob(".pkg.*.partial")  # what the issue saw: left for good
    assert not (tmp_path / "pkg").exists()

    then = time.time() - 10 * GRACE_S  # as if the next export came a while later
    os.utime(killed, (then, then))
    other = left_behind(tmp_path / ".pkg2.k3x_9q0a.partial")
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"removed '{killed.name}', the staging folder of an export that did not finish" in done.stdout
    assert not killed.exists() and other.exists()
    assert (tmp_path / "pkg" / "manifest.json").is_file()
    assert not list(tmp_path.glob(".pkg.*"))
