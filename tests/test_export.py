"""Export: plain, checked ONNX graphs; onnxruntime parity with PyTorch; the manifest and its
checksums; atomic writes that leave nothing behind on failure."""

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import export.package as package_module
import export.parity as parity_module
from export.errors import ExportError
from export.package import load_state, networks_from_state, write_package
from export.provenance import public_training_config
from ganpack.errors import PackageError
from ganpack.manifest import read_manifest
from ganpack.package import verify_package
from training.run import main

TOLERANCE = 1e-5


def train(tmp_path_factory, name, *extra):
    """A dry run (2 epochs on 1,024 digits), which exports its package to RUN/model at the end."""
    out = tmp_path_factory.mktemp(name)
    argv = ["--dry-run", "--out_dir", str(out), "--name", name, "--progress", "false", "--threads", "1", *extra]
    assert main(argv) == 0
    return out / name


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train(tmp_path_factory, "default")


@pytest.fixture(scope="module")
def wide_run_dir(tmp_path_factory):
    return train(tmp_path_factory, "wide", "--latent_dim", "64", "--generator_hidden", "256",
                 "--discriminator_hidden", "256", "--leaky_relu_alpha", "0.2")


def graph(path):
    return onnx.load(str(path))


def test_graphs_pass_the_full_checker_and_are_plain(run_dir):
    for name, inputs, outputs in (("generator", ["z"], ["image"]),
                                  ("discriminator", ["image"], ["probability", "logit"])):
        model = graph(run_dir / "model" / f"{name}.onnx")
        onnx.checker.check_model(model, full_check=True)
        assert {node.op_type for node in model.graph.node} <= {"Gemm", "LeakyRelu", "Tanh", "Sigmoid"}
        assert [i.name for i in model.graph.input] == inputs
        assert [o.name for o in model.graph.output] == outputs
        for value in list(model.graph.input) + list(model.graph.output):
            assert value.type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch axis
        assert all(not init.external_data for init in model.graph.initializer)
        assert model.opset_import[0].version == 17
    assert sorted(p.name for p in (run_dir / "model").iterdir()) == [
        "discriminator.onnx", "generator.onnx", "manifest.json", "preview.png"]
    assert (run_dir / "model").stat().st_mode & 0o755 == 0o755  # readable by others, like any folder


@pytest.mark.parametrize("fixture", ["run_dir", "wide_run_dir"])
def test_onnxruntime_matches_pytorch_at_several_batch_sizes(fixture, request):
    folder = request.getfixturevalue(fixture)
    config, generator, discriminator, _ = networks_from_state(load_state(folder))
    g = onnxruntime.InferenceSession(str(folder / "model" / "generator.onnx"), providers=["CPUExecutionProvider"])
    d = onnxruntime.InferenceSession(str(folder / "model" / "discriminator.onnx"), providers=["CPUExecutionProvider"])
    rng = torch.Generator().manual_seed(7)
    for batch in (1, 3, 17, 1000):
        z = torch.randn(batch, config.model.latent_dim, generator=rng)
        with torch.no_grad():
            image, _ = generator(z)
            probability, logit = discriminator(image)
        (onnx_image,) = g.run(None, {"z": z.numpy()})
        onnx_probability, onnx_logit = d.run(None, {"image": image.numpy()})
        assert onnx_image.shape == (batch, 784)
        assert np.abs(onnx_image - image.numpy()).max() <= TOLERANCE
        assert np.abs(onnx_probability - probability.numpy()).max() <= TOLERANCE
        assert np.abs(onnx_logit - logit.numpy()).max() <= 1e-4


def test_manifest_describes_the_package(run_dir):
    state = load_state(run_dir)
    manifest = verify_package(run_dir / "model")
    assert manifest.format == "ganpack-model" and manifest.format_version == 2
    assert manifest.latent.generator == "ganpack-philox/1"
    assert manifest.latent.dim == 100 and manifest.latent.distribution == "normal"
    assert manifest.latent.parameters == {"mean": 0.0, "std": 1.0}
    assert manifest.generator.layer_widths == [100, 128, 784]
    assert manifest.discriminator.layer_widths == [784, 128, 1]
    assert manifest.generator.leaky_relu_alpha == 0.01
    assert (manifest.generator.output_activation, manifest.discriminator.output_activation) == ("tanh", "sigmoid")
    assert manifest.image.value_range == [-1.0, 1.0] and manifest.image.shape == [28, 28]
    assert manifest.generator_weights == "ema"
    assert manifest.training_config == public_training_config(state["config"])  # no folders of the author's
    assert manifest.provenance["steps"] == state["step"] == 8
    assert manifest.provenance["dataset"] == "bundled" and manifest.provenance["seed"] == 0
    assert set(manifest.provenance) >= {"exported_at", "torch_version", "onnx_version", "ganpack_version", "git_commit"}
    assert manifest.parity["inputs"] >= 1000 and manifest.parity["batch_sizes"] == [1, 7, 1000]
    assert manifest.parity["max_abs_diff"]["generator_image"] <= TOLERANCE
    assert manifest.parity["max_abs_diff"]["discriminator_probability"] <= TOLERANCE
    for network in (manifest.generator, manifest.discriminator):
        data = (run_dir / "model" / network.file).read_bytes()
        assert network.sha256 == hashlib.sha256(data).hexdigest()


def test_non_default_architecture_is_described(wide_run_dir):
    manifest = read_manifest(wide_run_dir / "model")
    assert manifest.generator.layer_widths == [64, 256, 784]
    assert manifest.discriminator.layer_widths == [784, 256, 1]
    assert manifest.generator.leaky_relu_alpha == 0.2
    model = graph(wide_run_dir / "model" / "generator.onnx")
    (leaky,) = [node for node in model.graph.node if node.op_type == "LeakyRelu"]
    assert onnx.helper.get_attribute_value(leaky.attribute[0]) == pytest.approx(0.2)


def test_tampered_graph_is_caught_by_its_checksum(run_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(run_dir / "model", copy)
    data = bytearray((copy / "generator.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight
    (copy / "generator.onnx").write_bytes(bytes(data))
    with pytest.raises(PackageError, match="generator.onnx"):
        verify_package(copy)


def test_existing_package_is_replaced_only_when_asked(run_dir, tmp_path):
    state, out = load_state(run_dir), tmp_path / "pkg"
    write_package(state, out, log=lambda *a: None)
    first = (out / "manifest.json").read_text()
    with pytest.raises(ExportError, match="--overwrite"):
        write_package(state, out, log=lambda *a: None)
    write_package(state, out, overwrite=True, log=lambda *a: None)
    steps = json.loads((out / "manifest.json").read_text())["provenance"]["steps"]
    assert steps == json.loads(first)["provenance"]["steps"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]  # no staging or retired folders


def test_interrupted_export_leaves_no_package(run_dir, tmp_path, monkeypatch):
    state = load_state(run_dir)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C arrived midway, after the graphs were written

    monkeypatch.setattr(package_module, "save_grid", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_package(state, tmp_path / "new", log=lambda *a: None)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    write_package(state, tmp_path / "old", log=lambda *a: None)
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}
    monkeypatch.setattr(package_module, "save_grid", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_package(state, tmp_path / "old", overwrite=True, log=lambda *a: None)
    assert {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_parity_failure_writes_nothing(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(parity_module, "TOLERANCE", -1.0)  # no difference can pass
    with pytest.raises(ExportError, match="differs from PyTorch"):
        write_package(load_state(run_dir), tmp_path / "pkg", log=lambda *a: None)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    real_run = parity_module._run_in_batches
    monkeypatch.setattr(parity_module, "_run_in_batches",  # onnxruntime answering NaN: never a pass
                        lambda *args: [np.full_like(output, np.nan) for output in real_run(*args)])
    with pytest.raises(ExportError, match="differs from PyTorch by nan"):
        write_package(load_state(run_dir), tmp_path / "pkg", log=lambda *a: None)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(run_dir, tmp_path, value):
    """NaN or inf in a weight: refused by name before any graph is written (the runtime would
    refuse the package; and parity must never read a NaN difference as a pass)."""
    state = load_state(run_dir)
    weights = state["generator_ema"] if "generator_ema" in state else state["generator"]
    next(iter(weights.values())).view(-1)[0] = value
    with pytest.raises(ExportError, match="generator weight '.*' holds a non-finite value"):
        write_package(state, tmp_path / "pkg", log=lambda *a: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_command_line(run_dir, tmp_path):
    def export(*args):
        return subprocess.run([sys.executable, "-m", "export", *args], capture_output=True, text=True, timeout=300)

    checkpoint_file = sorted((run_dir / "checkpoints").iterdir())[-1]
    done = export(str(checkpoint_file), "--out", str(tmp_path / "pkg"))
    assert done.returncode == 0, done.stderr
    assert "parity" in done.stdout and (tmp_path / "pkg" / "manifest.json").exists()
    again = export(str(run_dir), "--out", str(tmp_path / "pkg"))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    missing = export(str(tmp_path / "nothing"), "--out", str(tmp_path / "x"))
    assert missing.returncode == 2 and "neither a run folder nor a checkpoint" in missing.stderr


def test_exporting_a_run_again_keeps_its_measured_quality(run_dir, tmp_path):
    from export.__main__ import main as export_main

    run_copy = shutil.copytree(run_dir, tmp_path / "run")
    manifest_path = run_copy / "model" / "manifest.json"
    values = json.loads(manifest_path.read_text())
    values["quality"] = {"frechet_distance": 12.5, "samples": 10000}  # as the run's final evaluation writes
    manifest_path.write_text(json.dumps(values))
    assert export_main([str(run_copy), "--out", str(tmp_path / "again")]) == 0
    assert read_manifest(tmp_path / "again").quality == values["quality"]
    values["provenance"]["steps"] += 1  # measured on other weights: not carried over
    manifest_path.write_text(json.dumps(values))
    assert export_main([str(run_copy), "--out", str(tmp_path / "other")]) == 0
    assert read_manifest(tmp_path / "other").quality == {}


def test_training_can_skip_the_export(tmp_path_factory):
    run = train(tmp_path_factory, "noexport", "--export", "false")
    assert not (run / "model").exists()


PLAIN_ONNXRUNTIME = """
import json, sys
import numpy as np
import onnxruntime as ort

package = sys.argv[1]
manifest = json.load(open(f"{package}/manifest.json"))
generator = ort.InferenceSession(f"{package}/generator.onnx")
discriminator = ort.InferenceSession(f"{package}/discriminator.onnx")
z = np.random.default_rng(0).standard_normal((16, manifest["latent"]["dim"]), dtype=np.float32)
(images,) = generator.run(None, {"z": z})                     # (16, 784) in [-1, 1]
probability, logit = discriminator.run(None, {"image": images})  # (16, 1) each
pixels = np.clip(np.rint((images + 1) * 127.5), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
assert "ganpack" not in sys.modules and "torch" not in sys.modules
print(pixels.shape, float(images.min()) >= -1, float(images.max()) <= 1, probability.shape)
"""


def test_plain_onnxruntime_needs_nothing_of_ganpack(run_dir):
    result = subprocess.run([sys.executable, "-c", PLAIN_ONNXRUNTIME, str(run_dir / "model")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(16,", "28,", "28)", "True", "True", "(16,", "1)"]


def test_missing_or_linked_graph_is_refused(run_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(run_dir / "model", copy)
    (copy / "discriminator.onnx").unlink()
    with pytest.raises(PackageError, match="discriminator.onnx: missing"):
        verify_package(copy)
    (copy / "discriminator.onnx").symlink_to(run_dir / "model" / "discriminator.onnx")
    with pytest.raises(PackageError, match="discriminator.onnx: missing"):  # a link could point anywhere
        verify_package(copy)
    with pytest.raises(PackageError, match="not a folder"):
        verify_package(tmp_path / "nowhere")


def test_single_file_archive(run_dir, tmp_path):
    import zipfile

    import ganpack

    archive = write_package(load_state(run_dir), tmp_path / "model.zip", log=lambda *a: None)
    assert sorted(zipfile.ZipFile(archive).namelist()) == [
        "discriminator.onnx", "generator.onnx", "manifest.json", "preview.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]  # no staging left behind
    from_archive = ganpack.load(archive, backend="numpy")
    from_folder = ganpack.load(run_dir / "model", backend="numpy")
    assert np.array_equal(from_archive.sample(8, seed=1), from_folder.sample(8, seed=1))
    with pytest.raises(ExportError, match="--overwrite"):
        write_package(load_state(run_dir), archive, log=lambda *a: None)


def test_a_checkpoint_whose_weights_miss_a_tensor_is_one_line():
    """A state dict lacking a tensor (or holding one of another shape) is refused in one line
    naming the key, not torch's many-line RuntimeError."""
    from training.config import TrainConfig
    from training.model import build_models

    config = TrainConfig()
    generator, discriminator = build_models(config.model)
    weights = generator.state_dict()
    first = next(iter(weights))
    del weights[first]
    state = {"config": config.to_dict(), "generator": weights, "discriminator": discriminator.state_dict(),
             "epoch": 1, "step": 4}
    with pytest.raises(ExportError, match=rf"^the checkpoint's 'generator' weights do not fit its config's networks: "
                                          rf".*Missing key\(s\) in state_dict: \"{first}\"") as caught:
        networks_from_state(state)
    assert "\n" not in str(caught.value)
    state["generator"], state["discriminator"] = generator.state_dict(), {"stack.layers.0.weight": torch.zeros(1)}
    with pytest.raises(ExportError, match="^the checkpoint's 'discriminator' weights do not fit"):
        networks_from_state(state)
