"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a dict of tensors and plain values (no pickled objects), loaded with
torch.load(weights_only=True) so that loading one never executes code.
"""

import os
import pickle
import re
from pathlib import Path

import torch

from training.errors import TrainingError

FORMAT = "ganpack-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d{9})\.pt$")


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


def load_checkpoint(path: Path) -> dict:
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
    return state


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints in the run folder, oldest first (ordered by step)."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_latest(run_dir: Path, warn=print) -> tuple[dict, Path]:
    """The newest checkpoint that loads; a corrupt newer one is reported and skipped."""
    if not run_dir.is_dir():
        raise TrainingError(f"run folder '{run_dir}' " + ("is a file" if run_dir.exists() else "does not exist"))
    candidates = list_checkpoints(run_dir)
    if not candidates:
        raise TrainingError(f"no checkpoint found in '{run_dir / 'checkpoints'}'")
    for path in reversed(candidates):
        try:
            return load_checkpoint(path), path
        except TrainingError as error:
            warn(f"warning: skipping {error}")
    raise TrainingError(f"no readable checkpoint in '{run_dir / 'checkpoints'}'")


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    for path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)
