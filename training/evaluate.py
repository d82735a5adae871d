"""Measure a generator: `python -m training.evaluate MODEL_DIR_OR_RUN [--samples 10000]`.

Prints the metrics of training/metrics.py for N generated digits, with two reference rows: held-out
real digits (the floor a perfect generator approaches) and uniform noise. All feature-space
comparisons are against the classifier's training split of the same data set.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ganpack.contract import IMAGE_DIM, MANIFEST_FILE
from ganpack.errors import run_command
from training import mnist
from training.classifier import load_or_train, split
from training.config import MAX_EVAL_SAMPLES
from training.errors import ConfigError
from training.metrics import all_metrics

COLUMNS = ("frechet_distance", "classifier_score", "rarest_class_fraction", "precision", "recall", "samples")


def default_cache_dir() -> Path:
    return mnist.default_cache_dir().parent / "evaluator"


def generated_images(source: str, samples: int, seed: int) -> tuple[torch.Tensor, dict]:
    """(samples, 784) in [-1, 1] from a model package (folder or .zip), or a run folder's package."""
    import ganpack

    path = Path(source)
    if (path / "model" / MANIFEST_FILE).is_file():
        path = path / "model"
    model = ganpack.load(path)
    images = model.sample(samples, seed=seed, output="float").reshape(samples, -1)
    return torch.from_numpy(images), model.manifest.training_config


class Evaluator:
    """The classifier for one data set and the features of its training split, ready to score."""

    def __init__(self, real_uint8: np.ndarray, labels: np.ndarray, cache_dir: str = "", log=print):
        self.classifier = load_or_train(real_uint8, labels, Path(cache_dir) if cache_dir else default_cache_dir(), log)
        train, _ = split(len(real_uint8))
        _, self.reference = self.classifier.predict(mnist.to_training_tensor(real_uint8, "cpu")[train])

    def metrics(self, images: torch.Tensor) -> dict:
        """Every metric for images (N, 784) in [-1, 1]."""
        return all_metrics(self.classifier, images.float().cpu(), self.reference)

    def report(self, images: torch.Tensor) -> dict:
        """Metric rows for `images` and the two references, as {"generated", "real", "noise"}."""
        noise = torch.rand(len(images), IMAGE_DIM, generator=torch.Generator().manual_seed(0)) * 2 - 1
        return {"generated": self.metrics(images), "real": self.metrics(self.classifier.held_out_images),
                "noise": self.metrics(noise), "classifier_accuracy": self.classifier.held_out_accuracy}


def evaluate(images: torch.Tensor, dataset: str = "bundled", data_dir: str = "", cache_dir: str = "",
             log=print) -> dict:
    real_uint8, labels = mnist.load_dataset(dataset, data_dir, "")
    return Evaluator(real_uint8, labels, cache_dir, log).report(images)


def table(rows: dict) -> str:
    lines = ["| row | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in ("generated", "real", "noise"):
        row = rows[name]
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"\nclassifier held-out accuracy: {rows['classifier_accuracy']:.4f}; class histogram of the "
                 f"generated digits: {[round(f, 3) for f in rows['generated']['class_histogram']]}")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default prints the usage too; run_command prints one line
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _checked_outputs(args) -> Path:
    """Check --json and --cache-dir before minutes of work; returns the cache folder, created."""
    if args.json:
        report = Path(args.json)
        if report.is_dir():
            raise ConfigError(f"--json '{report}' is a folder")
        if not report.parent.is_dir():
            raise ConfigError(f"--json '{report}': '{report.parent}' is not a folder")
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if cache_dir.exists() and not cache_dir.is_dir():
        raise ConfigError(f"--cache-dir '{cache_dir}' is a file")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file in the way, or no permission
        raise ConfigError(f"--cache-dir '{cache_dir}' cannot be created: {error.strerror or error}") from None
    return cache_dir


def main(argv: list[str]) -> int:
    parser = _Parser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a model package folder or .zip, or a run folder")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default="", help="where the classifier is cached")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if not 10 <= args.samples <= MAX_EVAL_SAMPLES:
        raise ConfigError(f"--samples must be in [10, {MAX_EVAL_SAMPLES}], got {args.samples}")
    images, training_config = generated_images(args.source, args.samples, args.seed)
    cache_dir = _checked_outputs(args)  # after the source: a missing model creates no cache folder
    data = training_config.get("data", {})
    rows = evaluate(images, data.get("data", "bundled"), data.get("data_dir", ""), str(cache_dir),
                    log=lambda message: print(message, file=sys.stderr))
    print(table(rows))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        except OSError as error:
            raise ConfigError(f"cannot write --json '{args.json}': {error.strerror or error}") from None
    return 0


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
