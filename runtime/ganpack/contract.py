"""The model package contract, defined once: what export writes and every runtime reads.

training/, export/ and benchmarks/ import these names rather than repeating them; the
manifest's schema (its field names) is the dataclasses of ganpack.manifest, and the latent
stream, op for op, is ganpack.latents.
"""

import numpy as np
import numpy.typing as npt

# ---------------------------------------------------------------------------------------------
# files: a package is a folder (or a .zip of one) holding exactly these, under these names

MANIFEST_FILE = "manifest.json"
GENERATOR_FILE = "generator.onnx"
DISCRIMINATOR_FILE = "discriminator.onnx"
PREVIEW_FILE = "preview.png"
NETWORK_FILES = {"generator": GENERATOR_FILE, "discriminator": DISCRIMINATOR_FILE}  # manifest field -> file
PACKAGE_FILES = (MANIFEST_FILE, GENERATOR_FILE, DISCRIMINATOR_FILE, PREVIEW_FILE)

# ---------------------------------------------------------------------------------------------
# images: 28 x 28 grayscale, float32 in [-1, 1] (tanh's range) or uint8 pixels

IMAGE_SIDE = 28
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)
IMAGE_SLACK = 1e-6  # float images may stray this far outside [-1, 1]: a rounding's worth (C: GP_IMAGE_MAX)
IMAGE_DIM = IMAGE_SIDE * IMAGE_SIDE  # 784: the generator's output and the discriminator's input width
IMAGE_VALUE_RANGE = [-1.0, 1.0]  # as the manifest records it (a JSON list)
PIXEL_SCALE = 127.5  # pixel levels per unit of float: [-1, 1] spans [0, 255]
TO_UINT8 = "clip(round((x + 1) * 127.5), 0, 255)"  # to_uint8, as the manifest records it


def to_uint8(images: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Floats in [-1, 1] -> 8-bit pixels: clip(rint((x + 1) * 127.5), 0, 255), in float32.
    rint rounds halves to even; the C kernel's store computes the same."""
    scaled: npt.NDArray[np.float32] = np.rint((np.asarray(images, dtype=np.float32) + 1.0) * PIXEL_SCALE)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def from_uint8(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """8-bit pixels -> float32 in [-1, 1]: x / 127.5 - 1 with a true float32 divide (a multiply
    by float32(1 / 127.5) differs in the last bit for 111 of the 256 levels). The C kernel and
    training's torch version (training/mnist.py) compute the same bits."""
    images: npt.NDArray[np.float32] = pixels.astype(np.float32) / np.float32(PIXEL_SCALE) - np.float32(1.0)
    return images


# ---------------------------------------------------------------------------------------------
# latents: distribution name -> its parameters' names, and the parameters training draws with
# (and export records). How a seed becomes latents, and (scale, offset), is ganpack.latents.

NORMAL, UNIFORM = "normal", "uniform"
LATENT_DISTRIBUTIONS = {NORMAL: ("mean", "std"), UNIFORM: ("low", "high")}
LATENT_PARAMETERS = {NORMAL: {"mean": 0.0, "std": 1.0}, UNIFORM: {"low": -1.0, "high": 1.0}}


# ---------------------------------------------------------------------------------------------
# activations: the names a manifest and a DenseStack give each layer's nonlinearity

IDENTITY, LEAKY_RELU, RELU, TANH, SIGMOID = "identity", "leaky_relu", "relu", "tanh", "sigmoid"
ACTIVATIONS = (IDENTITY, LEAKY_RELU, RELU, TANH, SIGMOID)


# ---------------------------------------------------------------------------------------------
# classes: a conditional package's networks also read a label, one-hot, after their usual input
# (the manifest's `classes` field; format_version 3)

CLASS_INPUT = "label"  # the second graph input of both networks, (batch, classes) float32
ONE_HOT = "one_hot"  # classes.encoding: row i holds 1.0 in column labels[i], 0.0 elsewhere
MAX_CLASSES = 1 << 16


def one_hot(labels: npt.NDArray[np.integer], classes: int) -> npt.NDArray[np.float32]:
    """(n,) class indices in [0, classes) -> (n, classes) float32, 1.0 at each row's label: the
    label input of a conditional package's graphs."""
    rows = np.zeros((len(labels), classes), np.float32)
    rows[np.arange(len(labels)), labels] = 1.0
    return rows
