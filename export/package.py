"""Write a model package from a training checkpoint, verified, in one atomic step.

The package is built in a temporary folder beside the destination, checked (ONNX checker,
onnxruntime parity, checksums read back), and only then renamed into place: an export that
fails or is interrupted leaves no package behind, and an existing one is replaced only when
asked, after the new one is complete.
"""

import datetime
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import onnx
import torch

import ganpack
from export.onnx_graphs import OPSET, export_discriminator, export_generator
from export.parity import INPUTS, PARITY_SEED, check_parity
from ganpack.archive import write_archive
from ganpack.errors import ExportError
from ganpack.grid import save_grid
from ganpack.manifest import Image, Latent, Manifest, Network
from ganpack.package import sha256_of, verify_package
from training import checkpoint
from training.config import TrainConfig
from training.model import build_models, sample_latent

PREVIEW_COUNT = 100
LATENT_PARAMETERS = {"normal": {"mean": 0.0, "std": 1.0}, "uniform": {"low": -1.0, "high": 1.0}}


def load_state(source) -> dict:
    """A checkpoint file, or a run folder (its newest readable checkpoint)."""
    path = Path(source)
    if path.is_dir():
        state, _ = checkpoint.load_latest(path)
        return state
    if path.is_file():
        return checkpoint.load_checkpoint(path)
    raise ExportError(f"'{source}' is neither a run folder nor a checkpoint file")


def networks_from_state(state: dict):
    """(config, generator, discriminator, which generator weights) rebuilt from a checkpoint."""
    config = TrainConfig.from_dict(state["config"])
    generator, discriminator = build_models(config.model)
    weights = "ema" if "generator_ema" in state else "raw"
    generator.load_state_dict(state["generator_ema" if weights == "ema" else "generator"])
    discriminator.load_state_dict(state["discriminator"])
    return config, generator.eval(), discriminator.eval(), weights


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+dirty" if dirty else "")) if commit else "unknown"


def _network(file: str, graph_path: Path, inputs: dict, outputs: dict, widths: list, alpha: float,
             output_activation: str) -> Network:
    return Network(file=file, sha256=sha256_of(graph_path), inputs=inputs, outputs=outputs,
                   layer_widths=widths, hidden_activation="leaky_relu", leaky_relu_alpha=alpha,
                   output_activation=output_activation)


def write_package(state: dict, out_dir, overwrite: bool = False, log=print, quality: dict | None = None) -> Path:
    """Export `state` (a checkpoint dict) to the package folder `out_dir`, or to the single-file
    form when `out_dir` ends in .zip; returns its path."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ExportError(f"'{out_dir}' already exists; pass --overwrite to replace it")
    if out_dir.suffix == ".zip":
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".ganpack-export-", dir=out_dir.parent) as scratch:
            folder = write_package(state, Path(scratch) / "package", log=log, quality=quality)
            return write_archive(folder, out_dir)
    config, generator, discriminator, weights = networks_from_state(state)
    model = config.model
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would make the finished package private
        generator_graph = export_generator(generator, model.latent_dim)
        discriminator_graph = export_discriminator(discriminator, model.image_dim)
        latent = sample_latent(INPUTS, model, torch.Generator().manual_seed(PARITY_SEED), torch.device("cpu"))
        parity = check_parity(generator, discriminator, generator_graph, discriminator_graph, latent)
        log(f"parity with PyTorch over {INPUTS} inputs at batch sizes {parity['batch_sizes']}: "
            f"generator {parity['max_abs_diff']['generator_image']:.2g}, "
            f"discriminator {parity['max_abs_diff']['discriminator_probability']:.2g} (max abs diff)")
        (staging / "generator.onnx").write_bytes(generator_graph)
        (staging / "discriminator.onnx").write_bytes(discriminator_graph)
        with torch.no_grad():
            preview, _ = generator(latent[:PREVIEW_COUNT])
        save_grid(preview.numpy(), staging / "preview.png", columns=10)
        manifest = Manifest(
            latent=Latent(model.latent_dim, model.latent_distribution,
                          LATENT_PARAMETERS[model.latent_distribution]),
            image=Image(shape=[28, 28], value_range=[-1.0, 1.0],
                        to_uint8="clip(round((x + 1) * 127.5), 0, 255)"),
            generator=_network("generator.onnx", staging / "generator.onnx", {"z": ["batch", model.latent_dim]},
                               {"image": ["batch", model.image_dim]},
                               [model.latent_dim, *model.generator_hidden, model.image_dim],
                               model.leaky_relu_alpha, "tanh"),
            discriminator=_network("discriminator.onnx", staging / "discriminator.onnx",
                                   {"image": ["batch", model.image_dim]},
                                   {"probability": ["batch", 1], "logit": ["batch", 1]},
                                   [model.image_dim, *model.discriminator_hidden, 1],
                                   model.leaky_relu_alpha, "sigmoid"),
            opset=OPSET,
            generator_weights=weights,
            training_config=state["config"],
            provenance={"steps": state["step"], "epochs": state["epoch"], "dataset": config.data.data,
                        "seed": config.run.seed,
                        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "torch_version": torch.__version__, "onnx_version": onnx.__version__,
                        "ganpack_version": ganpack.__version__, "git_commit": _git_commit()},
            parity=parity,
            quality=quality or {},
        )
        (staging / "manifest.json").write_text(manifest.to_json())
        verify_package(staging)  # read back exactly as a runtime will
        _fsync_folder(staging)
        _move_into_place(staging, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as file:
            os.fsync(file.fileno())


def _move_into_place(staging: Path, out_dir: Path, overwrite: bool) -> None:
    """One rename puts the finished package in place; an old one is moved aside first."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    if not overwrite:
        raise ExportError(f"'{out_dir}' appeared during the export; not replacing it")
    retired = out_dir.with_name(f".{out_dir.name}.replaced")
    shutil.rmtree(retired, ignore_errors=True)
    os.rename(out_dir, retired)
    os.rename(staging, out_dir)
    shutil.rmtree(retired, ignore_errors=True)
