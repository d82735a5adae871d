"""The model package's manifest.json: its schema, defined once here (the reader) and used by export.

A model package is a folder:
  manifest.json        this schema, format "ganpack-model", format_version 1
  generator.onnx       z (batch, latent_dim) float32 -> image (batch, 784) float32 in [-1, 1]
  discriminator.onnx   image (batch, 784) float32 -> probability (batch, 1), logit (batch, 1)
  preview.png          a grid of samples

Every field is documented in README.md ("The model package"). Reading checks types and values,
so a runtime never acts on a malformed manifest.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ganpack.errors import PackageError

FORMAT = "ganpack-model"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few kB; anything larger is not one of ours
LATENT_DISTRIBUTIONS = {"normal": ("mean", "std"), "uniform": ("low", "high")}
ACTIVATIONS = ("identity", "leaky_relu", "relu", "tanh", "sigmoid")


class ManifestError(PackageError):
    """A manifest that is missing, unreadable, of another format or version, or malformed."""


@dataclass
class Latent:
    dim: int
    distribution: str  # "normal" or "uniform"
    parameters: dict  # normal: {"mean", "std"}; uniform: {"low", "high"}


@dataclass
class Image:
    shape: list  # [28, 28]
    value_range: list  # [-1.0, 1.0], what the generator outputs
    to_uint8: str  # how floats map to 8-bit pixels, as a formula


@dataclass
class Network:
    file: str  # a plain file name inside the package
    sha256: str  # of that file's bytes
    inputs: dict  # name -> shape, "batch" for the dynamic axis
    outputs: dict  # name -> shape
    layer_widths: list  # e.g. [100, 128, 784]: input, hidden..., output
    hidden_activation: str
    leaky_relu_alpha: float
    output_activation: str


@dataclass
class Manifest:
    latent: Latent
    image: Image
    generator: Network
    discriminator: Network
    opset: int  # ONNX opset of both graphs
    generator_weights: str  # "ema" (moving average) or "raw"
    training_config: dict  # the run's full config, as training/config.py writes it
    provenance: dict  # steps, epochs, dataset, seed, date, torch/onnx/ganpack versions, commit
    parity: dict  # onnxruntime vs PyTorch at export time (see export/verify.py)
    quality: dict = field(default_factory=dict)  # evaluator metrics, once measured
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------------------------
# reading, with a check of every field


def _require(values: dict, key: str, kind, where: str):
    if not isinstance(values, dict) or key not in values:
        raise ManifestError(f"manifest field '{where}{key}' is missing")
    value = values[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ManifestError(f"manifest field '{where}{key}' must be {names}, got {type(value).__name__}")
    return value


def _plain_file_name(name: str, where: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise ManifestError(f"manifest field '{where}file' must be a plain file name, got {name!r}")
    return name


def _network(values: dict, where: str) -> Network:
    network = Network(
        file=_plain_file_name(_require(values, "file", str, where), where),
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
    return network


def parse_manifest(values: dict) -> Manifest:
    if not isinstance(values, dict):
        raise ManifestError("manifest must be a JSON object")
    if values.get("format") != FORMAT:
        raise ManifestError(f"manifest format is {values.get('format')!r}, expected {FORMAT!r}")
    version = values.get("format_version")
    if version != FORMAT_VERSION:
        raise ManifestError(f"manifest format_version {version!r} is not supported "
                            f"(this ganpack reads version {FORMAT_VERSION})")
    latent_values = _require(values, "latent", dict, "")
    latent = Latent(dim=_require(latent_values, "dim", int, "latent."),
                    distribution=_require(latent_values, "distribution", str, "latent."),
                    parameters=_require(latent_values, "parameters", dict, "latent."))
    if latent.distribution not in LATENT_DISTRIBUTIONS:
        raise ManifestError(f"manifest latent.distribution {latent.distribution!r} is not one of "
                            f"{sorted(LATENT_DISTRIBUTIONS)}")
    for name in LATENT_DISTRIBUTIONS[latent.distribution]:
        _require(latent.parameters, name, (int, float), "latent.parameters.")
    if not 0 < latent.dim <= 1 << 16:
        raise ManifestError(f"manifest latent.dim {latent.dim} is out of range")
    image_values = _require(values, "image", dict, "")
    image = Image(shape=_require(image_values, "shape", list, "image."),
                  value_range=_require(image_values, "value_range", list, "image."),
                  to_uint8=_require(image_values, "to_uint8", str, "image."))
    generator = _network(_require(values, "generator", dict, ""), "generator.")
    discriminator = _network(_require(values, "discriminator", dict, ""), "discriminator.")
    if generator.layer_widths[0] != latent.dim:
        raise ManifestError(f"generator input width {generator.layer_widths[0]} != latent.dim {latent.dim}")
    return Manifest(
        latent=latent, image=image, generator=generator, discriminator=discriminator,
        opset=_require(values, "opset", int, ""),
        generator_weights=_require(values, "generator_weights", str, ""),
        training_config=_require(values, "training_config", dict, ""),
        provenance=_require(values, "provenance", dict, ""),
        parity=_require(values, "parity", dict, ""),
        quality=values.get("quality", {}) if isinstance(values.get("quality", {}), dict) else {},
    )


def read_manifest(package_dir) -> Manifest:
    path = Path(package_dir) / "manifest.json"
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: {path.stat().st_size} bytes is too large for a manifest")
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest.json; is '{package_dir}' a model package?") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ManifestError(f"{path}: cannot be read as JSON: {error}") from None
    try:
        return parse_manifest(values)
    except ManifestError as error:
        raise ManifestError(f"{path}: {error}") from None
