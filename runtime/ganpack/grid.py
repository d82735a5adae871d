"""Image grids: many 28x28 digits tiled into one PNG a person can look at, and read back.

A grid records its own layout, so that `ganpack score` can split it into its digits again: the
count is not in the picture (a short last row and a black digit look alike). save_grid writes a
PNG tEXt chunk (PNG specification 11.3.4.3: a Latin-1 keyword, a NUL, Latin-1 text) before the
image data, keyword `ganpack-grid`, text such as

    version=1 n=10 columns=4 rows=3 cell=28x28 padding=2 scale=2

n images of cell (width x height) pixels, left to right then top to bottom in `columns` columns,
rows = ceil(n / columns), `padding` black pixels around each, then every pixel made a
scale x scale block: (rows * (28 + 2) + 2) * 2 pixels high. read_grid refuses a chunk that does
not describe its image exactly (a key unknown or missing, a size or count that does not fit,
pixels outside the cells or blocks that are not whole) rather than guess.
"""

import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganpack.contract import IMAGE_DIM, IMAGE_SIDE, to_uint8
from ganpack.errors import GanpackError, InputError
from ganpack.png import read_png_text

GRID_KEYWORD = "ganpack-grid"  # the PNG tEXt keyword of a grid's layout
GRID_VERSION = 1  # of the layout text; a reader refuses a version it does not know
PADDING = 2  # black pixels around each image, before scaling
MAX_TEXT_SHOWN = 100  # characters of a refused layout text that an error quotes


# ---------------------------------------------------------------------------------------------
# the layout, and its text

@dataclass(frozen=True)
class GridLayout:
    """Where a grid's images lie (the module's docstring draws it); `text` is what the chunk holds."""

    count: int  # images in the grid, n
    columns: int
    cell_width: int
    cell_height: int
    padding: int = PADDING
    scale: int = 1

    @property
    def rows(self) -> int:
        return math.ceil(self.count / self.columns)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the PNG in pixels."""
        return (self.scale * (self.rows * (self.cell_height + self.padding) + self.padding),
                self.scale * (self.columns * (self.cell_width + self.padding) + self.padding))

    def text(self) -> str:
        return (f"version={GRID_VERSION} n={self.count} columns={self.columns} rows={self.rows} "
                f"cell={self.cell_width}x{self.cell_height} padding={self.padding} scale={self.scale}")

    @classmethod
    def parse(cls, text: str) -> "GridLayout":
        """The layout a text describes; ValueError with the reason if it is not exactly one."""
        fields: dict[str, str] = {}
        for item in text.split(" "):
            key, equals, value = item.partition("=")
            if not equals or key in fields:
                raise ValueError(f"has {'a repeated' if equals else 'a malformed'} field {item[:20]!r}")
            fields[key] = value
        if fields.keys() != {"version", "n", "columns", "rows", "cell", "padding", "scale"}:
            raise ValueError("does not have exactly the fields version, n, columns, rows, cell, padding and scale")
        width, _, height = fields["cell"].partition("x")  # width x height
        version, count, columns, rows, cell_width, cell_height, padding, scale = (_natural(value) for value in (
            fields["version"], fields["n"], fields["columns"], fields["rows"], width, height, fields["padding"],
            fields["scale"]))
        if version != GRID_VERSION:
            raise ValueError(f"is version {fields['version']}; this ganpack reads version {GRID_VERSION}")
        if min(count, columns, cell_width, cell_height, scale) < 1:
            raise ValueError("has a zero n, columns, cell side or scale")
        layout = cls(count, columns, cell_width, cell_height, padding, scale)
        if rows != layout.rows:
            raise ValueError(f"says rows={rows}, but n={count} in {columns} columns takes {layout.rows}")
        return layout


def _natural(text: str) -> int:
    """A plain decimal integer >= 0, at most 9 digits (no sign, spaces or underscores, which int() takes)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise ValueError(f"has {text[:20]!r} where a whole number goes")
    return int(text)


# ---------------------------------------------------------------------------------------------
# writing

def _as_cells(images: np.ndarray) -> np.ndarray:
    """(N, 784) or (N, H, W) uint8 -> (N, H, W)."""
    if images.dtype != np.uint8:
        raise GanpackError(f"tile expects uint8 pixels, got dtype {images.dtype}; use to_uint8 first")
    if images.ndim == 2 and images.shape[1] == IMAGE_DIM:
        images = images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    if images.ndim != 3 or images.shape[0] == 0 or 0 in images.shape:
        raise GanpackError(f"tile expects a non-empty (N, 28, 28) or (N, 784) batch, got shape {images.shape}")
    return images


def tile(images: np.ndarray, columns: int = 0, padding: int = PADDING) -> np.ndarray:
    """(N, 784) or (N, 28, 28) uint8 -> one (H, W) uint8 mosaic, `columns` wide (0: square-ish)."""
    cells = _as_cells(np.asarray(images))
    if columns < 0 or padding < 0:
        raise GanpackError(f"tile expects columns >= 0 and padding >= 0, got {columns} and {padding}")
    count, height, width = cells.shape
    layout = GridLayout(count, columns or math.ceil(math.sqrt(count)), width, height, padding)
    mosaic = np.zeros(layout.size, np.uint8)
    for index, image in enumerate(cells):
        top = padding + (index // layout.columns) * (height + padding)
        left = padding + (index % layout.columns) * (width + padding)
        mosaic[top:top + height, left:left + width] = image
    return mosaic


def save_grid(images: np.ndarray, path: str | os.PathLike[str], columns: int = 0, scale: int = 2) -> Path:
    """Write a PNG grid, its layout in it; float images are taken to be in [-1, 1]. Returns the path written."""
    images = np.asarray(images)
    if scale < 1:
        raise GanpackError(f"save_grid expects scale >= 1, got {scale}")
    cells = _as_cells(images if images.dtype == np.uint8 else to_uint8(images))  # (N, H, W)
    mosaic = tile(cells, columns)
    count, height, width = cells.shape
    layout = GridLayout(count, columns or math.ceil(math.sqrt(count)), width, height, PADDING, scale)
    if scale > 1:  # nearest-neighbour: keeps the pixels crisp
        mosaic = np.repeat(np.repeat(mosaic, scale, axis=0), scale, axis=1)
    assert mosaic.shape == layout.size, (mosaic.shape, layout)
    path = Path(path)
    path.write_bytes(encode_png(mosaic, {GRID_KEYWORD: layout.text()}))
    return path


def encode_png(gray: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """An 8-bit grayscale (H, W) uint8 array as PNG bytes: the format's few fixed chunks, so
    writing pictures needs no imaging library; `text` (keyword -> value) as tEXt chunks."""
    height, width = gray.shape
    raw = np.zeros((height, width + 1), np.uint8)  # each row: filter type 0 (none), then pixels
    raw[:, 1:] = gray

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    texts = b""
    for keyword, value in (text or {}).items():
        latin = all(ord(character) < 256 for character in keyword + value)
        if not (0 < len(keyword) < 80 and keyword.isprintable() and "\0" not in value and latin):
            raise GanpackError(f"a PNG text keyword is 1 to 79 printable Latin-1 characters, its text Latin-1 "
                               f"without NUL: got {keyword!r}")
        texts += chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + value.encode("latin-1"))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8 bits, grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + texts + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
            + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------------------------
# reading

def read_grid(path: str | os.PathLike[str]) -> tuple[np.ndarray, GridLayout | None]:
    """A PNG's images, (n, cell_height, cell_width) uint8, and its layout; a PNG without a
    `ganpack-grid` chunk is one image, (1, H, W), and None. InputError names the file and the
    reason for a PNG that cannot be read or a layout that does not describe its pixels."""
    pixels, texts = read_png_text(path)
    return grid_images(pixels, texts, str(path))


def grid_images(pixels: np.ndarray, texts: list[tuple[str, str]], name: str = "PNG"
                ) -> tuple[np.ndarray, GridLayout | None]:
    """read_grid on a decoded PNG: its (H, W) pixels and tEXt (keyword, text) pairs."""
    layouts = [value for keyword, value in texts if keyword == GRID_KEYWORD]
    if not layouts:
        return pixels[None], None
    if len(layouts) > 1:
        raise InputError(f"'{name}': has {len(layouts)} {GRID_KEYWORD} chunks; a grid has one")
    shown = repr(layouts[0][:MAX_TEXT_SHOWN]) + ("..." if len(layouts[0]) > MAX_TEXT_SHOWN else "")
    try:
        layout = GridLayout.parse(layouts[0])
    except ValueError as error:
        raise InputError(f"'{name}': its {GRID_KEYWORD} chunk {error} ({shown})") from None
    return split_grid(pixels, layout, f"'{name}': its {GRID_KEYWORD} chunk {shown}"), layout


def split_grid(pixels: np.ndarray, layout: GridLayout, name: str = "the grid") -> np.ndarray:
    """(H, W) uint8 -> (n, cell_height, cell_width): the images, if the pixels are exactly what
    save_grid writes for them with this layout (whole scale x scale blocks, black around the cells
    and in the cells past the n-th). Vectorized: a hostile layout of millions of 1x1 cells is fast."""
    height, width = layout.size
    if pixels.shape != (height, width):
        raise InputError(f"{name} describes a {width}x{height} PNG, but it is {pixels.shape[1]}x{pixels.shape[0]}")
    scale, padding = layout.scale, layout.padding
    blocks = pixels.reshape(height // scale, scale, width // scale, scale)
    small = blocks[:, 0, :, 0]  # (rows * step_y + padding, columns * step_x + padding): the grid unscaled
    if not (blocks == small[:, None, :, None]).all():
        raise InputError(f"{name} does not describe its pixels: they are not {scale}x{scale} blocks")
    step_y, step_x = layout.cell_height + padding, layout.cell_width + padding
    view = small[padding:, padding:].reshape(layout.rows, step_y, layout.columns, step_x)  # a cell, then its padding
    cells = view[:, :layout.cell_height, :, :layout.cell_width].transpose(0, 2, 1, 3).reshape(
        layout.rows * layout.columns, layout.cell_height, layout.cell_width)  # row by row, as tile fills them
    outside = (small[:padding].any() or small[:, :padding].any() or view[:, layout.cell_height:].any()
               or view[:, :, :, layout.cell_width:].any() or cells[layout.count:].any())
    if outside:
        raise InputError(f"{name} does not describe its pixels: some lie outside its {layout.count} cells")
    return np.ascontiguousarray(cells[:layout.count])
