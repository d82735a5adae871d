"""Sample-quality metrics, computed from the evaluator classifier's outputs.

- frechet_distance: ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians
  fitted to two sets of 128-d classifier features (FID, with an MNIST classifier in place of
  Inception). Lower is better; held-out real digits give the floor.
- classifier_score: exp(E_x KL(p(y|x) || p(y))), the Inception Score with the MNIST classifier;
  at most the number of classes, 10 for digits (confident predictions spread evenly).
- class_histogram: the fraction of samples predicted as each class; its minimum is the rarest
  class's share (0.1 means perfect coverage of ten classes).
- precision_recall: k-nearest-neighbour manifold estimates (Kynkaanniemi et al., 2019). Precision
  is the share of generated samples inside the real manifold (a union of balls reaching each real
  feature's k-th neighbour); recall the share of real samples inside the generated one.

For a conditional generator, whose samples were each asked for a class (conditional_metrics):
- label_agreement: the share of samples the classifier assigns to the class they were asked for.
  Real held-out images with their true labels score the classifier's accuracy: the ceiling.
- per_class_frechet_distance: for each class c, the Frechet distance between the samples asked
  for c and the real images of class c, in the same feature space.
"""

import torch


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    a, b = features_a.double(), features_b.double()
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)): a symmetric matrix, so eigh is safe.
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return float(((mean_a - mean_b) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * middle)


def classifier_score(probabilities: torch.Tensor) -> float:
    p = probabilities.double().clamp_min(1e-12)
    marginal = p.mean(0, keepdim=True)
    return float(torch.exp((p * (p.log() - marginal.log())).sum(1).mean()))


def class_histogram(probabilities: torch.Tensor) -> list[float]:
    counts = torch.bincount(probabilities.argmax(1), minlength=probabilities.shape[1])
    return (counts.double() / len(probabilities)).tolist()


def _radii(features: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each feature to its k-th nearest other feature of the same set."""
    radii = []
    for start in range(0, len(features), chunk):
        distances = torch.cdist(features[start:start + chunk], features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at 0
    return torch.cat(radii)


def _coverage(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int) -> float:
    inside = []
    for start in range(0, len(queries), chunk):
        distances = torch.cdist(queries[start:start + chunk], support)
        inside.append((distances <= radii[None, :]).any(dim=1))
    return float(torch.cat(inside).double().mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk: int = 1000) -> tuple[float, float]:
    """real, fake: (N, D) features; memory stays at chunk x N distances."""
    real, fake = real.float(), fake.float()
    precision = _coverage(fake, real, _radii(real, k, chunk), chunk)
    recall = _coverage(real, fake, _radii(fake, k, chunk), chunk)
    return precision, recall


def conditional_metrics(probabilities: torch.Tensor, features: torch.Tensor, labels: torch.Tensor,
                        real_features: torch.Tensor, real_labels: torch.Tensor) -> dict:
    """label_agreement and per_class_frechet_distance for samples asked for `labels` (N,).

    probabilities (N, K) and features (N, 128) are the classifier's for the samples; real_features
    (M, 128) with real_labels (M,) the real images'. A class's distance is None when either side
    has fewer than 2 images. It is only meaningful with several hundred images per class on each
    side: a covariance of 128 features estimated from fewer than 129 images is singular, and the
    distance of a small sample is biased upwards (real against real included). With ten classes,
    eval_samples = 1000 gives 100 per class, a trend at best; the final 10,000 give 1,000.
    """
    labels, real_labels = labels.long().cpu(), real_labels.long().cpu()
    distances = []
    for label in range(probabilities.shape[1]):
        fake, real = features[labels == label], real_features[real_labels == label]
        distances.append(frechet_distance(fake, real) if len(fake) >= 2 and len(real) >= 2 else None)
    return {"label_agreement": float((probabilities.argmax(1).cpu() == labels).double().mean()),
            "per_class_frechet_distance": distances}


def all_metrics(classifier, images: torch.Tensor, real_features: torch.Tensor,
                labels: torch.Tensor | None = None, real_labels: torch.Tensor | None = None) -> dict:
    """Every metric for images (N, 784) in [-1, 1], against real_features: the features of the
    classifier's training split (training/evaluate.py's Evaluator), not its held-out images.
    With `labels` (N,), the classes the images were asked for, and real_labels, the classes of
    real_features: the conditional metrics too."""
    probabilities, features = classifier.predict(images)
    histogram = class_histogram(probabilities)
    precision, recall = precision_recall(real_features, features)
    metrics = {"frechet_distance": frechet_distance(features, real_features),
               "classifier_score": classifier_score(probabilities),
               "rarest_class_fraction": min(histogram), "class_histogram": histogram,
               "precision": precision, "recall": recall, "samples": len(images)}
    if labels is not None:
        metrics.update(conditional_metrics(probabilities, features, labels, real_features, real_labels))
    return metrics
