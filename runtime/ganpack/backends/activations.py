"""Activations in numpy, float32 in and out (the reference the other backends are held to)."""

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: exp is only ever taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32, copy=False)


def apply(x: np.ndarray, activation: str, alpha: float) -> np.ndarray:
    if activation == "identity":
        return x
    if activation == "leaky_relu":
        return np.where(x >= 0, x, np.float32(alpha) * x)  # = max(alpha x, x) for 0 <= alpha < 1
    if activation == "relu":
        return np.maximum(x, np.float32(0))
    if activation == "tanh":
        return np.tanh(x)
    if activation == "sigmoid":
        return sigmoid(x)
    raise ValueError(f"unknown activation {activation!r}")
