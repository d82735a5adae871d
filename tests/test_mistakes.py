"""A user's mistakes, through the commands as a user runs them (subprocesses): `ganpack ...`
and `python benchmarks/bench.py ...`. Each must end with status 2 and one line on stderr that
names the bad value, never a traceback, and write nothing to stdout.

(tests/test_cli.py checks the same code paths in process; this file checks what a person sees.)
"""

import os
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from ganpack.grid import encode_png
from ganpack.model import DEFAULT_MODEL
from mistakes import cases, check_one_line, run, run_selected, slow

ROOT = Path(__file__).resolve().parent.parent
GANPACK = [sys.executable, "-m", "ganpack.cli"]  # what the `ganpack` entry point runs
BENCH = [sys.executable, str(ROOT / "benchmarks" / "bench.py")]
REPORTS = ROOT / "benchmarks" / "results"


def color_png() -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 28, 28, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(28 * 85)))
            + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder of wrong things: bad images, bad packages, a file where a folder should be."""
    work = tmp_path_factory.mktemp("mistakes")
    np.save(work / "shape.npy", np.zeros((3, 5), np.uint8))
    np.save(work / "nan.npy", np.full((2, 28, 28), np.nan, np.float32))
    np.save(work / "range.npy", np.full((2, 784), 3.5, np.float32))
    np.save(work / "huge.npy", np.full((2, 784), 1e30, np.float32))
    np.save(work / "flags.npy", np.zeros((2, 28, 28), bool))
    np.save(work / "objects.npy", np.array([object()], dtype=object), allow_pickle=True)
    (work / "cut.npy").write_bytes((work / "shape.npy").read_bytes()[:-4])
    (work / "words.npy").write_text("not an array\n")
    (work / "words.png").write_text("not a picture\n")
    (work / "color.png").write_bytes(color_png())
    (work / "thirty.png").write_bytes(encode_png(np.zeros((30, 30), np.uint8)))
    (work / "digit.jpg").write_bytes(b"\xff\xd8\xff")
    (work / "a-file").write_text("")
    (work / "taken.npy").mkdir()
    (work / "empty-folder").mkdir()
    corrupt = work / "corrupt-model"
    shutil.copytree(DEFAULT_MODEL, corrupt)
    data = bytearray((corrupt / "generator.onnx").read_bytes())
    data[-100] ^= 0xFF
    (corrupt / "generator.onnx").write_bytes(bytes(data))
    with zipfile.ZipFile(work / "extra.zip", "w") as archive:
        for path in DEFAULT_MODEL.iterdir():
            archive.write(path, f"model/{path.name}")
        archive.writestr("model/notes.txt", "hello")
    with zipfile.ZipFile(work / "two-folders.zip", "w") as archive:
        for path in DEFAULT_MODEL.iterdir():
            archive.write(path, f"model/{path.name}")
        archive.writestr("backup/manifest.json", "{}")
    return work


# (arguments, a piece of the message that names the bad value)
GANPACK_MISTAKES = [
    (["sample", "-n", "abc"], "'abc'"),
    (["sample", "-n", "-1"], "'-1'"),
    (["sample", "-n", "0"], "-n: expected a positive integer, got '0'"),
    slow(["sample", "-n", "2.5"], "'2.5'"),
    (["sample", "--seed", "-1"], "--seed: expected an integer from 0 to 2**64 - 1, got '-1'"),
    slow(["sample", "--seed", "abc"], "'abc'"),
    (["sample", "--seed", str(2 ** 64)], f"'{2 ** 64}'"),
    (["sample", "-o", "no/such/folder/x.png"], "'no/such/folder'"),
    (["sample", "-o", "a-file/x.png"], "folder 'a-file' is not a folder"),
    (["sample", "-o", "taken.npy"], "output 'taken.npy' is a folder"),
    (["sample", "-o", "digits.jpg"], "'digits.jpg' must end in .png"),
    slow(["sample", "-o", "digits"], "'digits' must end in .png"),
    (["sample", "-n", str(10 ** 13), "-o", "big.npy"], "-n 10000000000000: 'big.npy' would take 7,840,000,000,000,128"),
    (["sample", "-n", "20000", "-o", "big.png"], "-n 20000: a PNG grid holds at most 10,000"),
    (["sample", "--backend", "cuda"], "--backend: invalid choice: 'cuda'"),
    (["sample", "--model", "no-such-model"], "--model 'no-such-model' does not exist"),
    (["sample", "--model", "empty-folder"], "is 'empty-folder' a model package?"),
    (["sample", "--model", "corrupt-model"], "corrupt-model/generator.onnx: SHA-256"),
    (["sample", "--model", "extra.zip"], "unexpected member 'model/notes.txt'"),
    slow(["sample", "--model", "two-folders.zip"], "unexpected member 'backup/manifest.json'"),
    slow(["sample", "--model", "words.png"], "'words.png' is a file but not a model package archive"),
    slow(["sample", "--bogus"], "unrecognized arguments: --bogus"),
    (["interpolate", "--steps", "0"], "--steps: expected an integer from 2 to 10,000, got '0'"),
    slow(["interpolate", "--steps", "abc"], "'abc'"),
    slow(["interpolate", "--steps", "100000"], "'100000'"),
    (["interpolate", "--seeds", "1"], "--seeds: expected 2 arguments"),
    slow(["interpolate", "--seeds", "1", "b"], "--seeds: expected an integer from 0 to 2**64 - 1, got 'b'"),
    (["interpolate", "-o", "nowhere/walk.png"], "'nowhere'"),
    (["score", "missing.npy"], "'missing.npy' does not exist"),
    (["score", "shape.npy"], "'shape.npy' holds an array of shape (3, 5)"),
    (["score", "nan.npy"], "'nan.npy': images holds a non-finite value (nan)"),
    (["score", "range.npy"], "'range.npy': float images must lie in [-1, 1], got values in [3.5, 3.5]"),
    slow(["score", "huge.npy"], "'huge.npy': float images must lie in [-1, 1]"),
    (["score", "flags.npy"], "'flags.npy' holds bool values"),
    slow(["score", "objects.npy"], "'objects.npy' is not a plain numpy array file"),
    slow(["score", "cut.npy"], "'cut.npy' is not a plain numpy array file"),
    (["score", "words.npy"], "'words.npy' is not a plain numpy array file"),
    (["score", "words.png"], "'words.png': not a PNG file"),
    (["score", "color.png"], "'color.png': RGB color PNG"),
    (["score", "thirty.png"], "'thirty.png' is 30x30 pixels"),
    slow(["score", "digit.jpg"], "'digit.jpg' must be .npy or .png"),
    slow(["score", "empty-folder"], "'empty-folder' is a folder"),
    (["score"], "the following arguments are required: images"),
    (["info", "--backend", "tpu"], "'tpu'"),
    slow(["info", "--model", "no-such-model"], "'no-such-model'"),
    slow(["info", "--jsn"], "unrecognized arguments: --jsn"),
    (["smaple"], "invalid choice: 'smaple'"),
    slow([], "the following arguments are required: command"),
]

BENCH_MISTAKES = [
    (["--batch-sizes", "0"], "got '0'"),
    slow(["--batch-sizes", "-1"], "got '-1'"),
    (["--batch-sizes", "abc"], "got 'abc'"),
    slow(["--batch-sizes", "1,99999999"], "got '99999999'"),
    (["--model", "/nonexistent"], "--model: no such file or folder: /nonexistent"),
    (["--model", "empty-folder"], "is 'empty-folder' a model package?"),
    (["--backends", "bogus"], "--backends: unknown 'bogus'"),
    slow(["--networks", "encoder"], "--networks: unknown 'encoder'"),
    (["--seconds", "abc"], "--seconds: invalid float value: 'abc'"),
    slow(["--seconds", "0"], "--seconds must be positive and finite, got 0.0"),
    slow(["--flops-per-cycle", "x"], "'x'"),
    (["--out", "a-file/report"], "--out: cannot create a-file/report"),
]


@pytest.fixture(scope="module")
def outcomes(request, work):
    return run_selected(request, {"test_ganpack_mistakes": lambda arguments: GANPACK + arguments,
                                  "test_bench_mistakes": lambda arguments: BENCH + arguments}, work)


@pytest.mark.parametrize("arguments, names", cases(GANPACK_MISTAKES))
def test_ganpack_mistakes(outcomes, arguments, names):
    check_one_line(outcomes[tuple(GANPACK + arguments)], names)


def test_an_unwritable_folder(work):
    if os.geteuid() != 0:
        folder = work / "read-only"
        folder.mkdir(exist_ok=True)
        folder.chmod(0o500)
        try:
            check_one_line(run(GANPACK + ["sample", "-o", "read-only/x.png"], work), "'read-only' is not writable")
        finally:
            folder.chmod(0o700)
    elif Path("/proc/self").is_dir():  # root may write into any folder, but not into /proc
        check_one_line(run(GANPACK + ["sample", "-o", "/proc/digits.png"], work), "cannot write '/proc/digits.png'")
    else:
        pytest.skip("root may write into any folder, and there is no /proc")


@pytest.fixture(scope="module")
def reports_before():
    return sorted(REPORTS.rglob("*"))  # taken before `outcomes` runs the cases


@pytest.mark.parametrize("arguments, names", cases(BENCH_MISTAKES))
def test_bench_mistakes(reports_before, outcomes, arguments, names):
    done = outcomes[tuple(BENCH + arguments)]
    check_one_line(done, names)
    assert done.stderr.startswith("bench.py: error: ")
    assert sorted(REPORTS.rglob("*")) == reports_before  # no mistake wrote a report or made a folder


def test_nothing_was_written(work):
    """No mistake above left an output file behind (a partial .npy, an empty grid)."""
    assert not list(work.glob("*.partial")) and not list(work.glob(".*.partial"))
    assert not {"big.npy", "big.png", "digits", "digits.jpg"} & {p.name for p in work.iterdir()}


def test_the_mistakes_cover_every_command():
    commands = {case.values[0][0] for case in cases(GANPACK_MISTAKES) if case.values[0]}
    assert commands == {"sample", "score", "info", "interpolate", "smaple"}
    assert len(GANPACK_MISTAKES) + len(BENCH_MISTAKES) >= 30
