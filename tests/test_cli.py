"""The `ganpack` command: sample, score, info, interpolate, and its errors."""

import json

import numpy as np
import pytest

from ganpack.cli import main
from ganpack.errors import InputError


def read_png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_sample_png_and_npy(tmp_path):
    assert main(["sample", "-n", "64", "-o", str(tmp_path / "digits.png"), "--seed", "1"]) == 0
    assert read_png_size(tmp_path / "digits.png") == (2 * (8 * 30 + 2),) * 2  # 8x8 grid, scale 2
    assert main(["sample", "-n", "5", "-o", str(tmp_path / "d.npy"), "--seed", "1", "--backend", "numpy"]) == 0
    digits = np.load(tmp_path / "d.npy")
    assert digits.shape == (5, 28, 28) and digits.dtype == np.uint8


def test_score_prints_one_probability_per_image(tmp_path, capsys):
    main(["sample", "-n", "3", "-o", str(tmp_path / "d.npy"), "--seed", "2"])
    capsys.readouterr()
    assert main(["score", str(tmp_path / "d.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(0 < float(line.split("\t")[1]) < 1 for line in lines)


def test_info_describes_model_backends_and_cpu(capsys):
    assert main(["info"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["latent"]["dim"] == 100 and facts["generator"]["layers"] == [100, 128, 784]
    assert "numpy" in facts["backends_available"] and facts["backend_in_use"] in facts["backends_available"]
    assert "cpu_features" in facts


def test_interpolate_writes_a_strip(tmp_path):
    assert main(["interpolate", "-o", str(tmp_path / "walk.png"), "--seeds", "1", "2", "--steps", "8"]) == 0
    assert read_png_size(tmp_path / "walk.png") == (2 * (8 * 30 + 2), 2 * 32)


@pytest.mark.parametrize("argv, message", [
    (["sample", "-n", "0"], "at least 1"),
    (["sample", "-o", "x.jpg"], r"\.png"),
    (["interpolate", "--steps", "1"], "at least 2"),
    (["score", "nothing.npy"], "does not exist"),
    (["sample", "-o", "no/such/folder/x.png"], "folder 'no/such/folder' does not exist"),
    (["interpolate", "-o", "no/such/walk.png"], "folder 'no/such' does not exist"),
    (["sample", "-n", str(10 ** 12), "-o", "big.npy"], "do not fit in memory"),
])
def test_bad_arguments_are_clear_errors(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message):
        main(argv)


def test_score_never_unpickles(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="plain numpy array"):
        main(["score", str(tmp_path / "objects.npy")])


def test_png_input_without_pillow_is_a_clear_error(tmp_path, monkeypatch):
    """The runtime wheel does not depend on Pillow: reading a PNG without it says what to do."""
    (tmp_path / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)  # import PIL now raises ImportError
    with pytest.raises(InputError, match="needs Pillow"):
        main(["score", str(tmp_path / "digit.png")])


def test_an_unwritable_output_is_a_clear_error(tmp_path):
    (tmp_path / "taken.npy").mkdir()  # a folder where the file should go
    with pytest.raises(InputError, match="cannot write"):
        main(["sample", "-n", "2", "-o", str(tmp_path / "taken.npy")])
