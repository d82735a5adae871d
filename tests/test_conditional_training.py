"""Conditional training (--conditional): the labels reach both networks, runs resume exactly, the
config records the classes, and bad combinations fail with our errors. The fast step's gradients
against the reference step's, conditional included, are in tests/test_fast_step.py."""

import numpy as np
import pytest
import torch

from test_training import assert_same_weights, cli, final_state
from training.config import TrainConfig
from training.errors import ConfigError
from training.model import build_models, grid_labels, with_labels
from training.run import main


def conditional_model(classes: int = 10):
    config = TrainConfig().model
    config.conditional, config.classes = True, classes
    torch.manual_seed(0)
    return build_models(config)


def test_the_label_is_a_one_hot_input_beside_z_and_the_image():
    generator, discriminator = conditional_model()
    assert generator.stack.layers[0].in_features == 110 and discriminator.stack.layers[0].in_features == 794
    z = torch.randn(10, 100)
    labels = torch.arange(10)
    images, _ = generator(z, labels)
    # (B,) class indices and (B, classes) one-hot rows (what the ONNX graph takes) are the same input
    assert torch.equal(images, generator(z, torch.eye(10)[labels])[0])
    # the label changes the image: the same z drawn as a 3 and as an 8
    three, eight = (generator(z[:1], torch.tensor([c]))[0] for c in (3, 8))
    assert (three - eight).abs().max() > 1e-3
    assert torch.equal(with_labels(z, labels, 10)[:, 100:], torch.eye(10))
    with pytest.raises(ValueError, match="needs labels"):
        generator(z)
    unconditional, _ = build_models(TrainConfig().model)
    with pytest.raises(ValueError, match="unconditional"):
        unconditional(z, labels)


def test_grid_rows_are_classes():
    assert grid_labels(100, 10).view(10, 10).tolist() == [[row] * 10 for row in range(10)]
    assert grid_labels(20, 3).tolist() == [0] * 10 + [1] * 10


def test_a_conditional_run_records_its_classes_and_resumes_exactly(tmp_path):
    assert main(cli(tmp_path, "whole", "--conditional", "--epochs", "2")) == 0
    assert main(cli(tmp_path, "split", "--conditional", "--epochs", "1")) == 0
    assert main(["--resume", str(tmp_path / "runs" / "split"), "--epochs", "2", "--progress", "false"]) == 0
    whole, split = final_state(tmp_path / "runs" / "whole"), final_state(tmp_path / "runs" / "split")
    assert_same_weights(whole, split)
    assert whole["config"]["model"]["conditional"] is True and whole["config"]["model"]["classes"] == 10
    assert whole["class_names"] == [str(c) for c in range(10)]
    assert whole["generator"]["stack.layers.0.weight"].shape == (128, 110)
    assert (tmp_path / "runs" / "whole" / "samples" / "final.png").is_file()


def test_more_labels_than_the_configured_classes_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="classes 5: the data has 10 classes"):
        main(cli(tmp_path, "few", "--conditional", "--classes", "5"))


def test_classes_out_of_range_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="classes"):
        main(cli(tmp_path, "many", "--conditional", "--classes", "100000"))


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """A conditional dry run (2 epochs on 1,024 bundled digits) and its exported package."""
    tmp_path = tmp_path_factory.mktemp("conditional")
    assert main(cli(tmp_path, "c", "--conditional")) == 0
    return tmp_path / "runs" / "c"


def test_the_exported_package_is_conditional_and_every_backend_matches_pytorch(conditional_run):
    import ganpack
    from export.package import load_state, networks_from_state

    manifest = ganpack.load(conditional_run / "model", backend="numpy").manifest
    assert manifest.format_version == 3 and manifest.classes is not None
    assert manifest.classes.count == 10 and manifest.classes.names == [str(c) for c in range(10)]
    assert manifest.generator.inputs == {"z": ["batch", 100], "label": ["batch", 10]}
    assert manifest.discriminator.inputs == {"image": ["batch", 784], "label": ["batch", 10]}
    assert manifest.generator.layer_widths == [110, 128, 784]
    assert manifest.parity["max_abs_diff"]["generator_image"] <= 1e-5
    _, generator, discriminator, _ = networks_from_state(load_state(conditional_run))
    labels = torch.arange(64) % 10
    for backend in ganpack.available_backends():
        model = ganpack.load(conditional_run / "model", backend=backend)
        z = model.latents(64, seed=5)
        with torch.no_grad():
            expected, _ = generator(torch.from_numpy(z), labels)
            expected_p, _ = discriminator(expected, labels)
        got = model.generate(z, "float", labels=labels.numpy())
        assert np.abs(got.reshape(64, -1) - expected.numpy()).max() <= 1e-5, backend
        assert np.array_equal(model.sample(64, seed=5, output="float", labels=labels.numpy()), got), backend
        p = model.score(got, labels=labels.numpy())
        assert np.abs(p - expected_p.numpy()[:, 0]).max() <= 1e-5, backend
        # the label matters: the same latents asked for a 1 are other images than asked for a 7
        assert not np.array_equal(model.sample(4, seed=5, label=1), model.sample(4, seed=5, label=7))


def test_plain_onnxruntime_runs_the_conditional_package(conditional_run):
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(conditional_run / "model" / "generator.onnx"))
    z = np.random.default_rng(0).standard_normal((3, 100), dtype=np.float32)
    label = np.eye(10, dtype=np.float32)[[7, 7, 2]]  # one-hot rows: two 7s and a 2
    (images,) = session.run(None, {"z": z, "label": label})
    (first,) = session.run(None, {"z": z[:1], "label": label[:1]})
    assert images.shape == (3, 784) and np.abs(images[0] - first[0]).max() <= 1e-6
    assert np.abs(images[0] - images[1]).max() > 1e-3  # other latents, the same label: other images


def test_conditional_training_on_unlabeled_data_is_refused(tmp_path):
    unlabeled = tmp_path / "digits.npy"
    np.save(unlabeled, np.zeros((300, 28, 28), np.uint8))
    with pytest.raises(ConfigError, match="conditional training needs labeled data"):
        main(cli(tmp_path, "u", "--conditional", "--data", str(unlabeled)))


@pytest.mark.parametrize("names", [["0"] * 10, ["a", ""] + [str(c) for c in range(8)], [str(c) for c in range(9)]])
def test_class_names_a_manifest_would_refuse_stop_the_export(conditional_run, tmp_path, names):
    from export.errors import ExportError
    from export.package import load_state, write_package

    state = load_state(conditional_run)
    state["class_names"] = names
    with pytest.raises(ExportError, match="class names"):
        write_package(state, tmp_path / "pkg", log=lambda *a: None)
    assert not (tmp_path / "pkg").exists()
