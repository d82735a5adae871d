"""The evaluator on data other than MNIST's digits (training/evaluate.py): a classifier sized to
the data's classes, the conditional metrics on cases whose answer is known, data without labels
(no score, and the run goes on), and `python -m training.evaluate` on a package trained on your
own files. The data is three kinds of 28x28 pattern, easy enough to learn in a second."""

import json

import numpy as np
import pytest
import torch

from at_once import run_at_once
from training import datasets, evaluate
from training.errors import ConfigError, DataError

UNCONDITIONAL_KEYS = {"frechet_distance", "classifier_score", "rarest_class_fraction", "class_histogram",
                      "precision", "recall", "samples"}


def patterns(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (count, 28, 28): class 0 a bright top half, 1 a bright left half, 2 a bright centre
    square, each over noise; labels (count,) cycling 0, 1, 2."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (count, 28, 28), dtype=np.uint8)
    labels = np.arange(count) % 3
    images[labels == 0, :14, :] += 180
    images[labels == 1, :, :14] += 180
    images[labels == 2, 7:21, 7:21] += 180
    return images, labels


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluator-cache")


@pytest.fixture(scope="module")
def evaluator(cache):
    images, labels = patterns(300)
    torch.set_num_threads(1)
    return evaluate.Evaluator(images, labels, str(cache), log=lambda *a: None, num_classes=3)


def test_the_classifier_has_one_output_per_class(evaluator):
    assert evaluator.classifier.model.head.out_features == 3
    assert evaluator.classifier.held_out_accuracy > 0.9
    assert len(evaluator.classifier.held_out_labels) == len(evaluator.classifier.held_out_images) == 30


def test_unconditional_calls_keep_their_keys(evaluator):
    images, _ = patterns(60, seed=1)
    metrics = evaluator.metrics(torch.from_numpy(images).float().reshape(60, -1) / 127.5 - 1)
    assert set(metrics) == UNCONDITIONAL_KEYS and len(metrics["class_histogram"]) == 3


def test_real_images_with_their_labels_agree_as_often_as_the_classifier_is_right(evaluator):
    classifier = evaluator.classifier
    held_out = evaluator.metrics(classifier.held_out_images, classifier.held_out_labels)
    assert held_out["label_agreement"] == pytest.approx(classifier.held_out_accuracy, abs=1e-12)
    assert set(held_out) == UNCONDITIONAL_KEYS | {"label_agreement", "per_class_frechet_distance"}
    # the classifier's own training split against itself: every class's distance is 0
    images, labels = patterns(300)
    train, _ = evaluate.split(300)
    own = evaluator.metrics(torch.from_numpy(images[train.numpy()]).float().reshape(-1, 784) / 127.5 - 1,
                            torch.from_numpy(labels)[train])
    assert own["per_class_frechet_distance"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-3)
    assert own["label_agreement"] > 0.95


def test_wrong_labels_disagree_and_a_class_missing_has_no_distance(evaluator):
    classifier = evaluator.classifier
    shifted = (classifier.held_out_labels + 1) % 3  # every image asked for another class than it shows
    metrics = evaluator.metrics(classifier.held_out_images, shifted)
    assert metrics["label_agreement"] < 0.1
    only_zeros = evaluator.metrics(classifier.held_out_images, torch.zeros(30, dtype=torch.int64))
    assert only_zeros["per_class_frechet_distance"][0] is not None
    assert only_zeros["per_class_frechet_distance"][1:] == [None, None]  # no sample asked for them


def test_class_means_apart_give_the_distance_of_their_means():
    from training.metrics import conditional_metrics

    generator = torch.Generator().manual_seed(0)
    real = torch.randn(4000, 4, generator=generator, dtype=torch.float64)
    real_labels = torch.arange(4000) % 2
    fake = real.clone()
    fake[real_labels == 1] += torch.tensor([3.0, 0, 0, 0], dtype=torch.float64)  # class 1 moved by 3
    probabilities = torch.nn.functional.one_hot(real_labels, 2).double()
    metrics = conditional_metrics(probabilities, fake, real_labels, real, real_labels)
    assert metrics["label_agreement"] == 1.0
    assert metrics["per_class_frechet_distance"] == pytest.approx([0.0, 9.0], abs=1e-6)


def test_labels_are_checked(evaluator):
    images = evaluator.classifier.held_out_images
    with pytest.raises(ValueError, match=r"labels must be integers of shape \(30,\)"):
        evaluator.metrics(images, torch.zeros(29, dtype=torch.int64))
    with pytest.raises(ValueError, match="labels must be in 0..2, got 0 to 3"):
        evaluator.metrics(images, np.array([0] * 29 + [3]))
    with pytest.raises(ValueError, match="labels must be integers"):
        evaluator.metrics(images, torch.zeros(30))


def test_report_scores_the_references_conditionally_too(evaluator):
    images = evaluator.classifier.held_out_images
    rows = evaluator.report(images, evaluator.classifier.held_out_labels)
    assert rows["real"]["label_agreement"] == pytest.approx(rows["classifier_accuracy"])
    assert "label_agreement" in rows["noise"] and len(rows["generated"]["per_class_frechet_distance"]) == 3
    assert "label agreement: generated" in evaluate.table(rows)
    assert "label_agreement" not in evaluator.report(images)["generated"]


def test_same_images_with_other_labels_keep_a_cache_file_each(evaluator, cache, tmp_path):
    """Two data sets of the same images, labeled differently: each trains its classifier once and
    then loads it, however the evaluations alternate (one shared file was trained again each turn)."""
    import shutil

    images, labels = patterns(300)
    other = (labels + 1) % 3
    own_cache = shutil.copytree(cache, tmp_path / "cache")  # the module's stays as it is
    messages = []
    evaluate.Evaluator(images, labels, str(own_cache), log=messages.append, num_classes=3)
    assert messages == []  # from the cache
    evaluate.Evaluator(images, other, str(own_cache), log=messages.append, num_classes=3)
    assert messages[0].startswith("training the evaluator's classifier on 300 images")
    assert len(list(own_cache.glob("classifier-*.pt"))) == 2
    messages.clear()
    for each in (labels, other, labels, other):
        evaluate.Evaluator(images, each, str(own_cache), log=messages.append, num_classes=3)
    assert messages == []
    assert sorted(path.name for path in own_cache.iterdir()) == sorted(path.name for path in
                                                                       own_cache.glob("classifier-*.pt"))


def test_a_cache_file_made_for_other_labels_is_trained_again(evaluator, cache, tmp_path):
    """The labels' SHA-256 inside the file is checked too: a file copied or damaged under the name
    of these labels is not trusted."""
    import shutil

    from training.classifier import cache_path

    images, labels = patterns(300)
    own_cache = shutil.copytree(cache, tmp_path / "cache")
    shutil.copy(cache_path(images, labels, 3, own_cache), cache_path(images, (labels + 1) % 3, 3, own_cache))
    messages = []
    evaluate.Evaluator(images, (labels + 1) % 3, str(own_cache), log=messages.append, num_classes=3)
    assert "was trained on other labels; training it again" in messages[0]


def test_a_cache_folder_under_a_file_is_one_line_before_any_training(tmp_path):
    from training.classifier import load_or_train

    (tmp_path / "a-file").write_text("not a folder\n")
    images, labels = patterns(300)
    messages = []
    with pytest.raises(ConfigError, match=r"^the evaluator's cache folder '.*a-file/sub' cannot be created: "
                                          r"Not a directory$"):
        load_or_train(images, labels, tmp_path / "a-file" / "sub", messages.append, num_classes=3)
    assert messages == []  # refused before training


def test_two_evaluators_caching_one_classifier_at_once_both_finish(tmp_path, monkeypatch):
    """Two processes' evaluators of one data set, both saving the classifier they trained at once:
    each saves under a partial name of its own (with a shared one, the second rename found nothing)."""
    import threading

    from training import classifier

    images, labels = patterns(300)
    trained = classifier.TrainedClassifier(classifier.DigitClassifier(3), 0.5, torch.zeros(30, 784))
    monkeypatch.setattr(classifier, "train_classifier", lambda *args, **kwargs: trained)
    started = threading.Barrier(2, timeout=30)
    real_save = torch.save

    def save_when_both_are_saving(obj, file, *args, **kwargs):
        started.wait()
        real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_when_both_are_saving)
    errors = run_at_once(*[lambda: classifier.load_or_train(images, labels, tmp_path, log=lambda *a: None,
                                                             num_classes=3)] * 2)  # two evaluators of their own
    monkeypatch.undo()
    assert errors == []
    assert [path.name for path in tmp_path.iterdir()] == [classifier.cache_path(images, labels, 3, tmp_path).name]
    state = torch.load(next(tmp_path.iterdir()), weights_only=True)
    assert state["labels_sha256"] == classifier.labels_digest(labels)


def test_unlabeled_or_tiny_data_cannot_be_scored(tmp_path):
    images, labels = patterns(300)
    np.savez(tmp_path / "plain.npz", images=images)
    np.savez(tmp_path / "tiny.npz", images=images[:50], labels=labels[:50])
    messages = []
    assert evaluate.quality_evaluator(datasets.load_dataset(str(tmp_path / "plain.npz")), "", messages.append) is None
    assert evaluate.quality_evaluator(datasets.load_dataset(str(tmp_path / "tiny.npz")), "", messages.append) is None
    assert messages == [
        "quality cannot be scored: the data 'plain.npz' has no labels, and the evaluator's classifier learns from "
        "them; training goes on without evaluations",
        "quality cannot be scored: the data 'tiny.npz' has 50 labeled images, fewer than 100; training goes on "
        "without evaluations"]
    with pytest.raises(DataError, match="cannot score: the data 'plain.npz' has no labels"):
        evaluate.evaluate(torch.zeros(10, 784), str(tmp_path / "plain.npz"))


def test_a_run_on_unlabeled_data_says_so_once_and_trains(tmp_path, capsys):
    from training.run import main

    np.savez(tmp_path / "plain.npz", images=patterns(256)[0])
    argv = ["--data", str(tmp_path / "plain.npz"), "--epochs", "1", "--eval_every", "1", "--export", "false",
            "--out_dir", str(tmp_path / "runs"), "--name", "plain", "--progress", "false", "--threads", "1"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("quality cannot be scored" in line for line in lines) == 1
    assert (tmp_path / "runs" / "plain" / "samples" / "final.png").is_file()
    assert not (tmp_path / "runs" / "plain" / "quality.jsonl").exists()


@pytest.mark.slow  # exports a package: a few seconds
def test_the_evaluate_command_on_a_package_of_your_own_data(evaluator, cache, tmp_path, capsys):
    from export.package import write_package
    from training.config import TrainConfig
    from training.model import build_models

    images, labels = patterns(300)
    np.savez(tmp_path / "shapes.npz", images=images, labels=labels)
    config = TrainConfig()
    config.data.data = str(tmp_path / "shapes.npz")
    torch.manual_seed(0)
    generator, discriminator = build_models(config.model)
    source = {**datasets.load_dataset(str(tmp_path / "shapes.npz")).source, "sha256": "0" * 64}  # as if other images
    state = {"config": config.to_dict(), "generator": generator.state_dict(),
             "discriminator": discriminator.state_dict(), "step": 0, "epoch": 0, "data_source": source}
    package = write_package(state, tmp_path / "model", log=lambda *a: None)
    with pytest.raises(ConfigError, match=r"trained on your own data \('shapes.npz'\); pass --data"):
        evaluate.main([str(package), "--samples", "100", "--cache-dir", str(cache)])
    assert evaluate.main([str(package), "--samples", "100", "--cache-dir", str(cache), "--data",
                          str(tmp_path / "shapes.npz"), "--json", str(tmp_path / "rows.json")]) == 0
    captured = capsys.readouterr()
    assert "warning: the package was trained on 'shapes.npz' (300 images); 'shapes.npz' (300 images) holds other" \
        in captured.err
    assert "training the evaluator" not in captured.err  # the module's classifier, from the cache
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert len(rows["generated"]["class_histogram"]) == 3 and "label_agreement" not in rows["generated"]


def test_a_second_classifier_seed_is_a_second_classifier(evaluator, cache):
    """--classifier-seed: another seed trains (and caches) another classifier on the same split;
    seed 0 keeps the cache file it always had."""
    from training.classifier import RECIPE, cache_path

    images, labels = patterns(300)
    assert cache_path(images, labels, 3, cache).is_file()  # the module's evaluator: seed 0
    assert cache_path(images, labels, 3, cache) == cache_path(images, labels, 3, cache, seed=0)
    assert RECIPE + "/seed0" == "cnn32-64-128/adam1e-3/epochs8/batch64/heldout0.1/seed0"  # the key it always had
    messages = []
    other = evaluate.Evaluator(images, labels, str(cache), log=messages.append, num_classes=3, classifier_seed=1)
    assert "training the evaluator's classifier" in messages[0]
    assert cache_path(images, labels, 3, cache, seed=1).is_file()
    first = evaluator.classifier.model.head.weight
    assert not torch.equal(first, other.classifier.model.head.weight)
    assert torch.equal(evaluator.classifier.held_out_images, other.classifier.held_out_images)  # the same split
    with pytest.raises(ConfigError, match="--classifier-seed must be a non-negative integer, got -1"):
        evaluate.main(["unused", "--classifier-seed", "-1"])
