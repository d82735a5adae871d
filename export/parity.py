"""Export-time parity: onnxruntime must reproduce the PyTorch networks on fixed-seed inputs."""

import math

import numpy as np
import onnxruntime
import torch

from export.errors import ExportError
from export.onnx_graphs import DISCRIMINATOR_INPUT, GENERATOR_INPUT

BATCH_SIZES = (1, 7, 1000)
INPUTS = 1000
TOLERANCE = 1e-5  # maximum absolute difference, generator image and discriminator probability
PARITY_SEED = 1234


def _session(graph: bytes) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])


def _run_in_batches(session, name: str, inputs: np.ndarray, batch: int) -> list[np.ndarray]:
    """All outputs of `session` over `inputs`, fed `batch` rows at a time, concatenated."""
    parts = [session.run(None, {name: inputs[i:i + batch]}) for i in range(0, len(inputs), batch)]
    return [np.concatenate(column) for column in zip(*parts, strict=True)]


def check_parity(generator, discriminator, generator_graph: bytes, discriminator_graph: bytes,
                 latent: torch.Tensor) -> dict:
    """Max |onnxruntime - torch| per output and batch size; raises ExportError over TOLERANCE.

    `latent` is (INPUTS, latent_dim). The discriminator is checked on the generated images and
    on as many uniform-noise images, so both ends of its range are exercised.
    """
    with torch.no_grad():
        images, _ = generator(latent)
        noise = torch.rand(latent.shape[0], images.shape[1], generator=torch.Generator().manual_seed(PARITY_SEED))
        d_inputs = torch.cat([images, noise * 2 - 1])
        d_probability, d_logit = discriminator(d_inputs)
    g_session, d_session = _session(generator_graph), _session(discriminator_graph)
    worst = {"generator_image": 0.0, "discriminator_probability": 0.0, "discriminator_logit": 0.0}
    by_batch = {}
    for batch in BATCH_SIZES:
        (g_image,) = _run_in_batches(g_session, GENERATOR_INPUT, latent.numpy(), batch)
        probability, logit = _run_in_batches(d_session, DISCRIMINATOR_INPUT, d_inputs.numpy(), batch)
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
