"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a dict of tensors and plain values (no pickled objects), loaded with
torch.load(weights_only=True) so that loading one never executes code.
"""

import os
import pickle
import re
from pathlib import Path

import torch

from training.config import TrainConfig
from training.errors import TrainingError

FORMAT = "ganpack-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d{9})\.pt$")

# What each reader needs, key -> type: an export rebuilds the networks (export/package.py); a
# resume restores everything (training/trainer.py), and the moving average when the config keeps one.
EXPORT_KEYS = {"config": dict, "generator": dict, "discriminator": dict, "epoch": int, "step": int}
RESUME_KEYS = {**EXPORT_KEYS, "optimizer_g": dict, "optimizer_d": dict, "torch_rng": torch.Tensor,
               "step_in_epoch": int, "elapsed": (int, float), "world_size": int}


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:09d}.pt"


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: never a half-written file.
    A failed write (a full disk, say) removes the temporary file and leaves older checkpoints."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as file:
            torch.save({"format": FORMAT, "version": VERSION, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise TrainingError(f"cannot write checkpoint '{path}': {error.strerror or error}; "
                            "the previous checkpoints are kept") from None


def remove_partial_writes(run_dir: Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that a killed process left behind."""
    folder = run_dir / "checkpoints"
    stale = sorted(folder.glob("*.tmp")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def checkpoint_bytes(state: dict) -> int:
    """Bytes of the tensors in a state dict (a checkpoint is about this size on disk)."""
    total = 0
    for value in state.values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif isinstance(value, dict):
            total += checkpoint_bytes(value)
        elif isinstance(value, (list, tuple)):
            total += checkpoint_bytes(dict(enumerate(value)))
    return total


def load_checkpoint(path: Path, needed: dict | None = None) -> dict:
    """The checkpoint at `path`, checked to hold the keys its reader needs (EXPORT_KEYS or
    RESUME_KEYS) with values of their types; TrainingError, one line naming the file and the key, if not."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # not a pickle, or weights_only refused an object (a many-line message)
        raise TrainingError(f"checkpoint '{path}' cannot be read: not a checkpoint, or it holds objects other "
                            "than tensors and plain values (refused: loading them could run code)") from None
    except Exception as error:  # truncation, zip errors: all mean "unusable"
        detail = " ".join(str(error).split()) or type(error).__name__  # one line, never empty
        raise TrainingError(f"checkpoint '{path}' cannot be read (truncated or corrupt): {detail}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainingError(f"'{path}' is not a ganpack checkpoint")
    if state.get("version") != VERSION:
        raise TrainingError(f"checkpoint '{path}' has version {state.get('version')!r}; "
                            f"this ganpack reads version {VERSION}")
    check_keys(state, path, needed or {})
    return state


def check_keys(state: dict, path: Path, needed: dict) -> None:
    """TrainingError naming `path` unless `state` holds every key of `needed`, of its type."""
    missing = [key for key in needed if key not in state]
    if not missing:
        for key, kind in needed.items():
            if not isinstance(state[key], kind) or isinstance(state[key], bool):
                raise TrainingError(f"checkpoint '{path}' holds a {type(state[key]).__name__} under the key "
                                    f"'{key}', not a {getattr(kind, '__name__', 'number')}")
        if needed is RESUME_KEYS and "generator_ema" not in state \
                and TrainConfig.from_dict(state["config"]).optimizer.ema_decay > 0:
            missing = ["generator_ema"]  # the trainer keeps the average, so it restores one
    if missing:
        raise TrainingError(f"checkpoint '{path}' lacks the key{'s' * (len(missing) > 1)} "
                            f"{', '.join(map(repr, missing))}: not written by this ganpack, or edited since")


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints in the run folder, oldest first (ordered by step)."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_latest(run_dir: Path, warn=print, needed: dict | None = None) -> tuple[dict, Path]:
    """The newest checkpoint that loads and holds the keys `needed`; a corrupt newer one is
    reported and skipped. When none does, the error says why the newest did not."""
    if not run_dir.is_dir():
        raise TrainingError(f"run folder '{run_dir}' " + ("is a file" if run_dir.exists() else "does not exist"))
    candidates = list_checkpoints(run_dir)
    if not candidates:
        raise TrainingError(f"no checkpoint found in '{run_dir / 'checkpoints'}'")
    newest = None
    for path in reversed(candidates):
        try:
            return load_checkpoint(path, needed), path
        except TrainingError as error:
            warn(f"warning: skipping {error}")
            newest = newest or error
    raise TrainingError(f"no readable checkpoint in '{run_dir / 'checkpoints'}' (the newest: {newest})")


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    for path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)
