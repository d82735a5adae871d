"""Image grids: many 28x28 digits tiled into one PNG a person can look at."""

import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ganpack.contract import IMAGE_DIM, IMAGE_SIDE, to_uint8
from ganpack.errors import GanpackError


def tile(images: np.ndarray, columns: int = 0, padding: int = 2) -> np.ndarray:
    """(N, 784) or (N, 28, 28) uint8 -> one (H, W) uint8 mosaic, `columns` wide (0: square-ish)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise GanpackError(f"tile expects uint8 pixels, got dtype {images.dtype}; use to_uint8 first")
    if images.ndim == 2 and images.shape[1] == IMAGE_DIM:
        images = images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
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


def save_grid(images: np.ndarray, path: str | os.PathLike[str], columns: int = 0, scale: int = 2) -> Path:
    """Write a PNG grid; float images are taken to be in [-1, 1]. Returns the path written."""
    images = np.asarray(images)
    pixels = images if images.dtype == np.uint8 else to_uint8(images)
    mosaic = tile(pixels, columns)
    if scale > 1:  # nearest-neighbour: keeps the pixels crisp
        mosaic = np.repeat(np.repeat(mosaic, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.write_bytes(encode_png(mosaic))
    return path


def encode_png(gray: np.ndarray) -> bytes:
    """An 8-bit grayscale (H, W) uint8 array as PNG bytes: the format's few fixed chunks, so
    writing pictures needs no imaging library."""
    height, width = gray.shape
    raw = np.zeros((height, width + 1), np.uint8)  # each row: filter type 0 (none), then pixels
    raw[:, 1:] = gray

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8 bits, grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
            + chunk(b"IEND", b""))
