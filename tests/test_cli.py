"""The `ganpack` command, in process: sample, score, info, interpolate, and its errors.
(tests/test_mistakes.py drives the mistakes through the installed command, as subprocesses.)"""

import io
import json
import os
import platform
import re
import shutil
import stat
import zlib

import numpy as np
import pytest

import ganpack
import ganpack.cli as cli
import ganpack.model as model_module
from ganpack.backends.chunked import CHUNK_ROWS
from ganpack.cli import main
from ganpack.errors import InputError, run_command
from ganpack.grid import GRID_KEYWORD, encode_png, tile
from ganpack.model import DEFAULT_MODEL

BACKENDS = ganpack.available_backends()


def read_png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_sample_png_and_npy(tmp_path):
    assert main(["sample", "-n", "64", "-o", str(tmp_path / "digits.png"), "--seed", "1"]) == 0
    assert read_png_size(tmp_path / "digits.png") == (2 * (8 * 30 + 2),) * 2  # 8x8 grid, scale 2
    assert main(["sample", "-n", "5", "-o", str(tmp_path / "d.npy"), "--seed", "1", "--backend", "numpy"]) == 0
    assert (tmp_path / "d.npy").read_bytes() == npy_bytes(ganpack.load(backend="numpy").sample(5, seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npy", "digits.png"]  # no partial file left


@pytest.mark.parametrize("backend", BACKENDS)
def test_streamed_npy_equals_sample_in_memory(tmp_path, monkeypatch, backend):
    """A .npy is written a chunk at a time (any -n fits in memory); the file is np.save's, bit for bit."""
    monkeypatch.setattr(model_module, "STREAM_ROWS", CHUNK_ROWS)  # three chunks, the last one short
    n = 2 * CHUNK_ROWS + 5
    assert main(["sample", "-n", str(n), "-o", str(tmp_path / "d.npy"), "--seed", "7", "--backend", backend]) == 0
    expected = ganpack.load(backend=backend).sample(n, seed=7)
    assert (tmp_path / "d.npy").read_bytes() == npy_bytes(expected)


def test_streamed_npy_of_a_format_1_package(tmp_path, monkeypatch):
    """0.1.0 packages draw latents with numpy's PCG64, one generator in order: streamed, the same too."""
    package = tmp_path / "v1"
    shutil.copytree(DEFAULT_MODEL, package)
    manifest = json.loads((package / "manifest.json").read_text())
    del manifest["latent"]["generator"]
    (package / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    monkeypatch.setattr(model_module, "STREAM_ROWS", CHUNK_ROWS)
    n = CHUNK_ROWS + 3
    assert main(["sample", "-n", str(n), "-o", str(tmp_path / "d.npy"), "--seed", "3", "--model", str(package),
                 "--backend", "numpy"]) == 0
    expected = ganpack.load(package, backend="numpy").sample(n, seed=3)
    assert np.array_equal(np.load(tmp_path / "d.npy"), expected)


def test_huge_n_is_refused_up_front(tmp_path):
    with pytest.raises(InputError, match=r"'.*big.npy' would take 7,840,000,000,000,128 bytes .* free"):
        main(["sample", "-n", str(10 ** 13), "-o", str(tmp_path / "big.npy")])
    with pytest.raises(InputError, match="a PNG grid holds at most 10,000 digits"):
        main(["sample", "-n", "10001", "-o", str(tmp_path / "big.png")])
    assert list(tmp_path.iterdir()) == []


def test_score_prints_one_probability_per_image(tmp_path, capsys, monkeypatch):
    main(["sample", "-n", "5", "-o", str(tmp_path / "d.npy"), "--seed", "2"])
    capsys.readouterr()
    monkeypatch.setattr(cli, "STREAM_ROWS", 2)  # read from the memory-mapped file two rows at a time
    assert main(["score", str(tmp_path / "d.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = ganpack.load().score(np.load(tmp_path / "d.npy"))
    assert lines == [f"{tmp_path / 'd.npy'}[{i}]\t{p:.6f}" for i, p in enumerate(expected)]


def test_score_reads_a_png_without_pillow(tmp_path, capsys, monkeypatch):
    """The runtime wheel does not depend on Pillow: ganpack.png reads 8-bit grayscale PNGs itself."""
    digit = ganpack.load().sample(1, seed=4)
    (tmp_path / "digit.png").write_bytes(encode_png(digit[0]))
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)  # import PIL now raises ImportError
    assert main(["score", str(tmp_path / "digit.png")]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line == f"{tmp_path / 'digit.png'}[0]\t{ganpack.load().score(digit)[0]:.6f}"


def scores(capsys, argv):
    """`ganpack score ...`'s lines as (name[index], probability)."""
    capsys.readouterr()
    assert main(["score", *argv]) == 0
    return [(name, float(p)) for name, p in (line.split("\t") for line in capsys.readouterr().out.splitlines())]


@pytest.mark.parametrize("n, digit", [(1, None), (2, None), (7, None), (10, None), (64, None), (100, None),
                                      (1, 3), (7, 3), (10, 0)])
def test_score_reads_back_every_grid_sample_writes(tmp_path, capsys, n, digit):
    """The grid's digits, in sample order, score as the same digits saved as .npy."""
    options = [] if digit is None else ["--digit", str(digit)]
    for out in ("x.png", "x.npy"):
        assert main(["sample", "-n", str(n), "-o", str(tmp_path / out), "--seed", "5", *options]) == 0
    from_png, from_npy = scores(capsys, [str(tmp_path / "x.png"), *options]), scores(capsys, [str(tmp_path / "x.npy"),
                                                                                              *options])
    assert [name for name, _ in from_png] == [f"{tmp_path / 'x.png'}[{i}]" for i in range(n)]
    assert np.allclose([p for _, p in from_png], [p for _, p in from_npy], rtol=0, atol=1e-6)


def test_score_reads_back_an_interpolation_strip(tmp_path, capsys):
    for out in ("walk.png", "walk.npy"):
        assert main(["interpolate", "-o", str(tmp_path / out), "--seeds", "3", "4", "--steps", "5"]) == 0
    from_png, from_npy = scores(capsys, [str(tmp_path / "walk.png")]), scores(capsys, [str(tmp_path / "walk.npy")])
    assert len(from_png) == 5 and np.allclose([p for _, p in from_png], [p for _, p in from_npy], rtol=0, atol=1e-6)


def score_error(capsys, path) -> str:
    """What a person sees for `ganpack score path`: status 2 and one line on stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_command(main, ["score", str(path)])
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert exit_.value.code == 2 and captured.out == "" and "Traceback" not in captured.err
    return line


def test_a_grid_without_its_layout_is_refused_in_one_line(tmp_path, capsys):
    """Its size does not say how many digits it holds (a short last row and a black digit look alike)."""
    (tmp_path / "old.png").write_bytes(encode_png(np.repeat(np.repeat(tile(ganpack.load().sample(7, seed=1)), 2, 0),
                                                            2, 1)))
    assert score_error(capsys, tmp_path / "old.png") == (
        f"error: '{tmp_path / 'old.png'}' is 184x184 pixels with no {GRID_KEYWORD} chunk (the layout ganpack sample "
        "writes into its grids); score reads a 28x28 digit or a grid ganpack wrote")


@pytest.mark.parametrize("old, new, reason", [
    ("n=7", "n=10", "says rows=3, but n=10 in 3 columns takes 4"),
    ("scale=2", "scale=3", "describes a 276x276 PNG, but it is 184x184"),
    ("n=7 ", "n=7x ", "has '7x' where a whole number goes"),
])
def test_a_lying_grid_layout_is_refused_in_one_line(tmp_path, capsys, old, new, reason):
    assert main(["sample", "-n", "7", "-o", str(tmp_path / "x.png"), "--seed", "1"]) == 0
    data = (tmp_path / "x.png").read_bytes()
    start = data.index(b"tEXt") - 4
    length = int.from_bytes(data[start:start + 4], "big")
    text = data[start + 4:start + 8 + length].replace(old.encode(), new.encode())  # type, keyword, NUL, value
    forged = len(text[4:]).to_bytes(4, "big") + text + zlib.crc32(text).to_bytes(4, "big")  # a good CRC
    (tmp_path / "x.png").write_bytes(data[:start] + forged + data[start + 12 + length:])
    line = score_error(capsys, tmp_path / "x.png")
    assert line.startswith(f"error: '{tmp_path / 'x.png'}': its {GRID_KEYWORD} chunk ") and reason in line, line


def test_a_grid_of_other_images_is_refused(tmp_path, capsys):
    ganpack.save_grid(np.full((3, 10, 10), 200, np.uint8), tmp_path / "small.png")
    assert score_error(capsys, tmp_path / "small.png") == (f"error: '{tmp_path / 'small.png'}' is a grid of 10x10 "
                                                          "images; score reads 28x28 digits")


def test_info_is_readable_and_shows_the_quality_figures(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    quality = ganpack.load().manifest.quality
    real = quality["reference_real"]
    for key in ("frechet_distance", "classifier_score", "precision", "recall"):  # model, then real images
        assert re.search(rf"\n  {key} +{quality[key]:.4g} +{real[key]:.4g}\n", text), key
    assert "real images" in text and "parity:" in text and "100 -> 128 -> 784" in text
    assert not text.lstrip().startswith("{")


def test_info_json_describes_model_quality_backends_and_cpu(capsys):
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    manifest = ganpack.load().manifest
    assert facts["ganpack"] == ganpack.__version__
    assert facts["latent"]["dim"] == 100 and facts["generator"]["layers"] == [100, 128, 784]
    assert facts["quality"] == manifest.quality and facts["quality"]["frechet_distance"] > 0
    assert facts["parity"]["max_abs_diff"] == manifest.parity["max_abs_diff"]
    assert facts["trained"]["steps"] == manifest.provenance["steps"]
    assert facts["backends_available"] == BACKENDS and facts["backend_in_use"] == BACKENDS[0]
    if "c" in BACKENDS:
        from ganpack.backends.c_backend import kernel_isa

        assert facts["cpu_features"] == {"machine": platform.machine(), "c_kernel_isa": kernel_isa()}
        assert kernel_isa() in ("avx512", "avx2_fma", "portable")
    else:
        assert facts["cpu_features"] == {"machine": platform.machine(), "c_kernel": "not available"}


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"ganpack {ganpack.__version__}\n"


def test_interpolate_writes_a_strip_or_an_array(tmp_path):
    assert main(["interpolate", "-o", str(tmp_path / "walk.png"), "--seeds", "1", "2", "--steps", "8"]) == 0
    assert read_png_size(tmp_path / "walk.png") == (2 * (8 * 30 + 2), 2 * 32)
    assert main(["interpolate", "-o", str(tmp_path / "walk.npy"), "--seeds", "1", "2", "--steps", "8"]) == 0
    walk = np.load(tmp_path / "walk.npy")
    model = ganpack.load()
    assert walk.shape == (8, 28, 28)
    assert np.array_equal(walk[[0, -1]], model.generate(np.concatenate([model.latents(1, seed=s) for s in (1, 2)])))


@pytest.mark.parametrize("argv, message", [
    (["sample", "-o", "x.jpg"], r"\.png"),
    (["score", "nothing.npy"], "does not exist"),
    (["sample", "-o", "no/such/folder/x.png"], "folder 'no/such/folder' does not exist"),
    (["interpolate", "-o", "no/such/walk.png"], "folder 'no/such' does not exist"),
    (["sample", "-o", "."], "must end in .png"),
    (["sample", "--model", "no/model"], "--model 'no/model' does not exist"),
])
def test_bad_arguments_are_clear_errors(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message):
        main(argv)


@pytest.mark.parametrize("argv, message", [
    (["sample", "-n", "0"], "argument -n: expected a positive integer, got '0'"),
    (["sample", "--seed", str(2 ** 64)], f"argument --seed: expected .*, got '{2 ** 64}'"),
    (["interpolate", "--steps", "1"], "argument --steps: expected an integer from 2 to 10,000, got '1'"),
    (["sample", "--backend", "cuda"], "argument --backend: invalid choice: 'cuda'"),
])
def test_malformed_options_are_one_line_argparse_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    (line,) = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and line.startswith("ganpack ") and re.search(message, line)


def test_score_never_unpickles(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="plain numpy array"):
        main(["score", str(tmp_path / "objects.npy")])


def test_an_output_that_is_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "taken.npy").mkdir()  # a folder where the file should go
    with pytest.raises(InputError, match="is a folder"):
        main(["sample", "-n", "2", "-o", str(tmp_path / "taken.npy")])


@pytest.mark.parametrize("command", [["sample", "-n", "2"], ["interpolate"]])
def test_an_output_that_is_a_link_or_a_fifo_is_left_alone(tmp_path, command):
    """os.replace would put a regular file where the link (or FIFO) was: refused, before any work."""
    (tmp_path / "mine.png").write_bytes(b"mine")
    (tmp_path / "link.png").symlink_to(tmp_path / "mine.png")
    os.mkfifo(tmp_path / "fifo.npy")
    for name, message in (("link.png", "is a symbolic link"), ("fifo.npy", "is not a regular file")):
        with pytest.raises(InputError, match=message):
            main([*command, "-o", str(tmp_path / name)])
    assert (tmp_path / "link.png").is_symlink() and (tmp_path / "mine.png").read_bytes() == b"mine"
    assert stat.S_ISFIFO((tmp_path / "fifo.npy").lstat().st_mode)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fifo.npy", "link.png", "mine.png"]


def test_counts_in_messages_agree_with_their_nouns(tmp_path, capsys):
    assert main(["sample", "-n", "1", "-o", str(tmp_path / "one.npy"), "--seed", "1"]) == 0
    assert capsys.readouterr().err.startswith(f"wrote 1 image to {tmp_path / 'one.npy'} ")
    assert main(["score", str(tmp_path / "one.npy")]) == 0
    assert capsys.readouterr().err.startswith("scored 1 image ")
    assert main(["sample", "-n", "2", "-o", str(tmp_path / "two.npy"), "--seed", "1"]) == 0
    assert capsys.readouterr().err.startswith("wrote 2 images to ")
