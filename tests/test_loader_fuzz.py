"""Fuzzing the model-package loader: every damaged, hostile or absurd package must end in a
ganpack exception (or, where the damage is harmless, a model that samples), never another
exception, a crash, a hang or unbounded memory. The case counts are reported in RELIABILITY.md."""

import copy
import hashlib
import json
import os
import shutil
import signal

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ganpack
from ganpack.errors import GanpackError
from packages import make_package

BACKENDS = ["numpy", "c", "onnxruntime"]
WRONG_VALUES = [None, True, -1, 0, 1.5, 1e308, float("nan"), 2 ** 64, "", "x", [], {}, [1, 2], {"a": 1}]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def no_hangs():
    """Each test gets 120 s; a hang becomes a failure instead of a stuck CI job."""
    def timeout(signum, frame):
        raise TimeoutError("the loader hung")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    path, _, _ = make_package(tmp_path_factory.mktemp("valid") / "model")
    return path


@pytest.fixture
def package(valid, tmp_path):
    """A fresh, writable copy of the valid package."""
    return shutil.copytree(valid, tmp_path / "model")


def outcome(path, backend="numpy") -> str:
    """'refused' (a GanpackError) or 'loaded' (and then it must sample); anything else fails the test."""
    try:
        model = ganpack.load(path, backend=backend)
    except GanpackError:
        return "refused"
    assert model.sample(2, seed=0).shape == (2, 28, 28)
    return "loaded"


def write_manifest(package, values) -> None:
    (package / "manifest.json").write_text(json.dumps(values))


def manifest_paths(values, prefix=()):
    """Every key path in the manifest, depth first."""
    if isinstance(values, dict):
        for key, value in values.items():
            yield prefix + (key,)
            yield from manifest_paths(value, prefix + (key,))


def replaced(values, path, new=None, delete=False):
    out = copy.deepcopy(values)
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return out


def reseal(package, network, data: bytes) -> None:
    """Write an ONNX file and update its SHA-256 in the manifest, so the damage reaches the parser."""
    (package / f"{network}.onnx").write_bytes(data)
    values = json.loads((package / "manifest.json").read_text())
    values[network]["sha256"] = hashlib.sha256(data).hexdigest()
    write_manifest(package, values)


# ---------------------------------------------------------------------------------------------
# the manifest


def test_every_truncation_of_the_manifest_is_refused(package):
    text = (package / "manifest.json").read_bytes()
    for cut in range(0, len(text) - 1, 7):
        (package / "manifest.json").write_bytes(text[:cut])
        assert outcome(package) == "refused", f"cut at {cut}"


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_as_the_manifest_are_refused(package, data):
    (package / "manifest.json").write_bytes(data)
    assert outcome(package) == "refused"


RECORD_KEEPING = {"training_config", "provenance", "parity", "quality"}  # read by people, not by the loader
FREE_VALUES = {("latent", "parameters", "mean"), ("latent", "parameters", "std"),  # other numbers are valid
               ("image", "to_uint8")}  # a formula for people to read


@pytest.mark.slow
def test_every_field_with_every_wrong_type_or_missing(package):
    values = json.loads((package / "manifest.json").read_text())
    results, accepted = {"refused": 0, "loaded": 0}, set()
    for path in manifest_paths(values):
        for new in [*WRONG_VALUES, "<deleted>"]:
            changed = replaced(values, path, delete=True) if new == "<deleted>" else replaced(values, path, new)
            write_manifest(package, changed)
            result = outcome(package)
            results[result] += 1
            if result == "loaded":
                accepted.add(path)
    assert results["refused"] > 400 and results["loaded"] > 0
    # everything the loader acts on is checked; only record-keeping fields and free values may vary
    assert {path for path in accepted if path[0] not in RECORD_KEEPING} <= FREE_VALUES


@pytest.mark.parametrize("path, value", [
    (("latent", "dim"), 10 ** 9),
    (("generator", "layer_widths"), [100, 10 ** 9, 784]),
    (("discriminator", "layer_widths"), [784] + [128] * 100000 + [1]),
    (("latent", "parameters", "std"), float("inf")),
    (("latent", "parameters", "std"), float("nan")),
    (("latent", "parameters", "mean"), -1e300),
])
def test_absurd_sizes_and_values_are_refused(package, path, value):
    values = json.loads((package / "manifest.json").read_text())
    write_manifest(package, replaced(values, path, value))
    assert outcome(package) == "refused"


def test_a_huge_manifest_is_refused_without_reading_it(package):
    with open(package / "manifest.json", "ab") as file:
        file.truncate(2 << 30)  # a sparse 2 GiB manifest
    assert outcome(package) == "refused"


def test_a_huge_graph_file_is_refused_without_reading_it(valid, tmp_path):
    package = shutil.copytree(valid, tmp_path / "big")
    with open(package / "generator.onnx", "ab") as file:
        file.truncate(1 << 40)  # a sparse 1 TiB file: reading it would never end
    assert outcome(package) == "refused"


@pytest.mark.parametrize("name", ["../generator.onnx", "/etc/passwd", "sub/generator.onnx", "..", ".",
                                  ".hidden.onnx", "C:\\generator.onnx", "generator.onnx\x00", "", "manifest.json",
                                  "~/generator.onnx", "generator.onnx/"])
def test_file_names_that_look_like_paths_are_refused(package, name):
    values = json.loads((package / "manifest.json").read_text())
    values["generator"]["file"] = name
    write_manifest(package, values)
    assert outcome(package) == "refused"


def test_symlinks_out_of_the_package_are_refused(package, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("generator.onnx", "manifest.json"):
        target = outside / name
        shutil.copy(package / name, target)
        (package / name).unlink()
        (package / name).symlink_to(target)
        assert outcome(package) == "refused", name
        (package / name).unlink()
        shutil.copy(target, package / name)
    assert outcome(package) == "loaded"


# ---------------------------------------------------------------------------------------------
# the ONNX graphs (checksums updated, so the damage reaches the parser and the backends)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_truncation_of_a_graph_is_refused(package, backend):
    data = (package / "generator.onnx").read_bytes()
    for cut in np.linspace(0, len(data) - 1, 40).astype(int):
        reseal(package, "generator", data[:cut])
        assert outcome(package, backend) == "refused", f"cut at {cut}"


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_as_a_graph_are_refused(package, data):
    reseal(package, "discriminator", data)
    assert outcome(package) == "refused"


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10 ** 9), st.integers(1, 255)), min_size=1, max_size=8))
def test_bit_flips_in_a_graph_are_refused_or_harmless(valid, tmp_path_factory, backend, flips):
    package = shutil.copytree(valid, tmp_path_factory.mktemp("flip") / "model")
    data = bytearray((package / "generator.onnx").read_bytes())
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    reseal(package, "generator", bytes(data))
    if outcome(package, backend) == "refused":
        return
    # harmless: the damaged graph is still a dense stack, and the backend runs it as another backend
    # does (numpy is checked against onnxruntime, the others against numpy: never a backend against itself)
    z = np.random.default_rng(0).standard_normal((5, 100), dtype=np.float32)
    other = "onnxruntime" if backend == "numpy" else "numpy"
    reference = ganpack.load(package, backend=other).generate(z, output="float")
    images = ganpack.load(package, backend=backend).generate(z, output="float")
    assert np.allclose(images, reference, rtol=1e-4, atol=1e-4, equal_nan=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(package, backend, value):
    """A resealed package whose weight holds NaN or inf would sample NaN (each backend its own
    way: 0 or 255 pixels); it is refused at load instead, naming the weight."""
    graph = onnx.load(package / "generator.onnx")
    weight = onnx.numpy_helper.to_array(graph.graph.initializer[-1]).copy()
    weight.flat[weight.size // 2] = value
    graph.graph.initializer[-1].CopyFrom(onnx.numpy_helper.from_array(weight, graph.graph.initializer[-1].name))
    reseal(package, "generator", graph.SerializeToString())
    with pytest.raises(GanpackError, match=f"weight '{graph.graph.initializer[-1].name}' holds a non-finite value"):
        ganpack.load(package, backend=backend)


def test_external_data_pointing_out_of_the_package_is_refused(package, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(100 * 128, np.float32).tobytes())
    model = onnx.load(str(package / "generator.onnx"))
    weight = next(init for init in model.graph.initializer if len(init.dims) == 2)
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", os.path.relpath(secret, package)
    reseal(package, "generator", model.SerializeToString())
    for backend in BACKENDS:
        with pytest.raises(GanpackError, match="external"):
            ganpack.load(package, backend=backend)
