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


def full_state(**changes) -> dict:
    """What the trainer writes (training/trainer.py, Trainer.state), tiny, with `changes` applied
    (a value of None removes the key)."""
    from training.config import TrainConfig

    state = {"config": TrainConfig().to_dict(), "generator": {"w": torch.zeros(2)}, "discriminator": {},
             "generator_ema": {"w": torch.zeros(2)}, "optimizer_g": {}, "optimizer_d": {},
             "torch_rng": torch.get_rng_state(), "epoch": 1, "step_in_epoch": 0, "step": 4, "elapsed": 1.5,
             "world_size": 1}
    state.update(changes)
    return {key: value for key, value in state.items() if value is not None}


@pytest.mark.parametrize("changes, needed, message", [
    ({"generator": None}, checkpoint.EXPORT_KEYS, "lacks the key 'generator': not written by this ganpack"),
    ({"config": None, "step": None}, checkpoint.EXPORT_KEYS, "lacks the keys 'config', 'step'"),
    ({"optimizer_d": None}, checkpoint.RESUME_KEYS, "lacks the key 'optimizer_d'"),
    ({"world_size": None}, checkpoint.RESUME_KEYS, "lacks the key 'world_size'"),
    ({"generator_ema": None}, checkpoint.RESUME_KEYS, "lacks the key 'generator_ema'"),  # ema_decay > 0
    ({"step": "4"}, checkpoint.EXPORT_KEYS, "holds a str under the key 'step', not a int"),
    ({"generator": [1.0]}, checkpoint.EXPORT_KEYS, "holds a list under the key 'generator', not a dict"),
    ({"elapsed": True}, checkpoint.RESUME_KEYS, "holds a bool under the key 'elapsed', not a number"),
])
def test_a_key_its_reader_needs_missing_is_one_line_naming_file_and_key(tmp_path, changes, needed, message):
    path = tmp_path / "step.pt"
    checkpoint.save_checkpoint(full_state(**changes), path)
    with pytest.raises(TrainingError, match=f"^checkpoint '{path}' {message}") as caught:
        checkpoint.load_checkpoint(path, needed)
    assert "\n" not in str(caught.value)


def test_what_each_reader_needs(tmp_path):
    """An export needs the networks, a resume everything; the average only when the config keeps one."""
    path = tmp_path / "step.pt"
    checkpoint.save_checkpoint(full_state(optimizer_g=None), path)
    assert checkpoint.load_checkpoint(path, checkpoint.EXPORT_KEYS)["step"] == 4
    without_ema = full_state(generator_ema=None)
    without_ema["config"]["optimizer"]["ema_decay"] = 0.0
    checkpoint.save_checkpoint(without_ema, path)
    assert checkpoint.load_checkpoint(path, checkpoint.RESUME_KEYS)["step"] == 4


def test_latest_skips_a_checkpoint_lacking_a_key_and_says_why_when_none_is_left(tmp_path):
    checkpoint.save_checkpoint(full_state(), checkpoint.checkpoint_path(tmp_path, 10))
    checkpoint.save_checkpoint(full_state(torch_rng=None), checkpoint.checkpoint_path(tmp_path, 20))
    warnings = []
    _, path = checkpoint.load_latest(tmp_path, warn=warnings.append, needed=checkpoint.RESUME_KEYS)
    assert path.name == "step_000000010.pt"
    assert warnings == [f"warning: skipping checkpoint '{checkpoint.checkpoint_path(tmp_path, 20)}' lacks the key "
                        "'torch_rng': not written by this ganpack, or edited since"]
    checkpoint.checkpoint_path(tmp_path, 10).unlink()
    with pytest.raises(TrainingError, match=r"^no readable checkpoint in '.*' \(the newest: checkpoint "
                                            r"'.*step_000000020.pt' lacks the key 'torch_rng'"):
        checkpoint.load_latest(tmp_path, warn=warnings.append, needed=checkpoint.RESUME_KEYS)
