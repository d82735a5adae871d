"""The run folder: config, metrics log, sample grids, plot and checkpoints, all in one place.

runs/<name>/
  config.json          the full config of the run
  metrics.jsonl        one JSON object per logged step
  samples/epoch_NNNN.png, samples/final.png   100 digits from one fixed latent batch
  metrics.png          loss and D-output curves
  checkpoints/step_NNNNNNNNN.pt
"""

import json
import shutil
import time
from pathlib import Path

from training.errors import TrainingError


def new_run_dir(out_dir: str, name: str, overwrite: bool) -> Path:
    """Create the folder for a fresh run; an existing one is kept unless `overwrite`."""
    run_dir = Path(out_dir) / (name or time.strftime("%Y%m%d-%H%M%S"))
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"run folder '{run_dir}' is a file; pick another --name or --out_dir")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise TrainingError(f"run folder '{run_dir}' already exists; pass --overwrite to replace "
                                f"it, --resume {run_dir} to continue it, or --name to pick another")
        if not ((run_dir / "config.json").is_file() or (run_dir / "samples").is_dir()):
            # --overwrite replaces a run, never some other folder a typo in --out_dir or --name named
            raise TrainingError(f"'{run_dir}' is not a run folder (no config.json); not replacing it")
        try:
            shutil.rmtree(run_dir)
        except OSError as error:
            raise TrainingError(f"cannot replace run folder '{run_dir}': {error.strerror or error}") from None
    try:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise TrainingError(f"cannot write to run folder '{run_dir}': {error.strerror}") from None
    return run_dir


def write_config(run_dir: Path, config_dict: dict) -> None:
    (run_dir / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")


class MetricsLog:
    """Append-only JSON-lines log; on resume, lines past the checkpoint's step are dropped."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        if resume_step is not None and path.exists():
            kept = [record for record in read_metrics(path) if record["step"] <= resume_step]
            path.write_text("".join(json.dumps(record) + "\n" for record in kept))
        self.file = open(path, "a")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_metrics(path: Path) -> list[dict]:
    """The records of a JSON-lines log. A process killed mid-write (SIGKILL, power loss) can leave
    a torn last line; it is dropped, as resume replays that step anyway."""
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


def plot_metrics(metrics_path: Path, out_path: Path) -> None:
    """Two panels against step: the losses, and the mean D(x) and D(G(z))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    if not records:
        return
    steps = [r["step"] for r in records]
    figure, (losses, outputs) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    losses.plot(steps, [r["loss_d"] for r in records], label="discriminator loss")
    losses.plot(steps, [r["loss_g"] for r in records], label="generator loss")
    losses.set_ylabel("loss")
    losses.legend()
    outputs.plot(steps, [r["d_real"] for r in records], label="mean D(x), real")
    outputs.plot(steps, [r["d_fake"] for r in records], label="mean D(G(z)), generated")
    outputs.set_ylim(0, 1)
    outputs.set_xlabel("step")
    outputs.set_ylabel("discriminator output")
    outputs.legend()
    figure.tight_layout()
    figure.savefig(out_path, dpi=100)
    plt.close(figure)


def plot_quality(quality_path: Path, out_path: Path) -> None:
    """The evaluator's metrics against epoch: Frechet distance, classifier score, rarest class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(quality_path)
    epochs = [r["epoch"] for r in records]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for axis, key, label in zip(axes, ("frechet_distance", "classifier_score", "rarest_class_fraction"),
                                ("Frechet distance (lower is better)", "classifier score (max 10)",
                                 "rarest class fraction (0.1 is even)"), strict=True):
        axis.plot(epochs, [r[key] for r in records], marker="o")
        axis.set(xlabel="epoch", title=label)
        axis.grid(alpha=0.3)
    axes[0].set_yscale("log")
    figure.tight_layout()
    figure.savefig(out_path, dpi=100)
    plt.close(figure)
