"""Export-time parity: onnxruntime must reproduce the PyTorch networks on fixed-seed inputs."""

import math

import numpy as np
import onnxruntime
import torch

from export.errors import ExportError
from export.onnx_graphs import DISCRIMINATOR_INPUT, GENERATOR_INPUT, LABEL_INPUT, one_hot_rows

BATCH_SIZES = (1, 7, 1000)
INPUTS = 1000
TOLERANCE = 1e-5  # maximum absolute difference, generator image and discriminator probability
PARITY_SEED = 1234


def _session(graph: bytes) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])


def _run_in_batches(session, feeds: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
    """All outputs of `session` over the rows of `feeds` (input name -> array), `batch` rows at a
    time, concatenated."""
    rows = len(next(iter(feeds.values())))
    parts = [session.run(None, {name: array[i:i + batch] for name, array in feeds.items()})
             for i in range(0, rows, batch)]
    return [np.concatenate(column) for column in zip(*parts, strict=True)]


def check_parity(generator, discriminator, generator_graph: bytes, discriminator_graph: bytes,
                 latent: torch.Tensor, classes: int = 0) -> dict:
    """Max |onnxruntime - torch| per output and batch size; raises ExportError over TOLERANCE.

    `latent` is (INPUTS, latent_dim). The discriminator is checked on the generated images and
    on as many uniform-noise images, so both ends of its range are exercised. A conditional
    model (classes > 0) is checked with every class in turn as the label, one-hot.
    """
    labels = one_hot_rows(latent.shape[0], classes) if classes else None  # (INPUTS, classes)
    with torch.no_grad():
        images, _ = generator(latent, labels)
        noise = torch.rand(latent.shape[0], images.shape[1], generator=torch.Generator().manual_seed(PARITY_SEED))
        d_inputs = torch.cat([images, noise * 2 - 1])
        d_labels = None if labels is None else torch.cat([labels, labels])
        d_probability, d_logit = discriminator(d_inputs, d_labels)
    g_feeds, d_feeds = {GENERATOR_INPUT: latent.numpy()}, {DISCRIMINATOR_INPUT: d_inputs.numpy()}
    if labels is not None and d_labels is not None:
        g_feeds[LABEL_INPUT], d_feeds[LABEL_INPUT] = labels.numpy(), d_labels.numpy()
    g_session, d_session = _session(generator_graph), _session(discriminator_graph)
    worst = {"generator_image": 0.0, "discriminator_probability": 0.0, "discriminator_logit": 0.0}
    by_batch = {}
    for batch in BATCH_SIZES:
        (g_image,) = _run_in_batches(g_session, g_feeds, batch)
        probability, logit = _run_in_batches(d_session, d_feeds, batch)
        diffs = {"generator_image": float(np.abs(g_image - images.numpy()).max()),
                 "discriminator_probability": float(np.abs(probability - d_probability.numpy()).max()),
                 "discriminator_logit": float(np.abs(logit - d_logit.numpy()).max())}
        by_batch[str(batch)] = diffs
        worst = {key: diffs[key] if math.isnan(diffs[key]) else max(worst[key], diffs[key]) for key in worst}
    for key in ("generator_image", "discriminator_probability"):
        if not worst[key] <= TOLERANCE:  # NaN too: non-finite weights make NaN outputs
            raise ExportError(f"onnxruntime differs from PyTorch by {worst[key]:.3g} on {key} "
                              f"(tolerance {TOLERANCE}); the package was not written")
    return {"reference": "PyTorch (CPU, float32)", "runtime": f"onnxruntime {onnxruntime.__version__}",
            "inputs": int(latent.shape[0]), "batch_sizes": list(BATCH_SIZES), "tolerance": TOLERANCE,
            "max_abs_diff": worst, "max_abs_diff_by_batch_size": by_batch}
