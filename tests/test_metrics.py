"""Quality metrics on known cases, and the evaluator's determinism (issue 6's evaluator)."""

import pytest
import torch

from training import mnist
from training.classifier import split, train_classifier
from training.metrics import all_metrics, class_histogram, classifier_score, frechet_distance, precision_recall


def test_frechet_distance_of_known_gaussians():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=generator)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = a + torch.tensor([3.0, 0, 0, 0])
    assert frechet_distance(a, shifted) == pytest.approx(9.0, rel=1e-3)  # only the means differ
    scaled = a * 2  # covariance 4I vs I: Tr(I + 4I - 2 * 2I) = 1 per dimension
    assert frechet_distance(a, scaled) == pytest.approx(4.0, rel=0.05)


def test_classifier_score_and_histogram_extremes():
    confident_even = torch.eye(10).repeat(100, 1)  # each class 10%, fully confident
    assert classifier_score(confident_even) == pytest.approx(10.0, rel=1e-6)
    assert class_histogram(confident_even) == pytest.approx([0.1] * 10)
    collapsed = torch.zeros(1000, 10)
    collapsed[:, 7] = 1
    assert classifier_score(collapsed) == pytest.approx(1.0)
    assert min(class_histogram(collapsed)) == 0.0


def test_precision_recall_extremes():
    generator = torch.Generator().manual_seed(1)
    real = torch.randn(500, 8, generator=generator)
    assert precision_recall(real, real.clone(), chunk=128) == (1.0, 1.0)
    far = real + 100
    assert precision_recall(real, far, chunk=128) == (0.0, 0.0)
    half = torch.cat([real[:250], far[:250]])  # half the fakes on the real manifold
    precision, recall = precision_recall(real, half, chunk=128)
    assert precision == pytest.approx(0.5) and 0 < recall < 1


@pytest.fixture(scope="module")
def evaluator():
    """A quickly trained classifier on the bundled digits, with their features."""
    images_uint8, labels = mnist.load_bundled()
    images = mnist.to_training_tensor(images_uint8, "cpu")
    classifier = train_classifier(images, torch.as_tensor(labels.astype("int64")), epochs=2)
    train, held_out = split(len(images))
    _, reference = classifier.predict(images[train])
    return classifier, images, torch.as_tensor(labels.astype("int64")), held_out, reference


@pytest.mark.slow
def test_real_is_near_the_floor_noise_far_and_collapse_is_caught(evaluator):
    classifier, images, labels, held_out, reference = evaluator
    assert classifier.held_out_accuracy > 0.9
    real = all_metrics(classifier, images[held_out], reference)
    noise = all_metrics(classifier, torch.rand(500, 784, generator=torch.Generator().manual_seed(0)) * 2 - 1,
                        reference)
    sevens = images[labels == 7][:500]  # a generator collapsed onto one digit
    collapsed = all_metrics(classifier, sevens, reference)
    assert real["frechet_distance"] * 10 < noise["frechet_distance"]
    assert real["classifier_score"] > 7 and real["rarest_class_fraction"] > 0.05
    assert real["precision"] > 0.7 and real["recall"] > 0.7
    assert collapsed["rarest_class_fraction"] == 0.0 and collapsed["classifier_score"] < 1.5
    assert collapsed["frechet_distance"] > 3 * real["frechet_distance"]
    assert collapsed["recall"] < 0.3  # the other nine digits are missed


@pytest.mark.slow
def test_metrics_are_deterministic(evaluator):
    classifier, images, _, held_out, reference = evaluator
    assert all_metrics(classifier, images[held_out], reference) == all_metrics(classifier, images[held_out], reference)


def test_classifier_training_is_deterministic():
    images_uint8, labels = mnist.load_bundled()
    images = mnist.to_training_tensor(images_uint8[:600], "cpu")
    labels_t = torch.as_tensor(labels[:600].astype("int64"))
    torch.set_num_threads(1)
    first, second = (train_classifier(images, labels_t, epochs=1) for _ in range(2))
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_evaluate_command_uses_the_cached_classifier(evaluator, tmp_path, capsys):
    from training import evaluate
    from training.classifier import cache_path

    classifier = evaluator[0]
    images_uint8, labels = mnist.load_bundled()
    path = cache_path(images_uint8, labels, 10, tmp_path)
    torch.save({"model": classifier.model.state_dict(), "held_out_accuracy": classifier.held_out_accuracy}, path)
    from ganpack.model import DEFAULT_MODEL

    assert evaluate.main([str(DEFAULT_MODEL), "--samples", "300", "--cache-dir", str(tmp_path),
                          "--json", str(tmp_path / "rows.json")]) == 0
    captured = capsys.readouterr()
    assert "training the evaluator" not in captured.err  # loaded from the cache
    assert "| generated |" in captured.out and "| real |" in captured.out and "| noise |" in captured.out
    import json

    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows["generated"]["samples"] == 300 and len(rows["generated"]["class_histogram"]) == 10
    # digits, real or generated, read far from noise; the built-in model may read below the real row,
    # which has another sample size (500 held-out digits against 300 samples)
    noise = rows["noise"]["frechet_distance"]
    assert rows["real"]["frechet_distance"] < noise / 10 and rows["generated"]["frechet_distance"] < noise / 10


@pytest.mark.slow
def test_training_evaluates_and_the_manifest_records_it(evaluator, tmp_path):
    import json

    from training.classifier import cache_path
    from training.run import main

    classifier = evaluator[0]
    images_uint8, labels = mnist.load_bundled()
    (tmp_path / "cache").mkdir()
    torch.save({"model": classifier.model.state_dict(), "held_out_accuracy": classifier.held_out_accuracy},
               cache_path(images_uint8, labels, 10, tmp_path / "cache"))  # a seeded cache: no 30 s of training here
    argv = ["--out_dir", str(tmp_path / "runs"), "--name", "q", "--epochs", "2", "--eval_every", "1",
            "--eval_samples", "100", "--evaluator_cache", str(tmp_path / "cache"), "--progress", "false",
            "--threads", "1", "--batch_size", "256"]
    assert main(argv) == 0
    run = tmp_path / "runs" / "q"
    records = [json.loads(line) for line in (run / "quality.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["samples"]) for r in records] == [(1, 100), (2, 10000)]  # the last one is the final
    assert (run / "quality.png").read_bytes()[:4] == b"\x89PNG"
    quality = json.loads((run / "model" / "manifest.json").read_text())["quality"]
    assert quality["samples"] == 10000 and quality["frechet_distance"] == records[-1]["frechet_distance"]
    assert quality["reference_real"]["frechet_distance"] < quality["frechet_distance"]
    assert 0 < quality["classifier_accuracy"] <= 1


@pytest.mark.slow  # trains the classifier twice on 200 digits: a few seconds
@pytest.mark.parametrize("damage", [b"", b"not a torch file", "truncated"])
def test_a_damaged_classifier_cache_is_trained_again(tmp_path, damage):
    from training import classifier

    images_uint8, labels = mnist.load_bundled()
    images_uint8, labels = images_uint8[:200], labels[:200]
    path = classifier.cache_path(images_uint8, labels, 10, tmp_path)
    classifier.load_or_train(images_uint8, labels, tmp_path, log=lambda *a: None)  # a good cache
    good = path.read_bytes()
    path.write_bytes(good[:len(good) // 2] if damage == "truncated" else damage)
    messages = []
    trained = classifier.load_or_train(images_uint8, labels, tmp_path, log=messages.append)
    assert "is unreadable" in messages[0] and str(path) in messages[0]
    assert 0 <= trained.held_out_accuracy <= 1
    assert classifier.load_or_train(images_uint8, labels, tmp_path, log=messages.append)  # the cache is whole again
    assert len(messages) == 3  # unreadable, training, accuracy; nothing from the third call
