"""The runtime wheel, as a user gets it: built with `python -m build`, installed into a fresh
virtual environment with no torch, sampling with every backend (slow: about a minute)."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from packages import make_package

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(*command, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=900, cwd=cwd, env=env)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)  # the wheel is built from the sdist
    return out


def test_wheel_contents(dist):
    (wheel,) = dist.glob("ganpack-*.whl")
    assert "-cp310-abi3-" in wheel.name and "linux" in wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("ganpack/_kernel") and n.endswith(".so") for n in names)
    assert "ganpack/models/default/generator.onnx" in names and "ganpack/models/default/manifest.json" in names
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
    probe = "import importlib.util as u, ganpack; print(u.find_spec('torch') is None, ganpack.available_backends())"
    assert run(python, "-c", probe, cwd=work).split(maxsplit=1) == ["True", "['c', 'numpy']\n"]
    package, _, _ = make_package(tmp_path / "exported")
    for backend in ("c", "numpy"):
        run(ganpack, "sample", "-n", "16", "-o", work / f"bundled-{backend}.png", "--backend", backend, cwd=work)
        run(ganpack, "sample", "-n", "16", "-o", work / f"exported-{backend}.npy", "--model", package,
            "--backend", backend, "--seed", "1", cwd=work)
    run(python, "-m", "pip", "install", "-q", f"{wheel}[onnxruntime]")  # the optional backend
    run(ganpack, "sample", "-n", "16", "-o", work / "bundled-ort.png", "--backend", "onnxruntime", cwd=work)
    run(ganpack, "sample", "-n", "16", "-o", work / "exported-ort.npy", "--model", package,
        "--backend", "onnxruntime", "--seed", "1", cwd=work)
    compare = ("import numpy as np, sys; a, b, c = (np.load(f'exported-{n}.npy').astype(int) for n in "
               "('c', 'numpy', 'ort')); sys.exit(int(max(abs(a - b).max(), abs(b - c).max()) > 1))")
    run(python, "-c", compare, cwd=work)  # the same seed gives the same pixels, give or take rounding
    info = run(ganpack, "info", cwd=work)
    assert '"c_kernel_isa"' in info
