"""Sample-quality metrics, computed from the evaluator classifier's outputs.

- frechet_distance: ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians
  fitted to two sets of 128-d classifier features (FID, with an MNIST classifier in place of
  Inception). Lower is better; held-out real digits give the floor.
- classifier_score: exp(E_x KL(p(y|x) || p(y))), the Inception Score with the MNIST classifier;
  at most 10 (confident predictions spread evenly over ten classes).
- class_histogram: the fraction of samples predicted as each digit; its minimum is the rarest
  class's share (0.1 means perfect coverage).
- precision_recall: k-nearest-neighbour manifold estimates (Kynkaanniemi et al., 2019). Precision
  is the share of generated samples inside the real manifold (a union of balls reaching each real
  feature's k-th neighbour); recall the share of real samples inside the generated one.
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


def all_metrics(classifier, images: torch.Tensor, real_features: torch.Tensor) -> dict:
    """Every metric for images (N, 784) in [-1, 1], against real_features: the features of the
    classifier's training split (training/evaluate.py's Evaluator), not its held-out images."""
    probabilities, features = classifier.predict(images)
    histogram = class_histogram(probabilities)
    precision, recall = precision_recall(real_features, features)
    return {"frechet_distance": frechet_distance(features, real_features),
            "classifier_score": classifier_score(probabilities),
            "rarest_class_fraction": min(histogram), "class_histogram": histogram,
            "precision": precision, "recall": recall, "samples": len(images)}
