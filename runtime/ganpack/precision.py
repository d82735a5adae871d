"""Weight precision: float32 (the default) or bfloat16.

    model = ganpack.load(precision="bf16")

bf16 keeps 8 of float32's 24 significant bits and its whole range: a preview of what bf16
weights do to the digits. Only the weights are rounded (to nearest, ties to even); inputs, products, sums,
biases and activations stay float32. A bf16 model therefore computes exactly what a float32 model
with the rounded weights computes: that is the numpy backend's bf16 reference (round_bf16, then
the float32 reference), and the C kernel runs the same rounded values as float32, at its speed.

What it costs and gains is measured in docs/precision.md: on the default model the largest
difference from float32 is about 0.07 on the [-1, 1] scale and a few percent of uint8 pixels move
by one level, with the same Frechet distance.
"""

from dataclasses import replace

import numpy as np

from ganpack.dense_stack import DenseStack
from ganpack.errors import InputError

FP32, BF16 = "fp32", "bf16"
PRECISIONS = (FP32, BF16)
BACKENDS = {FP32: ("c", "onnxruntime", "numpy"), BF16: ("c", "numpy")}  # which backends run each


def checked_precision(precision: object) -> str:
    """`precision` if it is one of PRECISIONS, else InputError naming it."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InputError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


def round_bf16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), returned as float32: the
    kernel's gp_bf16_round, in numpy. A NaN stays NaN; a value beyond bf16's range (about
    3.39e38) becomes an infinity."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    rounded = np.where(nan, (bits & np.uint32(0xFFFF0000)) | np.uint32(0x00400000), rounded)
    result: np.ndarray = rounded.astype(np.uint32).view(np.float32).reshape(np.shape(values))
    return result


def at_precision(stack: DenseStack, precision: str, name: str = "graph") -> DenseStack:
    """`stack` with its weights as `precision` computes with them: unchanged for fp32, rounded to
    bf16 (kept as float32 arrays) for bf16. A finite weight too large for bf16 is refused with an
    InputError naming where it is, rather than turned into an infinity."""
    if precision == FP32:
        return stack
    layers = []
    for index, layer in enumerate(stack.layers):
        weight = round_bf16(layer.weight)
        if not np.isfinite(weight).all():
            found = np.argwhere(~np.isfinite(weight))[0]
            raise InputError(f"precision 'bf16': {name} layer {index} weight {layer.weight[tuple(found)]:.6g} at "
                             f"{tuple(int(i) for i in found)} is beyond bfloat16's range (about 3.39e38)")
        layers.append(replace(layer, weight=weight))
    return replace(stack, layers=layers)
