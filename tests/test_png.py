"""ganpack.png, the PNG reader of the runtime (no Pillow): 8-bit grayscale read exactly as Pillow
reads it, everything else refused with one line naming the file and the reason."""

import io
import random
import struct
import zlib

import numpy as np
import pytest

from ganpack.errors import InputError
from ganpack.grid import encode_png
from ganpack.png import decode_png, decode_png_text, read_png, read_png_text

Image = pytest.importorskip("PIL.Image")  # the reference decoder, in the dev environment only


def pillow_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def pillow_png(pixels: np.ndarray, mode: str = "L", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def images():
    rng = np.random.default_rng(0)
    gradient = np.add.outer(np.arange(40), np.arange(33)).astype(np.uint8) * 3  # smooth: Pillow picks filters
    return {"noise": rng.integers(0, 256, (28, 28), dtype=np.uint8), "gradient": gradient,
            "one pixel": np.array([[7]], np.uint8), "wide": rng.integers(0, 256, (3, 301), dtype=np.uint8),
            "black": np.zeros((28, 28), np.uint8), "white": np.full((28, 28), 255, np.uint8)}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height, raw: bytes, depth=8, color=0, interlace=0, extra=b"") -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def filtered(pixels: np.ndarray, kinds) -> bytes:
    """Rows filtered with the given PNG filter types (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    out, above = bytearray(), [0] * pixels.shape[1]
    for row, kind in zip(pixels.tolist(), kinds):
        out.append(kind)
        for x, value in enumerate(row):
            left = row[x - 1] if x else 0
            upper_left = above[x - 1] if x else 0
            estimate = left + above[x] - upper_left
            paeth = min((abs(estimate - left), 0, left), (abs(estimate - above[x]), 1, above[x]),
                        (abs(estimate - upper_left), 2, upper_left))[2]
            predictor = [0, left, above[x], (left + above[x]) // 2, paeth][kind]
            out.append((value - predictor) & 0xFF)
        above = row
    return bytes(out)


@pytest.mark.parametrize("name", list(images()))
def test_reads_what_ganpack_writes(name):
    pixels = images()[name]
    data = encode_png(pixels)
    assert np.array_equal(decode_png(data), pixels) and np.array_equal(pillow_pixels(data), pixels)


@pytest.mark.parametrize("options", [{}, {"optimize": True}, {"compress_level": 0}, {"compress_level": 9}])
@pytest.mark.parametrize("name", list(images()))
def test_reads_what_pillow_writes_as_pillow_does(name, options):
    data = pillow_png(images()[name], **options)
    assert np.array_equal(decode_png(data), pillow_pixels(data))


@pytest.mark.parametrize("kinds", [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4]])
def test_every_row_filter(kinds):
    pixels = np.random.default_rng(len(kinds) * 10 + kinds[0]).integers(0, 256, (30, 29), dtype=np.uint8)
    pixels[10:20] = np.arange(29, dtype=np.uint8) * 9  # equal rows and ramps too
    data = png(29, 30, filtered(pixels, (kinds * 30)[:30]))
    assert np.array_equal(pillow_pixels(data), pixels)  # the test's encoder is right
    assert np.array_equal(decode_png(data), pixels)


def test_ancillary_chunks_are_skipped():
    pixels = images()["noise"]
    text = chunk(b"tEXt", b"Comment\x00made by a test") + chunk(b"gAMA", struct.pack(">I", 45455))
    assert np.array_equal(decode_png(png(28, 28, filtered(pixels, [0] * 28), extra=text)), pixels)


def test_text_chunks_are_read_as_pillow_reads_them():
    pixels = images()["noise"]
    data = encode_png(pixels, {"ganpack-grid": "version=1 n=1", "Comment": "caf\u00e9 = 28x28"})
    read, texts = decode_png_text(data)
    assert np.array_equal(read, pixels)
    assert texts == [("ganpack-grid", "version=1 n=1"), ("Comment", "caf\u00e9 = 28x28")]  # file order, Latin-1
    assert dict(texts) == Image.open(io.BytesIO(data)).text


def test_text_pillow_writes_is_read():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Title", "a digit")
    info.add_text("ganpack-grid", "version=1 n=1 columns=1 rows=1 cell=28x28 padding=0 scale=1")
    _, texts = decode_png_text(pillow_png(images()["noise"], pnginfo=info))
    assert dict(texts) == {"Title": "a digit",
                           "ganpack-grid": "version=1 n=1 columns=1 rows=1 cell=28x28 padding=0 scale=1"}


def test_odd_text_chunks_are_read_not_refused():
    """tEXt is ancillary: one without its NUL is all keyword (as Pillow reads it), after the image
    data is still text, and zTXt/iTXt are skipped."""
    pixels = images()["noise"]
    before = chunk(b"tEXt", b"no separator") + chunk(b"zTXt", b"k\0\0" + zlib.compress(b"v"))
    data = png(28, 28, filtered(pixels, [0] * 28), extra=before)
    after = chunk(b"tEXt", b"late\0\xff")
    data = data[:-12] + after + data[-12:]  # between IDAT and IEND
    read, texts = decode_png_text(data)
    assert np.array_equal(read, pixels) and texts == [("no separator", ""), ("late", "\u00ff")]


def test_read_png_names_the_file(tmp_path):
    (tmp_path / "digit.png").write_bytes(encode_png(images()["noise"]))
    assert np.array_equal(read_png(tmp_path / "digit.png"), images()["noise"])
    assert read_png_text(tmp_path / "digit.png")[1] == []
    with pytest.raises(InputError, match=r"^'.*missing.png': cannot be read"):
        read_png(tmp_path / "missing.png")


@pytest.mark.parametrize("mode, reason", [
    ("RGB", "RGB color PNG"), ("RGBA", "RGBA color PNG"), ("LA", "grayscale with alpha PNG"),
    ("P", "palette color PNG"), ("1", "1-bit grayscale PNG"), ("I;16", "16-bit grayscale PNG"),
])
def test_other_kinds_pillow_writes_are_refused_by_name(mode, reason):
    with pytest.raises(InputError, match=f"^'x.png': {reason}; ganpack reads 8-bit grayscale only$"):
        decode_png(pillow_png(images()["gradient"], mode), "x.png")


def test_broken_files_are_refused_with_the_reason():
    good = encode_png(images()["noise"])
    idat = good.index(b"IDAT")
    cases = {
        b"just some text\n": "not a PNG file",
        b"": "not a PNG file",
        good[:8]: "truncated PNG",
        good[:40]: "truncated PNG",
        good[:-12]: "truncated PNG",  # no IEND
        good[:idat + 10] + bytes([good[idat + 10] ^ 1]) + good[idat + 11:]: "bad CRC in its IDAT chunk",
        png(28, 28, bytes(29 * 28), interlace=1): "interlaced PNG",
        png(28, 28, bytes(29 * 27)): "inflates to fewer bytes",
        png(28, 28, bytes(29 * 29)): "inflates to more bytes",
        png(28, 28, bytes([7] + [0] * 28) * 28): "row filter type 7",
        png(100_000, 100_000, b""): "too large",
        png(0, 28, b""): "empty",
        png(28, 28, bytes(29 * 28), extra=chunk(b"PLTE", bytes(3))): "chunk 'PLTE' is not supported",
        b"\x89PNG\r\n\x1a\n" + chunk(b"IDAT", b"") + chunk(b"IEND", b""): "first chunk is not IHDR",
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bytes(12)): "IHDR is not 13 bytes",
        good[:idat + 4] + b"not zlib" + good[idat + 12:]: "bad CRC",
        png(28, 28, bytes(29 * 28), extra=chunk(b"tEXt", b"k\0v")[:-1] + b"\0"): "bad CRC in its tEXt chunk",
    }
    for data, reason in cases.items():
        with pytest.raises(InputError, match=f"^'bad.png': .*{reason}") as error:
            decode_png(data, "bad.png")
        assert "\n" not in str(error.value)


def test_not_zlib_data_is_refused():
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
    data += chunk(b"IDAT", b"definitely not zlib") + chunk(b"IEND", b"")
    with pytest.raises(InputError, match="does not inflate"):
        decode_png(data, "bad.png")


def test_random_damage_never_escapes_as_another_error():
    good = pillow_png(images()["gradient"], optimize=True)
    rng = random.Random(0)
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)):]
        try:
            pixels = decode_png(bytes(data), "fuzz.png")
        except InputError:
            continue
        assert pixels.dtype == np.uint8 and pixels.ndim == 2
