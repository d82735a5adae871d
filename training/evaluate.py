"""Measure a generator: `python -m training.evaluate MODEL_DIR_OR_RUN [--samples 10000] [--data PATH]
[--precision bf16]`.

Prints the metrics of training/metrics.py for N generated images, with two reference rows: held-out
real images (the floor a perfect generator approaches) and uniform noise. All feature-space
comparisons are against the classifier's training split of the same data set: the package's own
(its training_config), or --data. A package trained on your own files records only their base
name, never a path, so those need --data. Data without labels cannot be scored.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ganpack.contract import IMAGE_DIM, MANIFEST_FILE
from ganpack.errors import run_command
from ganpack.manifest import Manifest
from ganpack.precision import PRECISIONS
from training import mnist
from training.classifier import load_or_train, split
from training.config import DATASETS, MAX_EVAL_SAMPLES
from training.datasets import Dataset, load_dataset
from training.errors import ConfigError, DataError
from training.metrics import all_metrics
from training.model import balanced_labels

COLUMNS = ("frechet_distance", "classifier_score", "rarest_class_fraction", "precision", "recall", "samples")
MIN_LABELED_IMAGES = 100  # the classifier holds out 10%, and precision / recall need a few neighbours


def default_cache_dir() -> Path:
    return mnist.default_cache_dir().parent / "evaluator"


def generated_images(source: str, samples: int, seed: int,
                     precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor | None, Manifest]:
    """(images (samples, 784) in [-1, 1], labels, the package's manifest) from a model package
    (folder or .zip), or a run folder's package, run at `precision` (ganpack.precision). labels:
    the class each image was asked for, (samples,) int64, or None for an unconditional package; a
    conditional package is sampled here with its labels, and the conditional metrics follow from them."""
    import ganpack

    path = Path(source)
    if (path / "model" / MANIFEST_FILE).is_file():
        path = path / "model"
    model = ganpack.load(path, precision=precision)
    if model.classes is None:
        images = model.sample(samples, seed=seed, output="float").reshape(samples, -1)
        return torch.from_numpy(images), None, model.manifest
    labels = balanced_labels(samples, len(model.classes))  # every class equally often (to one)
    images = model.sample(samples, seed=seed, output="float", labels=labels.numpy()).reshape(samples, -1)
    return torch.from_numpy(images), labels, model.manifest


class Evaluator:
    """The classifier for one labeled data set and the features of its training split, ready to
    score. real_uint8 (N, 28, 28) uint8, labels (N,) in 0..num_classes-1 (default: max + 1)."""

    def __init__(self, real_uint8: np.ndarray, labels: np.ndarray, cache_dir: str = "", log=print,
                 num_classes: int | None = None, classifier_seed: int = 0):
        self.num_classes = num_classes or int(labels.max()) + 1
        self.classifier = load_or_train(real_uint8, labels, Path(cache_dir) if cache_dir else default_cache_dir(), log,
                                        self.num_classes, classifier_seed)
        train, _ = split(len(real_uint8))
        _, self.reference = self.classifier.predict(mnist.to_training_tensor(real_uint8, "cpu")[train])
        self.reference_labels = torch.as_tensor(labels.astype(np.int64))[train]  # (M,) the classes of reference

    def metrics(self, images: torch.Tensor, labels=None) -> dict:
        """Every metric for images (N, 784) in [-1, 1]. With labels (N,), the class each image was
        asked for (a tensor or an array of ints), also label_agreement and per_class_frechet_distance
        (training/metrics.py says how many samples per class these need)."""
        if labels is not None:
            labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).cpu()
            if labels.shape != (len(images),) or labels.is_floating_point() or labels.is_complex():
                raise ValueError(f"labels must be integers of shape ({len(images)},), got {labels.dtype} "
                                 f"{tuple(labels.shape)}")
            if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < self.num_classes:
                raise ValueError(f"labels must be in 0..{self.num_classes - 1}, got {int(labels.min())} to "
                                 f"{int(labels.max())}")
        return all_metrics(self.classifier, images.float().cpu(), self.reference, labels, self.reference_labels)

    def report(self, images: torch.Tensor, labels=None) -> dict:
        """Metric rows for `images` and the two references, as {"generated", "real", "noise"}. With
        labels, the real row is scored against the held-out images' own labels (its label_agreement
        is the classifier's accuracy) and the noise row against `labels`."""
        noise = torch.rand(len(images), IMAGE_DIM, generator=torch.Generator().manual_seed(0)) * 2 - 1
        real_labels = self.classifier.held_out_labels if labels is not None else None
        return {"generated": self.metrics(images, labels),
                "real": self.metrics(self.classifier.held_out_images, real_labels),
                "noise": self.metrics(noise, labels), "classifier_accuracy": self.classifier.held_out_accuracy}


def unscorable(data: Dataset) -> str:
    """Why `data` cannot train the evaluator's classifier, or "" when it can."""
    name = data.source["name"]
    if data.labels is None:
        return f"the data '{name}' has no labels, and the evaluator's classifier learns from them"
    if len(data.labels) < MIN_LABELED_IMAGES:
        return f"the data '{name}' has {len(data.labels)} labeled images, fewer than {MIN_LABELED_IMAGES}"
    return ""


def quality_evaluator(data: Dataset, cache_dir: str = "", log=print) -> Evaluator | None:
    """The Evaluator for a run's data; None, said in one line, when the data cannot be scored."""
    reason = unscorable(data)
    if reason:
        log(f"quality cannot be scored: {reason}; training goes on without evaluations")
        return None
    return Evaluator(data.images, data.labels, cache_dir, log, num_classes=len(data.class_names or ()))


def score(images: torch.Tensor, data: Dataset, cache_dir: str = "", log=print, labels=None,
          classifier_seed: int = 0) -> dict:
    """Evaluator.report for `images` against `data`; DataError when the data cannot be scored."""
    reason = unscorable(data)
    if reason:
        raise DataError(f"cannot score: {reason}")
    return Evaluator(data.images, data.labels, cache_dir, log, num_classes=len(data.class_names or ()),
                     classifier_seed=classifier_seed).report(images, labels)


def evaluate(images: torch.Tensor, dataset: str = "bundled", data_dir: str = "", cache_dir: str = "",
             log=print, labels=None) -> dict:
    """score() against the data `dataset` names (as the config's `data`: a name or a path)."""
    return score(images, load_dataset(dataset, data_dir), cache_dir, log, labels)


def table(rows: dict) -> str:
    lines = ["| row | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in ("generated", "real", "noise"):
        row = rows[name]
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"\nclassifier held-out accuracy: {rows['classifier_accuracy']:.4f}; class histogram of the "
                 f"generated images: {[round(f, 3) for f in rows['generated']['class_histogram']]}")
    if "label_agreement" in rows["generated"]:
        agreement = {name: f"{rows[name]['label_agreement']:.3f}" for name in ("generated", "real", "noise")}
        lines.append(f"label agreement: generated {agreement['generated']}, real {agreement['real']}, "
                     f"noise {agreement['noise']}; per-class Frechet distance of the generated images: "
                     f"{[None if d is None else round(d, 1) for d in rows['generated']['per_class_frechet_distance']]}")
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


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _data_of(args, manifest: Manifest) -> tuple[str, str]:
    """(data, data_dir) to score against: --data, else the package's named data set."""
    if args.data:
        return args.data, args.data_dir
    config = manifest.training_config.get("data")
    config = config if isinstance(config, dict) else {}
    name = config.get("data", "bundled")
    if name not in DATASETS:
        raise ConfigError(f"the package was trained on your own data ('{name}'); pass --data with its path to "
                          "score against it")
    return name, args.data_dir or config.get("data_dir", "")


def main(argv: list[str]) -> int:
    parser = _Parser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a model package folder or .zip, or a run folder")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default="", help="where the classifier is cached")
    parser.add_argument("--classifier-seed", type=int, default=0,
                        help="the seed the evaluator's classifier is trained with (another gives a second opinion)")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    parser.add_argument("--data", default="", help="the real data to compare with, as training's --data "
                        "(default: the package's; a package trained on your own files needs their path)")
    parser.add_argument("--data-dir", default="", help="folder with the named data set's files (as training's)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="the weights' precision the samples are drawn at (ganpack.load's precision)")
    args = parser.parse_args(argv)
    if not 10 <= args.samples <= MAX_EVAL_SAMPLES:
        raise ConfigError(f"--samples must be in [10, {MAX_EVAL_SAMPLES}], got {args.samples}")
    if args.classifier_seed < 0:
        raise ConfigError(f"--classifier-seed must be a non-negative integer, got {args.classifier_seed}")
    if args.data and args.data not in DATASETS and not Path(args.data).expanduser().exists():
        raise ConfigError(f"--data '{args.data}' is neither a data set ({', '.join(DATASETS)}) nor a file or "
                          "folder that exists")
    images, labels, manifest = generated_images(args.source, args.samples, args.seed, args.precision)
    name, data_dir = _data_of(args, manifest)
    data = load_dataset(name, data_dir)
    cache_dir = _checked_outputs(args)  # after the source and the data: a mistake in either creates no cache folder
    recorded = manifest.provenance.get("data")
    if isinstance(recorded, dict) and recorded.get("sha256") not in (None, data.source["sha256"]):
        _to_stderr(f"warning: the package was trained on '{recorded.get('name')}' ({recorded.get('images')} images); "
            f"'{data.source['name']}' ({data.source['images']} images) holds other images")
    rows = score(images, data, str(cache_dir), _to_stderr, labels, args.classifier_seed)
    print(table(rows))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        except OSError as error:
            raise ConfigError(f"cannot write --json '{args.json}': {error.strerror or error}") from None
    return 0


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
