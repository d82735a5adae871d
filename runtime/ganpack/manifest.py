"""The model package's manifest.json: its schema, defined once here (the reader) and used by export.

A model package is a folder (ganpack.contract names its files):
  manifest.json        this schema, format "ganpack-model", format_version 2 (1 is still read;
                       3: a class-conditional package, with the `classes` field)
  generator.onnx       z (batch, latent_dim) float32 -> image (batch, 784) float32 in [-1, 1]
  discriminator.onnx   image (batch, 784) float32 -> probability (batch, 1), logit (batch, 1)
  preview.png          a grid of samples
A conditional package's graphs also read `label` (batch, classes), one-hot float32, concatenated
after z or the image (ganpack.dense_stack reads that Concat).

The dataclasses below are the manifest's field names; docs/package-format.md documents each for
users. Reading checks types and values, so a runtime never acts on a malformed manifest.
"""

import json
import math
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ganpack.contract import (
    ACTIVATIONS,
    CLASS_INPUT,
    IMAGE_VALUE_RANGE,
    LATENT_DISTRIBUTIONS,
    MANIFEST_FILE,
    MAX_CLASSES,
    NETWORK_FILES,
    NORMAL,
    ONE_HOT,
)
from ganpack.errors import PackageError
from ganpack.latents import GENERATOR, LEGACY_GENERATOR

FORMAT = "ganpack-model"
FORMAT_VERSION = 2  # 2: latent.generator names the latent stream; 1 (no such field) means numpy-pcg64
CONDITIONAL_FORMAT_VERSION = 3  # 3: 2 plus `classes`; unconditional packages stay 2, so older wheels read them
READABLE_VERSIONS = (1, 2, 3)
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few kB; anything larger is not one of ours
MAX_LATENT_PARAMETER = 1e6  # latents stay far inside float32 range
MAX_OPSET = 1000
GENERATOR_WEIGHTS = ("ema", "raw")  # the moving average of G's weights, or the last step's
LATENT_GENERATORS = (GENERATOR, LEGACY_GENERATOR)  # what sample(n, seed) draws z with

T = TypeVar("T")
Shape = list[int | str]  # positive integers, and "batch" for the dynamic axis


class ManifestError(PackageError):
    """A manifest that is missing, unreadable, of another format or version, or malformed."""


@dataclass
class Latent:
    dim: int
    distribution: str  # "normal" or "uniform"
    parameters: dict[str, float]  # normal: {"mean", "std"}; uniform: {"low", "high"}
    generator: str = GENERATOR  # the latent stream for a seed (ganpack.latents); format_version 1: LEGACY


@dataclass
class Image:
    shape: list[int]  # [28, 28]
    value_range: list[float]  # [-1.0, 1.0], what the generator outputs
    to_uint8: str  # how floats map to 8-bit pixels, as a formula


@dataclass
class Network:
    file: str  # a plain file name inside the package
    sha256: str  # of that file's bytes
    inputs: dict[str, Shape]  # name -> shape, "batch" for the dynamic axis
    outputs: dict[str, Shape]  # name -> shape
    layer_widths: list[int]  # e.g. [100, 128, 784]: input, hidden..., output
    hidden_activation: str
    leaky_relu_alpha: float
    output_activation: str


@dataclass
class Classes:
    """A class-conditional package's classes (format_version 3): both networks read the label
    as a second input, one-hot, after z or the image."""
    count: int  # labels are 0 .. count - 1
    names: list[str]  # names[i]: what label i means, e.g. "7"
    input: str = CLASS_INPUT  # the graph input's name, in both networks
    encoding: str = ONE_HOT


@dataclass
class Manifest:
    latent: Latent
    image: Image
    generator: Network
    discriminator: Network
    opset: int  # ONNX opset of both graphs
    generator_weights: str  # "ema" (moving average) or "raw"
    training_config: dict[str, Any]  # the run's full config, as training/config.py writes it
    provenance: dict[str, Any]  # steps, epochs, dataset, seed, date, torch/onnx/ganpack versions, commit
    parity: dict[str, Any]  # onnxruntime vs PyTorch at export time (see export/parity.py)
    quality: dict[str, Any] = field(default_factory=dict)  # evaluator metrics, once measured
    classes: Classes | None = None  # None: unconditional (the field is then left out of the JSON)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        values = asdict(self)
        if values["classes"] is None:  # an unconditional manifest stays byte for byte what 0.2.0 wrote
            del values["classes"]
        return json.dumps(values, indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------------------------
# reading, with a check of every field


def _require(values: object, key: str, kind: type[T] | tuple[type[T], ...], where: str) -> T:
    if not isinstance(values, dict) or key not in values:
        raise ManifestError(f"manifest field '{where}{key}' is missing")
    value = values[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ManifestError(f"manifest field '{where}{key}' must be {names}, got {type(value).__name__}")
    return value


def _fixed_file_name(name: str, where: str) -> str:
    """A package's files have fixed names; the manifest only records them. The loader opens the
    fixed names (NETWORK_FILES), so no string read from a manifest ever becomes a path."""
    expected = NETWORK_FILES[where.rstrip(".")]
    if name != expected:
        raise ManifestError(f"manifest field '{where}file' must be {expected!r}, got {name!r}")
    return name


def _network(values: dict[str, Any], where: str) -> Network:
    network = Network(
        file=_fixed_file_name(_require(values, "file", str, where), where),
        sha256=_require(values, "sha256", str, where),
        inputs=_require(values, "inputs", dict, where),
        outputs=_require(values, "outputs", dict, where),
        layer_widths=_require(values, "layer_widths", list, where),
        hidden_activation=_require(values, "hidden_activation", str, where),
        leaky_relu_alpha=float(_require(values, "leaky_relu_alpha", (int, float), where)),
        output_activation=_require(values, "output_activation", str, where),
    )
    if len(network.sha256) != 64 or any(c not in "0123456789abcdef" for c in network.sha256):
        raise ManifestError(f"manifest field '{where}sha256' is not a SHA-256 hex digest")
    if len(network.layer_widths) < 2 or not all(
            isinstance(w, int) and not isinstance(w, bool) and 0 < w <= 1 << 20 for w in network.layer_widths):
        raise ManifestError(f"manifest field '{where}layer_widths' must be 2+ positive integers")
    for key in ("hidden_activation", "output_activation"):
        if getattr(network, key) not in ACTIVATIONS:
            raise ManifestError(f"manifest field '{where}{key}' must be one of {ACTIVATIONS}")
    if not 0.0 <= network.leaky_relu_alpha < 1.0:  # also refuses NaN
        raise ManifestError(f"manifest field '{where}leaky_relu_alpha' must be in [0, 1), "
                            f"got {network.leaky_relu_alpha!r}")
    for key in ("inputs", "outputs"):
        for name, shape in getattr(network, key).items():
            if not (isinstance(shape, list) and shape and all(
                    dim == "batch" or (isinstance(dim, int) and not isinstance(dim, bool) and dim > 0)
                    for dim in shape)):
                raise ManifestError(f"manifest field '{where}{key}.{name}' must be a shape: a list of "
                                    f"positive integers and \"batch\", got {shape!r}")
    return network


def _image(values: dict[str, Any], output_width: int) -> Image:
    image = Image(shape=_require(values, "shape", list, "image."),
                  value_range=_require(values, "value_range", list, "image."),
                  to_uint8=_require(values, "to_uint8", str, "image."))
    if (len(image.shape) != 2 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                         for d in image.shape) or math.prod(image.shape) != output_width):
        raise ManifestError(f"manifest image.shape {image.shape!r} must be two positive integers whose "
                            f"product is the generator's output width {output_width}")
    if image.value_range != IMAGE_VALUE_RANGE:  # the runtime's uint8 mapping assumes tanh's range
        raise ManifestError(f"manifest image.value_range {image.value_range!r} must be {IMAGE_VALUE_RANGE}")
    return image


def _classes(values: object) -> Classes:
    if not isinstance(values, dict):
        raise ManifestError(f"manifest field 'classes' must be an object, got {type(values).__name__}")
    classes = Classes(count=_require(values, "count", int, "classes."),
                      names=_require(values, "names", list, "classes."),
                      input=_require(values, "input", str, "classes."),
                      encoding=_require(values, "encoding", str, "classes."))
    if not 0 < classes.count <= MAX_CLASSES:
        raise ManifestError(f"manifest field 'classes.count' must be from 1 to {MAX_CLASSES}, got {classes.count}")
    if len(classes.names) != classes.count:
        raise ManifestError(f"manifest field 'classes.names' must hold classes.count = {classes.count} names, "
                            f"got {len(classes.names)}")
    for index, name in enumerate(classes.names):
        if not isinstance(name, str) or not name:
            raise ManifestError(f"manifest field 'classes.names' must hold non-empty strings, got {name!r} "
                                f"at index {index}")
    seen: set[str] = set()
    for name in classes.names:
        if name in seen:
            raise ManifestError(f"manifest field 'classes.names' must hold distinct names, got {name!r} twice")
        seen.add(name)
    if classes.input != CLASS_INPUT:
        raise ManifestError(f"manifest field 'classes.input' must be {CLASS_INPUT!r}, got {classes.input!r}")
    if classes.encoding != ONE_HOT:
        raise ManifestError(f"manifest field 'classes.encoding' must be {ONE_HOT!r}, got {classes.encoding!r}")
    return classes


def parse_manifest(values: object) -> Manifest:
    if not isinstance(values, dict):
        raise ManifestError("manifest must be a JSON object")
    if values.get("format") != FORMAT:
        raise ManifestError(f"manifest format is {values.get('format')!r}, expected {FORMAT!r}")
    version = values.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ManifestError(f"manifest format_version {version!r} is not supported "
                            f"(this ganpack reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    classes = None
    if version >= CONDITIONAL_FORMAT_VERSION:
        if values.get("classes") is None:
            raise ManifestError(f"manifest format_version {version} is a class-conditional package, but the field "
                                "'classes' is missing")
        classes = _classes(values["classes"])
    elif values.get("classes") is not None:
        raise ManifestError(f"manifest field 'classes' needs format_version {CONDITIONAL_FORMAT_VERSION}, "
                            f"this manifest is version {version}")
    label_width = classes.count if classes is not None else 0  # the one-hot columns after z and the image
    latent_values = _require(values, "latent", dict, "")
    latent = Latent(dim=_require(latent_values, "dim", int, "latent."),
                    distribution=_require(latent_values, "distribution", str, "latent."),
                    parameters=_require(latent_values, "parameters", dict, "latent."),
                    generator=(_require(latent_values, "generator", str, "latent.") if version >= 2
                               else LEGACY_GENERATOR))
    if latent.generator not in LATENT_GENERATORS:
        raise ManifestError(f"manifest latent.generator {latent.generator!r} is not one of {list(LATENT_GENERATORS)}")
    if latent.distribution not in LATENT_DISTRIBUTIONS:
        raise ManifestError(f"manifest latent.distribution {latent.distribution!r} is not one of "
                            f"{sorted(LATENT_DISTRIBUTIONS)}")
    for name in LATENT_DISTRIBUTIONS[latent.distribution]:
        value = _require(latent.parameters, name, (int, float), "latent.parameters.")
        if not math.isfinite(value) or abs(value) > MAX_LATENT_PARAMETER:
            raise ManifestError(f"manifest latent.parameters.{name} must be finite and at most "
                                f"{MAX_LATENT_PARAMETER:g} in size, got {value!r}")
    spread = ((latent.parameters["std"] > 0) if latent.distribution == NORMAL
              else latent.parameters["low"] < latent.parameters["high"])
    if not spread:
        raise ManifestError(f"manifest latent.parameters {latent.parameters} describe no spread "
                            "(normal needs std > 0, uniform low < high)")
    if not 0 < latent.dim <= 1 << 16:
        raise ManifestError(f"manifest latent.dim {latent.dim} is out of range")
    image_values = _require(values, "image", dict, "")
    generator = _network(_require(values, "generator", dict, ""), "generator.")
    discriminator = _network(_require(values, "discriminator", dict, ""), "discriminator.")
    if generator.layer_widths[0] != latent.dim + label_width:
        with_classes = f" + classes.count {label_width}" if classes is not None else ""
        raise ManifestError(f"generator input width {generator.layer_widths[0]} != latent.dim {latent.dim}"
                            + with_classes)
    if generator.layer_widths[-1] != discriminator.layer_widths[0] - label_width:
        with_classes = f" - classes.count {label_width}" if classes is not None else ""
        raise ManifestError(f"generator output width {generator.layer_widths[-1]} != discriminator input "
                            f"width {discriminator.layer_widths[0]}" + with_classes)
    if classes is not None:
        for name, network in (("generator", generator), ("discriminator", discriminator)):
            if network.inputs.get(classes.input) != ["batch", classes.count]:
                raise ManifestError(f"manifest field '{name}.inputs.{classes.input}' must be "
                                    f"[\"batch\", {classes.count}] (the one-hot labels), got "
                                    f"{network.inputs.get(classes.input)!r}")
    image = _image(image_values, generator.layer_widths[-1])
    opset = _require(values, "opset", int, "")
    if not 1 <= opset <= MAX_OPSET:
        raise ManifestError(f"manifest opset {opset} is out of range")
    generator_weights = _require(values, "generator_weights", str, "")
    if generator_weights not in GENERATOR_WEIGHTS:
        raise ManifestError(f"manifest generator_weights {generator_weights!r} is not one of {GENERATOR_WEIGHTS}")
    return Manifest(
        latent=latent, image=image, generator=generator, discriminator=discriminator,
        opset=opset,
        generator_weights=generator_weights,
        training_config=_require(values, "training_config", dict, ""),
        provenance=_require(values, "provenance", dict, ""),
        parity=_require(values, "parity", dict, ""),
        quality=values.get("quality", {}) if isinstance(values.get("quality", {}), dict) else {},
        classes=classes,
        format_version=version,
    )


def read_manifest(package_dir: str | os.PathLike[str]) -> Manifest:
    path = Path(package_dir) / MANIFEST_FILE
    try:
        info = os.lstat(path)  # the link itself: a symlink could point anywhere, a FIFO would block
        if not stat.S_ISREG(info.st_mode):
            raise ManifestError(f"{path}: not a regular file (a symlink, folder or device is never a manifest)")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: {info.st_size} bytes is too large for a manifest")
        with open(path, "rb") as file:
            values = json.loads(file.read(MAX_MANIFEST_BYTES + 1).decode("utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no {MANIFEST_FILE}; is '{package_dir}' a model package?") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ManifestError(f"{path}: cannot be read as JSON: {error}") from None
    try:
        return parse_manifest(values)
    except ManifestError as error:
        raise ManifestError(f"{path}: {error}") from None
