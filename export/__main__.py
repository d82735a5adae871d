"""`python -m export RUN_DIR_OR_CHECKPOINT --out MODEL_DIR [--overwrite]`: write a model package."""

import argparse
import sys

from ganpack.errors import run_command


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("source", help="a run folder (its newest checkpoint) or a checkpoint file")
    parser.add_argument("--out", required=True, help="the model package folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing package")
    args = parser.parse_args(argv)
    from export.package import load_state, write_package  # torch and onnx load after the arguments

    path = write_package(load_state(args.source), args.out, overwrite=args.overwrite)
    print(f"model package written to {path}")
    return 0


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
