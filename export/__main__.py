"""`python -m export RUN_DIR_OR_CHECKPOINT --out MODEL_DIR [--overwrite]`: write a model package."""

import argparse
import sys
from pathlib import Path

from export.errors import ExportError
from ganpack.contract import MANIFEST_FILE
from ganpack.errors import PackageError, run_command
from ganpack.manifest import read_manifest


def run_quality(source: Path, step: int) -> dict:
    """The quality the training run measured on these very weights (its own export at the end,
    RUN/model/manifest.json, at the same step), or {} when there is none."""
    if not (source / "model" / MANIFEST_FILE).is_file():
        return {}
    try:
        manifest = read_manifest(source / "model")
    except PackageError:
        return {}
    return manifest.quality if manifest.provenance.get("steps") == step else {}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default prints the usage too; run_command prints one line
        raise ExportError(f"{message} (see {self.prog} --help)")


def main(argv: list[str]) -> int:
    parser = _Parser(prog="python -m export", description=__doc__)
    parser.add_argument("source", help="a run folder (its newest checkpoint) or a checkpoint file")
    parser.add_argument("--out", required=True, help="the model package folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing package")
    args = parser.parse_args(argv)
    if not args.out:  # Path("") is the current folder
        raise ExportError("--out needs a folder name, got an empty one")
    from export.package import load_state, write_package  # torch and onnx load after the arguments

    state = load_state(args.source)
    quality = run_quality(Path(args.source), state["step"])
    path = write_package(state, args.out, overwrite=args.overwrite, quality=quality)
    print(f"model package written to {path}" + ("; quality carried from the run's final evaluation" if quality
                                                else "; no quality recorded (python -m training.evaluate measures it)"))
    return 0


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
