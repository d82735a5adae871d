"""The project's structure: imports point one way (runtime <- training <- export), each package
defines the errors it raises, and the version is written in one place."""

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import ganpack
from export.errors import ExportError
from training.errors import ConfigError, DataError, TrainingError

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "runtime" / "ganpack"


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, imported at the top of the file) for every absolute import in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.col_offset == 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.module, node.col_offset == 0))
    return found


def imports_of(folder: Path, package: str) -> list[tuple[str, str, bool]]:
    """(file relative to the root, module, at top) for imports of `package` under `folder`."""
    return [(path.relative_to(ROOT).as_posix(), module, top) for path in sorted(folder.rglob("*.py"))
            for module, top in imports(path) if module.split(".")[0] == package]


@pytest.mark.parametrize("package", ["training", "export", "benchmarks", "torch"])
def test_the_runtime_imports_nothing_of_training_or_export(package):
    assert imports_of(RUNTIME, package) == []


def test_export_uses_only_training_s_library_modules():
    """Export rebuilds the networks from a checkpoint; it never reaches into training's commands."""
    used = {module for _, module, _ in imports_of(ROOT / "export", "training")}
    assert used <= {"training", "training.checkpoint", "training.config", "training.model"}


def test_training_imports_export_only_for_the_main_job_s_last_step():
    """The one arrow back: `python -m training.run` writes the package when training ends. It is
    imported inside main, so no training module needs export (or onnx) to import."""
    assert imports_of(ROOT / "training", "export") == [("training/run.py", "export.package", False)]


def test_ganpack_exports_only_the_errors_the_runtime_raises():
    source = "\n".join(path.read_text() for path in RUNTIME.rglob("*.py"))
    exported = [getattr(ganpack, name) for name in ganpack.__all__]
    errors = [value for value in exported if isinstance(value, type) and issubclass(value, Exception)]
    assert {error.__name__ for error in errors} == {"BackendError", "GanpackError", "InputError", "PackageError"}
    for error in errors:
        assert error.__module__.startswith("ganpack.")
        assert f"raise {error.__name__}(" in source
    for name in ("ConfigError", "DataError", "TrainingError", "ExportError"):
        assert f"class {name}(" not in source and not hasattr(ganpack, name)


@pytest.mark.parametrize("error", [ConfigError, DataError, TrainingError, ExportError])
def test_training_and_export_errors_are_ganpack_errors(error):
    """So run_command, which every command's entry point uses, reports them in one line."""
    assert issubclass(error, ganpack.GanpackError)


def test_the_installed_version_is_ganpack_s():
    try:
        installed = importlib.metadata.version("ganpack")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("ganpack is not installed (only on the path)")
    assert installed == ganpack.__version__


def test_pyproject_reads_the_version_without_importing_ganpack():
    """Building the sdist or wheel must not need numpy: setuptools reads __version__ from the
    source text. numpy is made unimportable to prove it."""
    pytest.importorskip("setuptools")
    script = ("import sys; sys.modules['numpy'] = None\n"
              "from setuptools.config.pyprojecttoml import read_configuration\n"
              "print(read_configuration('pyproject.toml')['project']['version'])\n"
              "assert 'ganpack' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ganpack.__version__
