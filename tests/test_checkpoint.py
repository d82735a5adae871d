"""Checkpoints: atomic writes, code-free loading, and skipping a corrupt newest file."""

import pytest
import torch

from training import checkpoint
from training.errors import TrainingError


def test_save_and_load_round_trip(tmp_path):
    path = checkpoint.checkpoint_path(tmp_path, 12)
    checkpoint.save_checkpoint({"weights": torch.arange(4.0), "step": 12}, path)
    state = checkpoint.load_checkpoint(path)
    assert torch.equal(state["weights"], torch.arange(4.0)) and state["step"] == 12
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed into place


class Exploit:
    """Unpickling this writes a file: proof that code ran."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_loading_never_runs_pickled_code(tmp_path):
    path = checkpoint.checkpoint_path(tmp_path, 1)
    path.parent.mkdir(parents=True)
    torch.save({"format": checkpoint.FORMAT, "version": 1, "payload": Exploit(tmp_path / "code-ran")}, path)
    with pytest.raises(TrainingError, match="cannot be read"):
        checkpoint.load_checkpoint(path)
    assert not (tmp_path / "code-ran").exists()


def test_wrong_format_and_version_are_refused(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"format": "something-else"}, path)
    with pytest.raises(TrainingError, match="not a ganpack checkpoint"):
        checkpoint.load_checkpoint(path)
    torch.save({"format": checkpoint.FORMAT, "version": 99}, path)
    with pytest.raises(TrainingError, match="version 99"):
        checkpoint.load_checkpoint(path)


def test_latest_skips_a_corrupt_checkpoint(tmp_path):
    for step in (10, 20):
        checkpoint.save_checkpoint({"step": step}, checkpoint.checkpoint_path(tmp_path, step))
    newest = checkpoint.checkpoint_path(tmp_path, 30)
    newest.write_bytes(b"truncated garbage")
    warnings = []
    state, path = checkpoint.load_latest(tmp_path, warn=warnings.append)
    assert state["step"] == 20 and path.name == "step_000000020.pt"
    assert "step_000000030.pt" in warnings[0]


def test_prune_keeps_the_newest(tmp_path):
    for step in (1, 2, 3, 4):
        checkpoint.save_checkpoint({"step": step}, checkpoint.checkpoint_path(tmp_path, step))
    checkpoint.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_000000003.pt", "step_000000004.pt"]


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint found"):
        checkpoint.load_latest(tmp_path)
