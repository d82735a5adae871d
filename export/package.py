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
from pathlib import Path

import onnx
import torch

import ganpack
from export.errors import ExportError
from export.onnx_graphs import (
    DISCRIMINATOR_INPUT,
    DISCRIMINATOR_OUTPUTS,
    GENERATOR_INPUT,
    GENERATOR_OUTPUT,
    LABEL_INPUT,
    OPSET,
    export_discriminator,
    export_generator,
)
from export.parity import INPUTS, PARITY_SEED, check_parity
from export.provenance import data_provenance, public_training_config
from export.staging import check_replaceable, lock_folder, new_staging, recover_replaced, release, retired_path
from ganpack.archive import write_archive
from ganpack.contract import (
    DISCRIMINATOR_FILE,
    GENERATOR_FILE,
    IMAGE_SHAPE,
    IMAGE_VALUE_RANGE,
    LATENT_PARAMETERS,
    LEAKY_RELU,
    MANIFEST_FILE,
    PREVIEW_FILE,
    SIGMOID,
    TANH,
    TO_UINT8,
)
from ganpack.grid import save_grid
from ganpack.manifest import Classes, Image, Latent, Manifest, Network
from ganpack.package import sha256_of, verify_package
from training import checkpoint
from training.config import TrainConfig
from training.model import build_models, grid_labels, label_columns, sample_latent

PREVIEW_COUNT = 100


def load_state(source) -> dict:
    """A checkpoint file, or a run folder (its newest readable checkpoint)."""
    path = Path(source)
    if path.is_dir():
        state, _ = checkpoint.load_latest(path, needed=checkpoint.EXPORT_KEYS)
        return state
    if path.is_file():
        return checkpoint.load_checkpoint(path, needed=checkpoint.EXPORT_KEYS)
    raise ExportError(f"'{source}' is neither a run folder nor a checkpoint file")


def networks_from_state(state: dict):
    """(config, generator, discriminator, which generator weights) rebuilt from a checkpoint."""
    config = TrainConfig.from_dict(state["config"])
    generator, discriminator = build_models(config.model)
    weights = "ema" if "generator_ema" in state else "raw"
    for key, network in (("generator_ema" if weights == "ema" else "generator", generator),
                         ("discriminator", discriminator)):
        try:
            network.load_state_dict(state[key])
        except (RuntimeError, TypeError, AttributeError) as error:  # missing, unexpected or misshapen weights
            detail = " ".join(str(error).split())  # torch's message spans lines
            raise ExportError(f"the checkpoint's '{key}' weights do not fit its config's networks: {detail}") from None
    for network_name, network in (("generator", generator), ("discriminator", discriminator)):
        for name, tensor in network.state_dict().items():
            if not torch.isfinite(tensor).all():  # the runtime refuses such a package; say so now
                raise ExportError(f"the checkpoint's {network_name} weight '{name}' holds a non-finite value "
                                  "(nan or inf): the run diverged or the file is damaged")
    return config, generator.eval(), discriminator.eval(), weights


def class_names(state: dict, classes: int) -> list[str]:
    """The classes' names as the run recorded them (its data's), else "0", "1", ...; names a
    manifest would refuse (not `classes` distinct non-empty strings) stop the export here."""
    names = state.get("class_names")
    if names is None:
        return [str(index) for index in range(classes)]
    if not (isinstance(names, list) and len(names) == classes and all(isinstance(n, str) and n for n in names)
            and len(set(names)) == classes):
        raise ExportError(f"the checkpoint's class names {names!r} are not {classes} distinct non-empty strings")
    return names


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
                   layer_widths=widths, hidden_activation=LEAKY_RELU, leaky_relu_alpha=alpha,
                   output_activation=output_activation)


def write_package(state: dict, out_dir, overwrite: bool = False, log=print, quality: dict | None = None) -> Path:
    """Export `state` (a checkpoint dict) to the package folder `out_dir`, or to the single-file
    form when `out_dir` ends in .zip; returns its path."""
    out_dir = Path(out_dir)
    recover_replaced(out_dir, log)  # first: an old package an earlier export was killed in replacing
    if out_dir.exists() and not overwrite:
        raise ExportError(f"'{out_dir}' already exists; pass --overwrite to replace it")
    if out_dir.exists():
        check_replaceable(out_dir)
    if out_dir.suffix == ".zip":
        scratch, lock = new_staging(out_dir, log)  # the package folder is built inside, then zipped
        try:
            folder = write_package(state, scratch / "package", log=log, quality=quality)
            # zipped inside the staging folder too, so a killed export leaves nothing the next one
            # does not remove; then one atomic rename: two exports to one archive leave one, whole
            archive = write_archive(folder, scratch / "package.zip")
            if out_dir.exists() and not overwrite:
                raise ExportError(f"'{out_dir}' appeared during the export; not replacing it")
            try:
                os.replace(archive, out_dir)
            except OSError as error:  # a folder of that name appeared meanwhile, say
                raise ExportError(f"cannot write '{out_dir}': {error.strerror or error}") from None
            return out_dir
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            release(lock)
    config, generator, discriminator, weights = networks_from_state(state)
    model = config.model
    staging, lock = new_staging(out_dir, log)  # locked until this export ends (export/staging.py)
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would make the finished package private
        classes = label_columns(model)  # 0 unless conditional
        generator_graph = export_generator(generator, model.latent_dim, classes)
        discriminator_graph = export_discriminator(discriminator, model.image_dim, classes)
        latent = sample_latent(INPUTS, model, torch.Generator().manual_seed(PARITY_SEED), torch.device("cpu"))
        parity = check_parity(generator, discriminator, generator_graph, discriminator_graph, latent, classes)
        log(f"parity with PyTorch over {INPUTS} inputs at batch sizes {parity['batch_sizes']}: "
            f"generator {parity['max_abs_diff']['generator_image']:.2g}, "
            f"discriminator {parity['max_abs_diff']['discriminator_probability']:.2g} (max abs diff)")
        (staging / GENERATOR_FILE).write_bytes(generator_graph)
        (staging / DISCRIMINATOR_FILE).write_bytes(discriminator_graph)
        with torch.no_grad():
            preview, _ = generator(latent[:PREVIEW_COUNT], grid_labels(PREVIEW_COUNT, classes) if classes else None)
        save_grid(preview.numpy(), staging / PREVIEW_FILE, columns=10)
        label_input: dict[str, list[int | str]] = {LABEL_INPUT: ["batch", classes]} if classes else {}
        # a conditional package is format_version 3, which older runtimes refuse by its number
        conditional = {"classes": Classes(count=classes, names=class_names(state, classes)),
                       "format_version": 3} if classes else {}
        manifest = Manifest(
            latent=Latent(model.latent_dim, model.latent_distribution,
                          dict(LATENT_PARAMETERS[model.latent_distribution])),
            image=Image(shape=list(IMAGE_SHAPE), value_range=list(IMAGE_VALUE_RANGE), to_uint8=TO_UINT8),
            generator=_network(GENERATOR_FILE, staging / GENERATOR_FILE,
                               {GENERATOR_INPUT: ["batch", model.latent_dim], **label_input},
                               {GENERATOR_OUTPUT: ["batch", model.image_dim]},
                               [model.latent_dim + classes, *model.generator_hidden, model.image_dim],
                               model.leaky_relu_alpha, TANH),
            discriminator=_network(DISCRIMINATOR_FILE, staging / DISCRIMINATOR_FILE,
                                   {DISCRIMINATOR_INPUT: ["batch", model.image_dim], **label_input},
                                   {name: ["batch", 1] for name in DISCRIMINATOR_OUTPUTS},
                                   [model.image_dim + classes, *model.discriminator_hidden, 1],
                                   model.leaky_relu_alpha, SIGMOID),
            opset=OPSET,
            generator_weights=weights,
            training_config=public_training_config(state["config"]),  # no folders of the author's
            provenance={"steps": state["step"], "epochs": state["epoch"], **data_provenance(state, config.data.data),
                        "seed": config.run.seed,
                        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "torch_version": torch.__version__, "onnx_version": onnx.__version__,
                        "ganpack_version": ganpack.__version__, "git_commit": _git_commit()},
            parity=parity,
            quality=quality or {},
            **conditional,
        )
        (staging / MANIFEST_FILE).write_text(manifest.to_json())
        verify_package(staging)  # read back exactly as a runtime will
        _fsync_folder(staging)
        _move_into_place(staging, out_dir, overwrite, log)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        release(lock)
    return out_dir


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as file:
            os.fsync(file.fileno())


def _move_into_place(staging: Path, out_dir: Path, overwrite: bool, log=print) -> None:
    """One rename puts the finished package in place. An old one is first moved aside, locked, to
    .NAME.replaced: a kill between the two renames leaves it for the next export to put back
    (export/staging.py, recover_replaced)."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    if not overwrite:
        raise ExportError(f"'{out_dir}' appeared during the export; not replacing it")
    recover_replaced(out_dir, log)  # one left by an export killed after its second rename: removed
    retired = retired_path(out_dir)
    try:
        free, lock = lock_folder(out_dir)  # the lock moves with the folder to `retired`
    except OSError as error:
        raise ExportError(f"cannot replace '{out_dir}': {error.strerror or error}") from None
    if not free or retired.exists():
        release(lock)
        raise ExportError(f"another export is replacing '{out_dir}' right now; not replacing it")
    try:
        os.rename(out_dir, retired)
        try:
            os.rename(staging, out_dir)
        except OSError:
            os.rename(retired, out_dir)  # the old package back where it was
            raise
        shutil.rmtree(retired, ignore_errors=True)
    except OSError as error:
        raise ExportError(f"cannot replace '{out_dir}': {error.strerror or error}") from None
    finally:
        release(lock)
