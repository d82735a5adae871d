"""Model's two operations, run_into and sample_into, for the backends that run float32 batches
(numpy, onnxruntime): CHUNK_ROWS rows at a time, so their intermediates stay bounded, with the
pixel mappings and the value checks that the C kernel does inside its one call done here."""

import numpy as np

from ganpack.backends import CHECK_MESSAGES, activations, draw_then_run
from ganpack.contract import IMAGE_SLACK, from_uint8, to_uint8
from ganpack.dense_stack import DenseStack
from ganpack.errors import InputError
from ganpack.labels import Labels
from ganpack.latents import Stream

CHUNK_ROWS = 4096  # rows per run() call

IMAGE_LIMIT = 1.0 + IMAGE_SLACK


class Chunked:
    """A base for backends that define run(x, labels) -> {"activated" and/or "logits"}."""

    stack: DenseStack
    out_width: int
    stream: Stream | None  # the generator's latent stream; None for a discriminator

    def run(self, x: np.ndarray, labels: Labels | None = None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def run_into(self, x: np.ndarray, labels: Labels | None, out: np.ndarray, check: str | None = None) -> np.ndarray:
        """See Backend.run_into. When the backend gives the logits, the last activation is numpy's
        (ganpack.backends.activations), so that every chunked backend's probabilities agree."""
        if check is not None and x.dtype != np.uint8 and x.size:
            low, high = float(x.min()), float(x.max())  # NaN propagates to both
            if not (np.isfinite(low) and np.isfinite(high)) or (check == "image" and
                                                                not -IMAGE_LIMIT <= low <= high <= IMAGE_LIMIT):
                raise InputError(CHECK_MESSAGES[check])
        last = self.stack.layers[-1]
        rows = out.reshape(len(x), self.out_width)  # a view: out is C-contiguous
        for start in range(0, len(x), CHUNK_ROWS):
            chunk = slice(start, start + CHUNK_ROWS)
            part = from_uint8(x[chunk]) if x.dtype == np.uint8 else x[chunk]
            result = self.run(part, None if labels is None else labels[chunk])
            values = (activations.apply(result["logits"], last.activation, last.alpha) if "logits" in result
                      else result["activated"])
            rows[chunk] = to_uint8(values) if rows.dtype == np.uint8 else values
        return out

    def sample_into(self, seed: int | None, first_row: int, labels: Labels | None, out: np.ndarray) -> np.ndarray:
        """See Backend.sample_into: the stream's rows, then run_into."""
        return draw_then_run(self, seed, first_row, labels, out)
