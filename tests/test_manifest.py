"""The manifest reader: every malformed field is a ManifestError naming it, never a crash."""

import copy
import json

import pytest

from ganpack.errors import PackageError
from ganpack.manifest import MAX_MANIFEST_BYTES, ManifestError, parse_manifest, read_manifest

NETWORK = {"file": "generator.onnx", "sha256": "0" * 64, "inputs": {"z": ["batch", 100]},
           "outputs": {"image": ["batch", 784]}, "layer_widths": [100, 128, 784],
           "hidden_activation": "leaky_relu", "leaky_relu_alpha": 0.01, "output_activation": "tanh"}
VALID = {
    "format": "ganpack-model", "format_version": 2,
    "latent": {"dim": 100, "distribution": "normal", "parameters": {"mean": 0.0, "std": 1.0},
               "generator": "ganpack-philox/1"},
    "image": {"shape": [28, 28], "value_range": [-1.0, 1.0], "to_uint8": "clip(round((x + 1) * 127.5), 0, 255)"},
    "generator": NETWORK,
    "discriminator": {**NETWORK, "file": "discriminator.onnx", "layer_widths": [784, 128, 1],
                      "output_activation": "sigmoid"},
    "opset": 17, "generator_weights": "ema", "training_config": {}, "provenance": {}, "parity": {},
}


def changed(path: str, value, values: dict | None = None):
    """A copy of `values` (default VALID) with the dotted `path` set to `value` (or removed, for ...)."""
    manifest = copy.deepcopy(VALID if values is None else values)
    *parents, last = path.split(".")
    target = manifest
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return manifest


def test_valid_manifest_parses():
    manifest = parse_manifest(VALID)
    assert manifest.latent.dim == 100 and manifest.generator.layer_widths == [100, 128, 784]
    assert parse_manifest(json.loads(manifest.to_json())) == manifest  # round trip


def test_format_version_1_means_numpy_latents():
    """0.1.0 packages carry no latent.generator: they keep meaning numpy's PCG64 stream."""
    version_1 = changed("format_version", 1)
    del version_1["latent"]["generator"]
    manifest = parse_manifest(version_1)
    assert manifest.latent.generator == "numpy-pcg64" and manifest.format_version == 1
    assert parse_manifest(json.loads(manifest.to_json())) == manifest


@pytest.mark.parametrize("path, value, message", [
    ("format", "other", "format"),
    ("format_version", 3, "format_version 3"),
    ("latent", ..., "latent"),
    ("latent.dim", "100", "latent.dim"),
    ("latent.dim", True, "latent.dim"),
    ("latent.dim", 0, "latent.dim"),
    ("latent.distribution", "cauchy", "latent.distribution"),
    ("latent.generator", ..., "latent.generator"),
    ("latent.generator", "mt19937", "latent.generator"),
    ("latent.generator", 1, "latent.generator"),
    ("latent.parameters", {"mean": 0.0}, "latent.parameters.std"),
    ("generator.file", "../../etc/passwd", "generator.file"),
    ("generator.file", "/abs/path.onnx", "generator.file"),
    ("discriminator.file", "..", "discriminator.file"),
    ("generator.sha256", "xyz", "generator.sha256"),
    ("generator.layer_widths", [100], "generator.layer_widths"),
    ("generator.layer_widths", [100, -1, 784], "generator.layer_widths"),
    ("generator.layer_widths", [101, 128, 784], "latent.dim"),
    ("generator.hidden_activation", "swish", "generator.hidden_activation"),
    ("generator.leaky_relu_alpha", "0.01", "generator.leaky_relu_alpha"),
    ("discriminator", [], "discriminator"),
    ("opset", 17.0, "opset"),
    ("parity", ..., "parity"),
])
def test_malformed_fields_are_named(path, value, message):
    with pytest.raises(ManifestError, match=message):
        parse_manifest(changed(path, value))


def test_reading_files(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{ not json")
    with pytest.raises(ManifestError, match="cannot be read as JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ManifestError, match="cannot be read"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(" " * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ManifestError, match="too large"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(changed("opset", ...)))
    with pytest.raises(PackageError, match="manifest.json.*opset"):
        read_manifest(tmp_path)
