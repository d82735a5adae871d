"""How closely two float32 evaluations of one network must agree (docs/runtime.md, "Agreement").

Float32 rounding scales with the size of the terms summed, not with the result, and an error in
a hidden unit travels on through the next layer's weights. So each output is held to the size of
every product it depends on, S = |b_L| + |W_L| (... (|b_1| + |W_1| |x|)), the standard forward
error bound's factor. Every backend stays within 1e-7 S + 5e-7 of an exact (float64) evaluation
(measured up to 1.9e-8 S on the built-in models at batch 4,096), and any two evaluations, a
backend and PyTorch say, within AGREEMENT * S + FLOOR at every output.
"""

import numpy as np

from ganpack.dense_stack import DenseStack

AGREEMENT, FLOOR = 2e-7, 1e-6


def terms(stack: DenseStack, x: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """S per output (batch, widths[-1]), in float64."""
    rows = np.abs(np.asarray(x, np.float64).reshape(len(x), -1))
    if labels is not None:
        rows = np.concatenate([rows, np.eye(stack.classes)[np.asarray(labels)]], axis=1)
    for layer in stack.layers:
        rows = rows @ np.abs(np.asarray(layer.weight, np.float64)).T + np.abs(np.asarray(layer.bias, np.float64))
    return rows


def assert_agree(got, expected, stack: DenseStack, x: np.ndarray, labels: np.ndarray | None = None, what=None) -> None:
    """got and expected (any shape of batch x widths[-1]) within AGREEMENT * S + FLOOR at every output."""
    bound = AGREEMENT * terms(stack, x, labels) + FLOOR
    gap = np.abs(np.asarray(got, np.float64).reshape(bound.shape) - np.asarray(expected).reshape(bound.shape))
    assert (gap <= bound).all(), (what, float(gap.max()), float((gap / bound).max()))
