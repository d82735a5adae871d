"""The runtime wheel, as a user gets it: built with `python -m build`, installed into a fresh
virtual environment with no torch and no Pillow, running every `ganpack` subcommand the README
shows, sampling with every backend (slow: about a minute)."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from packages import make_package

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(*command, cwd=None, both=False):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=900, cwd=cwd, env=env)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr if both else result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    log = run(sys.executable, "-m", "build", "--outdir", out, ROOT, both=True)  # the wheel is built from the sdist
    assert "Deprecat" not in log, log  # setuptools warns in blocks about outdated project configuration
    return out


def test_wheel_contents(dist):
    (wheel,) = dist.glob("ganpack-*.whl")
    assert "-cp310-abi3-" in wheel.name and "linux" in wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    (kernel,) = [n for n in names if n.startswith("ganpack/_kernel") and n.endswith(".so")]
    assert b".debug_info" not in zipfile.ZipFile(wheel).read(kernel)  # no debug sections: 0.34 MB, not 3.5
    for model in ("default", "conditional"):  # the two built-in models
        assert f"ganpack/models/{model}/generator.onnx" in names and f"ganpack/models/{model}/manifest.json" in names
    assert "ganpack/png.py" in names  # score reads PNGs without Pillow
    for asset in ("index.html", "style.css", "ganpack.js", "page.js"):  # what `ganpack web` copies
        assert f"ganpack/web_page/{asset}" in names
    assert not any(n.startswith(("training/", "export/", "tests/")) for n in names)
    requires = [line for line in zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("METADATA"))).decode().splitlines() if line.startswith("Requires-Dist")]
    always = [line for line in requires if "extra ==" not in line]  # what a plain install pulls in
    assert sorted(line.split()[1].split(">")[0] for line in always) == ["cffi", "numpy", "onnx"]
    assert any("onnxruntime" in line and 'extra == "onnxruntime"' in line for line in requires)
    (sdist,) = dist.glob("ganpack-*.tar.gz")
    assert sdist.stat().st_size > 0


def test_installed_wheel_samples_without_torch(dist, tmp_path):
    (wheel,) = dist.glob("ganpack-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python, ganpack = venv / "bin" / "python", venv / "bin" / "ganpack"
    run(python, "-m", "pip", "install", "-q", wheel)
    work = tmp_path / "work"  # outside the checkout, so the installed copy is what runs
    work.mkdir()
    probe = ("import importlib.util as u, ganpack; "
             "print(u.find_spec('torch') is None, u.find_spec('PIL') is None, ganpack.available_backends())")
    assert run(python, "-c", probe, cwd=work).split(maxsplit=2) == ["True", "True", "['c', 'numpy']\n"]
    readme_commands(python, ganpack, work)
    package, _, _ = make_package(tmp_path / "exported")
    for backend in ("c", "numpy"):
        run(ganpack, "sample", "-n", "16", "-o", work / f"bundled-{backend}.png", "--backend", backend, cwd=work)
        run(ganpack, "sample", "-n", "16", "-o", work / f"exported-{backend}.npy", "--model", package,
            "--backend", backend, "--seed", "1", cwd=work)
    run(ganpack, "sample", "--digit", "7", "-n", "4", "-o", work / "sevens.npy", "--seed", "1", cwd=work)
    sevens = "import numpy as np; assert np.load('sevens.npy').shape == (4, 28, 28)"
    run(python, "-c", sevens, cwd=work)  # the conditional model inside the installed wheel
    run(ganpack, "web", "default", "page", cwd=work)  # the browser page, its assets from the wheel
    page = sorted((path.name, path.stat().st_size) for path in (work / "page").iterdir())
    assert [name for name, _ in page] == ["ganpack.js", "index.html", "model.js", "page.js", "style.css"]
    assert sum(size for _, size in page) < 1 << 20
    run(python, "-m", "pip", "install", "-q", f"{wheel}[onnxruntime]")  # the optional backend
    run(ganpack, "sample", "-n", "16", "-o", work / "bundled-ort.png", "--backend", "onnxruntime", cwd=work)
    run(ganpack, "sample", "-n", "16", "-o", work / "exported-ort.npy", "--model", package,
        "--backend", "onnxruntime", "--seed", "1", cwd=work)
    compare = ("import numpy as np, sys; a, b, c = (np.load(f'exported-{n}.npy').astype(int) for n in "
               "('c', 'numpy', 'ort')); sys.exit(int(max(abs(a - b).max(), abs(b - c).max()) > 1))")
    run(python, "-c", compare, cwd=work)  # the same seed gives the same pixels, give or take rounding
    facts = json.loads(run(ganpack, "info", "--json", cwd=work))
    assert facts["cpu_features"]["c_kernel_isa"] in ("avx512", "avx2_fma", "portable")
    assert set(facts["backends_available"]) == {"c", "onnxruntime", "numpy"}


def readme_commands(python, ganpack, work):
    """Every subcommand README.md and docs/runtime.md show, in the runtime-only install."""
    version = run(python, "-c", "import ganpack; print(ganpack.__version__)", cwd=work).strip()
    assert run(ganpack, "--version", cwd=work) == f"ganpack {version}\n"
    run(ganpack, "sample", "-n", "64", "-o", "digits.png", "--seed", "1", cwd=work)
    assert (work / "digits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run(ganpack, "sample", "-n", "8", "-o", "digits.npy", "--seed", "1", cwd=work)
    assert len(run(ganpack, "score", "digits.npy", cwd=work).splitlines()) == 8
    one = ("import ganpack, numpy as np; from ganpack.grid import encode_png; "
           "open('one.png', 'wb').write(encode_png(np.load('digits.npy')[0]))")
    run(python, "-c", one, cwd=work)  # a 28x28 grayscale PNG, read back without Pillow
    (line,) = run(ganpack, "score", "one.png", cwd=work).splitlines()
    assert line.startswith("one.png[0]\t") and 0 < float(line.split("\t")[1]) < 1
    assert "frechet_distance" in run(ganpack, "info", cwd=work)
    facts = json.loads(run(ganpack, "info", "--json", cwd=work))
    assert facts["ganpack"] == version and facts["quality"]["frechet_distance"] > 0
    run(ganpack, "interpolate", "-o", "walk.png", "--seeds", "1", "2", "--steps", "10", cwd=work)
    assert (work / "walk.png").stat().st_size > 0
    scores = run(ganpack, "score", "digits.png", cwd=work).splitlines()  # the grid sample wrote, digit by digit
    assert len(scores) == 64 and scores[63].startswith("digits.png[63]\t")
