"""Loading never executes code: no pickle anywhere in the runtime (checkpoints load with
weights_only: tests/test_checkpoint.py), graphs checked as plain dense stacks before onnxruntime
sees them, and no string from a manifest used as a path."""

import ast
import hashlib
import json
import re
from pathlib import Path

import onnx
import onnxruntime
import pytest
from onnx import helper

import ganpack
from ganpack.errors import GanpackError
from packages import make_package

RUNTIME = Path(ganpack.__file__).parent
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "cloudpickle", "torch"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def runtime_sources():
    return sorted(RUNTIME.rglob("*.py"))


@pytest.mark.parametrize("path", runtime_sources(), ids=lambda p: p.name)
def test_the_runtime_never_unpickles_or_evaluates(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not {name.split(".")[0] for name in names} & UNSAFE_MODULES, f"{path.name}:{node.lineno}"
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            assert name not in UNSAFE_CALLS, f"{path.name}:{node.lineno} calls {name}"
            if name == "load" and getattr(node.func, "value", None) is not None \
                    and getattr(node.func.value, "id", "") in ("np", "numpy"):
                keywords = {k.arg: k.value for k in node.keywords}
                assert "allow_pickle" in keywords and keywords["allow_pickle"].value is False


def test_manifest_strings_never_become_paths():
    """The Network.file field is parsed and checked, then never read again by the runtime."""
    for path in runtime_sources():
        if path.name == "manifest.py":
            continue
        assert not re.search(r"\.file\b(?!_)", path.read_text()), f"{path.name} reads a manifest file name"


def test_a_custom_operator_is_refused_before_onnxruntime_loads_the_graph(tmp_path, monkeypatch):
    package, _, _ = make_package(tmp_path / "model")
    model = onnx.load(str(package / "generator.onnx"))
    last = model.graph.node[-1]
    custom = helper.make_node("Payload", list(last.output), ["evil"], domain="com.example", name="custom")
    model.graph.node.append(custom)
    model.graph.output[0].name = "evil"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    data = model.SerializeToString()
    (package / "generator.onnx").write_bytes(data)
    values = json.loads((package / "manifest.json").read_text())
    values["generator"]["sha256"] = hashlib.sha256(data).hexdigest()
    (package / "manifest.json").write_text(json.dumps(values))

    def never(*args, **kwargs):
        raise AssertionError("onnxruntime was handed a graph that is not a plain dense stack")

    monkeypatch.setattr(onnxruntime, "InferenceSession", never)
    with pytest.raises(GanpackError, match="Payload"):
        ganpack.load(package, backend="onnxruntime")
