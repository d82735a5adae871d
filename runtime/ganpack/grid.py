"""Image grids: many 28x28 digits tiled into one PNG a person can look at."""

import math
from pathlib import Path

import numpy as np

from ganpack.errors import GanpackError


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Map floats in [-1, 1] to 8-bit pixels: round((x + 1) * 127.5), clipped to [0, 255]."""
    return np.clip(np.rint((np.asarray(images, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def tile(images: np.ndarray, columns: int = 0, padding: int = 2) -> np.ndarray:
    """(N, 784) or (N, 28, 28) uint8 -> one (H, W) uint8 mosaic, `columns` wide (0: square-ish)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise GanpackError(f"tile expects uint8 pixels, got dtype {images.dtype}; use to_uint8 first")
    if images.ndim == 2 and images.shape[1] == 784:
        images = images.reshape(-1, 28, 28)
    if images.ndim != 3 or images.shape[0] == 0:
        raise GanpackError(f"tile expects a non-empty (N, 28, 28) or (N, 784) batch, got shape {images.shape}")
    count, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    mosaic = np.zeros((rows * (height + padding) + padding, columns * (width + padding) + padding), np.uint8)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        mosaic[top:top + height, left:left + width] = image
    return mosaic


def save_grid(images: np.ndarray, path, columns: int = 0, scale: int = 2) -> Path:
    """Write a PNG grid; float images are taken to be in [-1, 1]. Returns the path written."""
    from PIL import Image  # only needed when writing pictures

    images = np.asarray(images)
    pixels = images if images.dtype == np.uint8 else to_uint8(images)
    picture = Image.fromarray(tile(pixels, columns))
    if scale > 1:  # nearest keeps the pixels crisp
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    path = Path(path)
    picture.save(path)
    return path
