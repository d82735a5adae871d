"""Read 8-bit grayscale PNGs: the grids ganpack writes (grid.save_grid) and the 28x28 digits
users score, with nothing but zlib, struct and numpy.

Why a reader and not Pillow: the runtime wheel is numpy, cffi and onnx; an imaging library
(and an optional `ganpack[images]` extra that a user finds out about from an error) for one
image kind is more weight than the ~100 lines below. Everything the reader does not take is
refused with a one-line InputError naming the file and the reason: color, palette or alpha
images, bit depths other than 8, interlacing, a bad signature, a bad CRC, a truncated file.
Text (tEXt) chunks are returned as (keyword, text) pairs, in file order: a grid's layout is one
(ganpack.grid). Every other ancillary chunk (zTXt, iTXt, gAMA, ...) is skipped.

The format (PNG specification, ISO/IEC 15948): an 8-byte signature, then chunks of
(length, type, data, CRC-32 of type + data). IHDR first; the IDAT chunks' data, joined, is one
zlib stream of rows, each a filter-type byte and `width` bytes; IEND last.
"""

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganpack.errors import InputError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 1 << 26  # far above any grid ganpack writes; bounds the inflated size of a hostile file
Refuse = Callable[[str], InputError]  # reason -> the error naming the file
COLOR_TYPES = {0: "grayscale", 2: "RGB color", 3: "palette color", 4: "grayscale with alpha", 6: "RGBA color"}


def read_png(path: str | os.PathLike[str]) -> np.ndarray:
    """The (height, width) uint8 pixels of an 8-bit grayscale, non-interlaced PNG file."""
    return read_png_text(path)[0]


def read_png_text(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """read_png's pixels, and the file's tEXt chunks as (keyword, text) pairs."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"'{path}': cannot be read: {error.strerror or error}") from None
    return decode_png_text(data, str(path))


def decode_png(data: bytes, name: str = "PNG") -> np.ndarray:
    return decode_png_text(data, name)[0]


def decode_png_text(data: bytes, name: str = "PNG") -> tuple[np.ndarray, list[tuple[str, str]]]:
    def refuse(reason: str) -> InputError:
        return InputError(f"'{name}': {reason}")

    if not data.startswith(SIGNATURE):
        raise refuse("not a PNG file (no PNG signature)")
    header: tuple[int, int] | None = None
    compressed, texts = [], []
    position = len(SIGNATURE)
    while True:
        if position + 8 > len(data):
            raise refuse("truncated PNG (it ends before its IEND chunk)")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        crc = data[position + 8 + length:position + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise refuse(f"truncated PNG (in its {kind!r} chunk)")
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise refuse(f"corrupt PNG (bad CRC in its {kind.decode('latin-1')} chunk)")
        position += 12 + length
        if header is None and kind != b"IHDR":
            raise refuse("corrupt PNG (its first chunk is not IHDR)")
        if kind == b"IHDR":
            header = _check_header(body, refuse)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
        elif kind == b"tEXt":  # Latin-1 keyword, NUL, Latin-1 text; without a NUL, all keyword (as Pillow reads it)
            keyword, _, text = body.partition(b"\0")
            texts.append((keyword.decode("latin-1"), text.decode("latin-1")))
        elif not kind[0] & 0x20:  # an uppercase first letter: a critical chunk we cannot skip
            raise refuse(f"PNG chunk {kind.decode('latin-1')!r} is not supported (8-bit grayscale only)")
    assert header is not None  # the loop leaves at IEND, and IHDR came first
    width, height = header
    return _unfilter(_inflate(b"".join(compressed), height * (width + 1), refuse), height, width, refuse), texts


def _check_header(body: bytes, refuse: Refuse) -> tuple[int, int]:
    if len(body) != 13:
        raise refuse("corrupt PNG (IHDR is not 13 bytes)")
    width, height, depth, color, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if color != 0:
        raise refuse(f"{COLOR_TYPES.get(color, f'color type {color}')} PNG; ganpack reads 8-bit grayscale only")
    if depth != 8:
        raise refuse(f"{depth}-bit grayscale PNG; ganpack reads 8-bit grayscale only")
    if interlace != 0:
        raise refuse("interlaced PNG; ganpack reads non-interlaced PNGs only")
    if compression != 0 or filtering != 0:
        raise refuse("corrupt PNG (unknown compression or filter method)")
    if not 0 < width * height <= MAX_PIXELS:
        raise refuse(f"a {width}x{height} PNG is empty or too large to read")
    return width, height


def _inflate(stream: bytes, size: int, refuse: Refuse) -> np.ndarray:
    """Exactly `size` bytes out of the zlib stream, never more (a small file can inflate to gigabytes)."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(stream, size + 1)
    except zlib.error as error:
        raise refuse(f"corrupt PNG (its image data does not inflate: {error})") from None
    if len(raw) != size:
        raise refuse(f"corrupt PNG (image data inflates to {'more' if len(raw) > size else 'fewer'} bytes "
                     f"than its size says)")
    return np.frombuffer(raw, np.uint8)


def _unfilter(raw: np.ndarray, height: int, width: int, refuse: Refuse) -> np.ndarray:
    """Undo the per-row filters (None, Sub, Up, Average, Paeth) of 1-byte pixels -> (height, width)."""
    rows = raw.reshape(height, width + 1)
    filters, rows = rows[:, 0], rows[:, 1:]
    if filters.max() > 4:
        raise refuse(f"corrupt PNG (row filter type {int(filters.max())} does not exist)")
    pixels = np.zeros((height, width), np.uint8)
    previous = np.zeros(width, np.uint8)  # the row above the first is taken to be zeros
    for y in range(height):
        row, kind = rows[y], filters[y]
        if kind == 0:  # None
            out = row.copy()
        elif kind == 1:  # Sub: each byte adds the one to its left, a running sum mod 256
            out = np.cumsum(row, dtype=np.uint8)
        elif kind == 2:  # Up
            out = row + previous
        else:  # Average and Paeth depend on the pixel just decoded to the left: one pixel at a time
            out = _unfilter_row(row.tolist(), previous.tolist(), kind)
        pixels[y] = out
        previous = pixels[y]
    return pixels


def _unfilter_row(row: list[int], above: list[int], kind: int) -> np.ndarray:
    out, left, upper_left = [], 0, 0
    for value, up in zip(row, above, strict=True):  # both `width` bytes
        if kind == 3:  # Average of left and up
            left = (value + (left + up) // 2) & 0xFF
        else:  # Paeth: whichever of left, up, upper-left is closest to left + up - upper-left
            estimate = left + up - upper_left
            distances = abs(estimate - left), abs(estimate - up), abs(estimate - upper_left)
            predictor = left if distances[0] <= distances[1] and distances[0] <= distances[2] else (
                up if distances[1] <= distances[2] else upper_left)
            left = (value + predictor) & 0xFF
        upper_left = up
        out.append(left)
    return np.array(out, np.uint8)
