"""ganpack.grid: grids written with their layout (a ganpack-grid tEXt chunk) and read back into
their images; a layout that does not describe its pixels exactly is refused in one line."""

import random
import struct
import zlib

import numpy as np
import pytest

from ganpack.errors import GanpackError, InputError
from ganpack.grid import GRID_KEYWORD, GridLayout, encode_png, grid_images, read_grid, save_grid, split_grid, tile
from ganpack.png import decode_png_text


def digits(count, height=28, width=28, seed=0):
    """(count, height, width) uint8, no image all black (a black cell is what an empty one looks like)."""
    return np.random.default_rng(seed).integers(1, 256, (count, height, width), dtype=np.uint8)


def layout_text(path):
    (text,) = [value for keyword, value in decode_png_text(path.read_bytes())[1] if keyword == GRID_KEYWORD]
    return text


@pytest.mark.parametrize("count, columns, scale", [(1, 0, 2), (2, 0, 2), (7, 0, 2), (10, 0, 1), (64, 0, 2),
                                                   (100, 0, 3), (4, 10, 2), (8, 8, 2), (5, 1, 1)])
def test_a_grid_reads_back_as_its_images(tmp_path, count, columns, scale):
    images = digits(count)
    save_grid(images, tmp_path / "grid.png", columns=columns, scale=scale)
    read, layout = read_grid(tmp_path / "grid.png")
    assert np.array_equal(read, images) and read.flags.c_contiguous
    assert layout == GridLayout(count, columns or int(np.ceil(np.sqrt(count))), 28, 28, 2, scale)


def test_the_layout_is_written_as_documented(tmp_path):
    save_grid(digits(10), tmp_path / "grid.png")
    assert layout_text(tmp_path / "grid.png") == "version=1 n=10 columns=4 rows=3 cell=28x28 padding=2 scale=2"
    save_grid(digits(3, 5, 7).reshape(3, 5, 7), tmp_path / "small.png", columns=2, scale=1)  # any cell size
    assert layout_text(tmp_path / "small.png") == "version=1 n=3 columns=2 rows=2 cell=7x5 padding=2 scale=1"
    read, _ = read_grid(tmp_path / "small.png")
    assert np.array_equal(read, digits(3, 5, 7))


def test_flat_and_float_images_are_written_as_their_pixels(tmp_path):
    images = digits(5)
    save_grid(images.reshape(5, 784), tmp_path / "flat.png")
    save_grid(images.astype(np.float32) / np.float32(127.5) - 1, tmp_path / "float.png")
    for name in ("flat.png", "float.png"):
        assert np.array_equal(read_grid(tmp_path / name)[0], images)


def test_a_png_without_the_chunk_is_one_image(tmp_path):
    pixels = tile(digits(4))
    (tmp_path / "plain.png").write_bytes(encode_png(pixels))
    read, layout = read_grid(tmp_path / "plain.png")
    assert layout is None and np.array_equal(read, pixels[None])


def test_bad_arguments_to_the_writer_are_errors(tmp_path):
    with pytest.raises(GanpackError, match="scale >= 1, got 0"):
        save_grid(digits(2), tmp_path / "x.png", scale=0)
    with pytest.raises(GanpackError, match="columns >= 0 and padding >= 0, got -1"):
        tile(digits(2), columns=-1)
    with pytest.raises(GanpackError, match="keyword is 1 to 79 printable"):
        encode_png(np.zeros((2, 2), np.uint8), {"": "x"})
    assert list(tmp_path.iterdir()) == []


def test_layout_text_round_trips():
    for layout in (GridLayout(1, 1, 28, 28), GridLayout(10_000, 100, 28, 28, 2, 2), GridLayout(3, 7, 5, 9, 0, 4)):
        assert GridLayout.parse(layout.text()) == layout


def grid_png(layout_value, images=None, columns=0, scale=2, edit=None) -> bytes:
    """A grid's PNG bytes as save_grid writes them, with the layout text replaced (None: no chunk)."""
    images = digits(7) if images is None else images
    mosaic = tile(images, columns)
    mosaic = np.repeat(np.repeat(mosaic, scale, axis=0), scale, axis=1)
    if edit:
        edit(mosaic)
    return encode_png(mosaic, None if layout_value is None else {GRID_KEYWORD: layout_value})


GOOD = "version=1 n=7 columns=3 rows=3 cell=28x28 padding=2 scale=2"


def nudge(mosaic):
    mosaic[10, 11] ^= 1  # one pixel of a 2x2 block


def paint_a_padding_pixel(mosaic):
    mosaic[:2, :2] = 9  # the top left pixel before scaling: padding


LIES = {  # layout text (or an edit of the pixels) -> the reason given
    "n larger than its cells": (GOOD.replace("n=7", "n=10"), "says rows=3, but n=10 in 3 columns takes 4"),
    "n smaller than its digits": (GOOD.replace("n=7", "n=6").replace("rows=3", "rows=2"), "describes a 184x124 PNG"),
    "a wrong scale": (GOOD.replace("scale=2", "scale=1"), "describes a 92x92 PNG, but it is 184x184"),
    "a wrong cell size": (GOOD.replace("cell=28x28", "cell=28x27"), "describes a 184x178 PNG"),
    "a newer version": (GOOD.replace("version=1", "version=2"), "is version 2; this ganpack reads version 1"),
    "an unknown field": (GOOD + " gamma=2", "does not have exactly the fields"),
    "a missing field": (GOOD.replace(" padding=2", ""), "does not have exactly the fields"),
    "a repeated field": (GOOD + " n=7", "has a repeated field 'n=7'"),
    "a field with no value": (GOOD.replace("n=7", "n7"), "has a malformed field 'n7'"),
    "a negative number": (GOOD.replace("n=7", "n=-7"), "has '-7' where a whole number goes"),
    "a number that is not an integer": (GOOD.replace("n=7", "n=7.0"), "has '7.0' where a whole number goes"),
    "a digit that is not ASCII": (GOOD.replace("n=7", "n=\u00b2"), "has '\u00b2' where"),  # str.isdigit() takes it
    "a huge number": (GOOD.replace("n=7", "n=" + "9" * 4000), "has '99999999999999999999' where"),
    "zero cells": (GOOD.replace("n=7", "n=0").replace("rows=3", "rows=0"), "has a zero n, columns"),
    "zero scale": (GOOD.replace("scale=2", "scale=0"), "has a zero n, columns, cell side or scale"),
    "a half cell size": (GOOD.replace("cell=28x28", "cell=28x"), "has '' where a whole number goes"),
    "an empty text": ("", "has a malformed field ''"),
    "two spaces": (GOOD.replace(" ", "  "), "has a malformed field ''"),
}


@pytest.mark.parametrize("case", list(LIES))
def test_a_lying_layout_is_refused_in_one_line(case):
    text, reason = LIES[case]
    with pytest.raises(InputError) as error:
        grid_images(*decode_png_text(grid_png(text), "lie.png"), "lie.png")
    message = str(error.value)
    assert message.startswith(f"'lie.png': its {GRID_KEYWORD} chunk ") and reason in message, message
    assert "\n" not in message and len(message) < 400  # a huge text is quoted in part


@pytest.mark.parametrize("text, images, edit, reason", [
    (GOOD.replace("n=7", "n=8"), digits(9), None, "some lie outside its 8 cells"),  # the 9th digit
    (GOOD, digits(7), nudge, "they are not 2x2 blocks"),
    (GOOD, digits(7), paint_a_padding_pixel, "some lie outside its 7 cells"),
])
def test_pixels_the_layout_does_not_place_are_refused(text, images, edit, reason):
    """The sizes fit, but the picture is not what save_grid writes for this layout: refused, not guessed."""
    with pytest.raises(InputError, match=f"^'lie.png': its {GRID_KEYWORD} chunk '.*' does not describe its "
                                         f"pixels: {reason}$"):
        grid_images(*decode_png_text(grid_png(text, images, edit=edit), "lie.png"), "lie.png")


def test_two_layouts_are_refused():
    data = grid_png(GOOD)
    position = data.index(b"IDAT") - 4
    text = b"tEXt" + GRID_KEYWORD.encode() + b"\0" + GOOD.encode()
    extra = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text))
    with pytest.raises(InputError, match=f"^'two.png': has 2 {GRID_KEYWORD} chunks; a grid has one$"):
        grid_images(*decode_png_text(data[:position] + extra + data[position:], "two.png"), "two.png")


def test_a_layout_of_millions_of_tiny_cells_is_split_without_a_loop():
    layout = GridLayout.parse("version=1 n=4194304 columns=2048 rows=2048 cell=1x1 padding=0 scale=1")
    cells = split_grid(np.zeros((2048, 2048), np.uint8), layout)
    assert cells.shape == (4_194_304, 1, 1)


def test_random_layout_texts_never_escape_as_another_error():
    """Mutations of a good layout text (a chunk written by anyone, with a good CRC): an InputError or
    images that are exactly a split of the pixels, never another exception."""
    pixels, _ = decode_png_text(grid_png(GOOD))
    rng = random.Random(0)
    alphabet = "0123456789=x -nrowscelpadingvr"
    outcomes = set()
    for _ in range(2000):
        text = list(GOOD)
        for _ in range(rng.randint(1, 3)):
            where = rng.randrange(len(text) + 1)
            kind = rng.randrange(3)
            if kind == 0:
                text.insert(where, rng.choice(alphabet))
            elif text:
                text[min(where, len(text) - 1):min(where, len(text) - 1) + kind - 1] = rng.choice(alphabet) * (kind - 1)
        try:
            images, layout = grid_images(pixels, [(GRID_KEYWORD, "".join(text))], "fuzz.png")
        except InputError as error:
            outcomes.add(str(error).split(" chunk ")[1][:8])
            continue
        assert layout is not None and images.shape == (layout.count, layout.cell_height, layout.cell_width)
        outcomes.add("read")
    assert "read" in outcomes and len(outcomes) > 4, outcomes  # the mutations reached several checks
