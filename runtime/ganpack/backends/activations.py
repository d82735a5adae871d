"""Activations in numpy, float32 in and out (the reference the other backends are held to)."""

import numpy as np
import numpy.typing as npt

from ganpack.contract import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH

Floats = npt.NDArray[np.float32]


def sigmoid(x: Floats) -> Floats:
    """1 / (1 + exp(-x)) without overflow: exp is only ever taken of -|x|."""
    e = np.exp(-np.abs(x))
    y: Floats = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32, copy=False)
    return y


def apply(x: Floats, activation: str, alpha: float) -> Floats:
    y: Floats  # numpy's stubs type most ufunc results as Any
    if activation == IDENTITY:
        y = x
    elif activation == LEAKY_RELU:
        y = np.where(x >= 0, x, np.float32(alpha) * x)  # = max(alpha x, x) for 0 <= alpha < 1
    elif activation == RELU:
        y = np.maximum(x, np.float32(0))
    elif activation == TANH:
        y = np.tanh(x)
    elif activation == SIGMOID:
        y = sigmoid(x)
    else:
        raise ValueError(f"unknown activation {activation!r}")
    return y
