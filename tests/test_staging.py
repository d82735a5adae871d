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


def save_untrained(path: Path, step: int) -> None:
    """A checkpoint of the default networks, seeded by `step`: two steps give two packages."""
    import torch

    from training import checkpoint
    from training.config import TrainConfig
    from training.model import build_models

    config = TrainConfig()
    torch.manual_seed(step)
    generator, discriminator = build_models(config.model)
    checkpoint.save_checkpoint({"config": config.to_dict(), "generator": generator.state_dict(),
                                "discriminator": discriminator.state_dict(), "epoch": 1, "step": step}, path)


def held(folder: Path) -> int | None:
    """The training step of the package in `folder`, checked whole; None when there is none."""
    from ganpack.manifest import read_manifest
    from ganpack.package import verify_package

    if not folder.exists():
        return None
    verify_package(folder)
    return read_manifest(folder).provenance["steps"]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at, left", [(1, 4), (2, None), (3, 8), (4, 8)])
def test_a_replacing_export_killed_at_any_step_loses_no_package(tmp_path, monkeypatch, kill_at, left):
    """`python -m export new.pt --out pkg --overwrite` over the package of old.pt, SIGKILLed at each
    step of putting the new one in place (tests/kill_during_export.py): 1 before moving the old one
    aside, 2 between the two renames, 3 midway through removing the old one; 4 is past the last.
    The folder then holds the old or the new package, or nothing with the old one aside, which the
    next export puts back first, even one that fails; the next export that succeeds leaves its own."""
    import export.package as package_module
    from export.errors import ExportError
    from export.package import load_state, write_package

    save_untrained(tmp_path / "old.pt", 4)
    save_untrained(tmp_path / "new.pt", 8)
    write_package(load_state(tmp_path / "old.pt"), tmp_path / "pkg", log=lambda *a: None)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_during_export.py"), str(kill_at), "new.pt",
                           "--out", "pkg", "--overwrite"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == (0 if kill_at == 4 else -signal.SIGKILL), done.stderr[-2000:]
    assert held(tmp_path / "pkg") == left
    if left is None:
        assert held(tmp_path / ".pkg.replaced") == 4  # aside, whole

    def parity_fails(*args, **kwargs):
        raise ExportError("parity failed")

    monkeypatch.setattr(package_module, "check_parity", parity_fails)
    with pytest.raises(ExportError, match="parity failed"):
        write_package(load_state(tmp_path / "new.pt"), tmp_path / "pkg", overwrite=True, log=lambda *a: None)
    assert held(tmp_path / "pkg") == (left or 4)
    monkeypatch.undo()

    then = time.time() - 10 * GRACE_S  # the killed export's staging folder, as the next export finds it later
    for killed in tmp_path.glob(".pkg.*.partial"):
        os.utime(killed, (then, then))
    write_package(load_state(tmp_path / "new.pt"), tmp_path / "pkg", overwrite=True, log=lambda *a: None)
    assert held(tmp_path / "pkg") == 8
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new.pt", "old.pt", "pkg"]
