"""The evaluator's classifier: a small CNN whose predictions and 128-d features the quality
metrics are computed in (the usual MNIST practice, as TF-GAN's mnist_frechet_distance does).

Trained once per data set on a fixed split (10% held out) with a fixed seed (another seed,
`python -m training.evaluate --classifier-seed N`, gives a second opinion), then cached, so
later evaluations load it in milliseconds. Its output has one logit per class of the data (ten
for MNIST). The cache file is named by the training images' bytes, their labels, the number of
classes and this file's training recipe (RECIPE), so a change to any of them trains a new one
and data sets that differ only in their labels each keep their own. The file also records the
labels' SHA-256, checked on load (a file that records none is trusted by its name).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganpack.atomic import replacing
from training.errors import ConfigError

RECIPE = "cnn32-64-128/adam1e-3/epochs8/batch64/heldout0.1"  # and the seed, in cache_path
HELD_OUT_FRACTION = 0.1


class DigitClassifier(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(  # (B, 1, 28, 28) -> (B, 128)
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 784) in [-1, 1] -> (logits (B, K), features (B, 128)), K classes."""
        features = self.features(images.reshape(-1, 1, 28, 28))
        return self.head(features), features


@dataclass
class TrainedClassifier:
    model: DigitClassifier
    held_out_accuracy: float
    held_out_images: torch.Tensor  # (N, 784) in [-1, 1], never trained on: the real reference
    held_out_labels: torch.Tensor | None = None  # (N,) int64, their classes

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities (N, K), features (N, 128)) for images (N, 784) in [-1, 1]."""
        self.model.eval()
        probabilities, features = [], []
        for start in range(0, len(images), batch):
            logits, feats = self.model(images[start:start + batch].float())
            probabilities.append(logits.softmax(dim=1))
            features.append(feats)
        return torch.cat(probabilities), torch.cat(features)


def split(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed train / held-out indices for a data set of `count` images."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(0))
    held_out = int(count * HELD_OUT_FRACTION)
    return order[held_out:], order[:held_out]


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 8,
                     num_classes: int = 10, seed: int = 0) -> TrainedClassifier:
    """images (N, 784) in [-1, 1], labels (N,) int64 in 0..num_classes-1. seed: of the weights and
    the batch order (the train / held-out split stays fixed)."""
    torch.manual_seed(seed)
    train, held_out = split(len(images))
    model = DigitClassifier(num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(seed + 1)
    for _ in range(epochs):
        model.train()
        for batch in train[torch.randperm(len(train), generator=order)].split(64):
            logits, _ = model(images[batch])
            loss = nn.functional.cross_entropy(logits, labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    trained = TrainedClassifier(model.eval(), 0.0, images[held_out], labels[held_out])
    probabilities, _ = trained.predict(images[held_out])
    trained.held_out_accuracy = float((probabilities.argmax(1) == labels[held_out]).float().mean())
    return trained


def cache_path(images: np.ndarray, labels: np.ndarray, num_classes: int, cache_dir: Path, seed: int = 0) -> Path:
    """The cache file of the classifier for images (N, 28, 28) uint8 with labels (N,)."""
    key = hashlib.sha256(np.ascontiguousarray(images).tobytes() + labels_digest(labels).encode()
                         + f"/classes{num_classes}/{RECIPE}/seed{seed}".encode()).hexdigest()[:16]
    return cache_dir / f"classifier-{key}.pt"


def labels_digest(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()


def check_cache_dir(cache_dir: Path) -> None:
    """Create the cache folder, or say in one line why it cannot be (a file in the way, no
    permission): before the minutes of training, not after."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # FileExistsError, NotADirectoryError: a file where a folder must be
        raise ConfigError(f"the evaluator's cache folder '{cache_dir}' cannot be created: "
                          f"{error.strerror or error}") from None


def load_or_train(images_uint8: np.ndarray, labels: np.ndarray, cache_dir: Path, log=print,
                  num_classes: int = 10, seed: int = 0) -> TrainedClassifier:
    """The classifier for this data set (labels (N,) in 0..num_classes-1): from the cache when
    there and made for these labels, else trained and cached."""
    from training.mnist import to_training_tensor

    images = to_training_tensor(images_uint8, "cpu")
    labels_t = torch.as_tensor(labels.astype(np.int64))
    path = cache_path(images_uint8, labels, num_classes, cache_dir, seed)
    _, held_out = split(len(images))
    check_cache_dir(cache_dir)
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            recorded = state.get("labels_sha256", labels_digest(labels))  # none: trusted by its name alone
            if recorded != labels_digest(labels) or state["model"]["head.weight"].shape[0] != num_classes:
                log(f"the cached classifier {path} was trained on other labels; training it again")
            else:
                model = DigitClassifier(num_classes)
                model.load_state_dict(state["model"])
                return TrainedClassifier(model.eval(), float(state["held_out_accuracy"]), images[held_out],
                                         labels_t[held_out])
        except Exception as error:  # a cache is disposable: a truncated or foreign file is trained again
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            log(f"the cached classifier {path} is unreadable ({reason[:200]}); training it again")
    log(f"training the evaluator's classifier on {len(images)} images (once; cached in {cache_dir}) ...")
    trained = train_classifier(images, labels_t, num_classes=num_classes, seed=seed)
    log(f"classifier held-out accuracy: {trained.held_out_accuracy:.4f}")
    with replacing(path) as file:  # a partial name of its own: two evaluators of one data set race safely
        torch.save({"model": trained.model.state_dict(), "held_out_accuracy": trained.held_out_accuracy,
                    "labels_sha256": labels_digest(labels)}, file)
    return trained
