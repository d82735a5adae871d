"""The runtime API: every backend against the PyTorch reference, latents, bad input, packages,
threads, and the model shipped inside ganpack."""

import json
import shutil
import threading

import numpy as np
import pytest
import torch

import ganpack
import ganpack.backends.chunked as chunked_module
import ganpack.model as model_module
from ganpack.errors import InputError, PackageError
from ganpack.latents import GENERATOR, LEGACY_GENERATOR, draw_numpy
from ganpack.manifest import ManifestError
from packages import ARCHITECTURES, make_package

BACKENDS = ganpack.available_backends()
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    root = tmp_path_factory.mktemp("packages")
    return {name: make_package(root / name, name, seed=index) for index, name in enumerate(ARCHITECTURES)}


@pytest.fixture(scope="module")
def default_package(packages):
    return packages["default"][0]


def test_numpy_and_onnxruntime_are_always_there():
    assert {"numpy", "onnxruntime"} <= set(BACKENDS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_backend_matches_pytorch(packages, architecture, backend):
    path, generator, discriminator = packages[architecture]
    model = ganpack.load(path, backend=backend)
    assert model.backend == backend
    for batch in (1, 3, 17, 1000):
        z = model.latents(batch, seed=batch)
        with torch.no_grad():
            reference, _ = generator(torch.from_numpy(z))
            probability, _ = discriminator(reference)
        images = model.generate(z, output="float")
        assert images.shape == (batch, 28, 28) and images.dtype == np.float32
        assert np.abs(images.reshape(batch, -1) - reference.numpy()).max() <= TOLERANCE
        scores = model.score(reference.numpy())
        assert scores.shape == (batch,)
        assert np.abs(scores - probability.numpy()[:, 0]).max() <= TOLERANCE


def test_backends_agree_on_seeded_samples(default_package):
    results = {name: ganpack.load(default_package, backend=name).sample(50, seed=3, output="float")
               for name in BACKENDS}
    reference = results["numpy"]
    for name, images in results.items():
        assert np.abs(images - reference).max() <= TOLERANCE, name


def test_auto_picks_the_fastest_available(default_package, monkeypatch):
    import ganpack.backends as backends

    assert "c" in BACKENDS  # the test install always builds the kernel
    assert ganpack.load(default_package).backend == "c"
    real = backends.backend_class

    def without(*missing):
        def backend_class(name):
            if name in missing:
                raise backends.BackendError(f"{name} hidden by the test")
            return real(name)
        return backend_class

    monkeypatch.setattr(backends, "backend_class", without("c"))
    assert ganpack.load(default_package).backend == "onnxruntime"
    monkeypatch.setattr(backends, "backend_class", without("c", "onnxruntime"))
    assert ganpack.load(default_package).backend == "numpy"


def test_latents_follow_the_manifest(default_package):
    model = ganpack.load(default_package, backend="numpy")
    z = model.latents(20000, seed=0)
    assert z.dtype == np.float32 and z.shape == (20000, 100)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert np.array_equal(z[:5], model.latents(5, seed=0))  # chunked draws are one stream
    assert not np.array_equal(model.latents(5, seed=0), model.latents(5, seed=1))
    assert model.manifest.latent.generator == GENERATOR
    expected = draw_numpy(7, 0, 3, 100, "normal", 1.0, 0.0)
    assert np.array_equal(model.latents(3, seed=7), expected)  # the documented rule, exactly


def test_format_version_1_packages_keep_their_numpy_latents(tmp_path, default_package):
    """A 0.1.0 package (format_version 1, no latent.generator) still means numpy's PCG64 stream."""
    copy = tmp_path / "v1"
    shutil.copytree(default_package, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["latent"]["generator"]
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    expected = np.random.default_rng(7).standard_normal((3, 100), dtype=np.float32)
    for backend in BACKENDS:
        model = ganpack.load(copy, backend=backend)
        assert model.manifest.latent.generator == LEGACY_GENERATOR
        assert np.array_equal(model.latents(3, seed=7), expected)
        assert np.array_equal(model.sample(3, seed=7), model.generate(expected)), backend


def test_uniform_latents(tmp_path, default_package):
    copy = tmp_path / "uniform"
    shutil.copytree(default_package, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["latent"] = {"dim": 100, "distribution": "uniform", "parameters": {"low": -1.0, "high": 1.0},
                          "generator": GENERATOR}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    z = ganpack.load(copy, backend="numpy").latents(10000, seed=0)
    assert z.min() >= -1 and z.max() <= 1 and abs(z.std() - (1 / 3) ** 0.5) < 0.01


def test_sample_outputs(default_package):
    model = ganpack.load(default_package, backend="numpy")
    pixels = model.sample(4, seed=1)
    assert pixels.dtype == np.uint8 and pixels.shape == (4, 28, 28)
    floats = model.sample(4, seed=1, output="float")
    assert np.array_equal(pixels, np.clip(np.rint((floats + 1) * 127.5), 0, 255).astype(np.uint8))
    assert model.sample(0).shape == (0, 28, 28)
    assert model.score(np.zeros((0, 784), np.float32)).shape == (0,)


def test_score_accepts_pixels_and_floats(default_package):
    model = ganpack.load(default_package, backend="numpy")
    pixels = model.sample(5, seed=2)
    from_pixels = model.score(pixels)
    from_floats = model.score(pixels.astype(np.float32).reshape(5, 784) / 127.5 - 1)
    assert np.allclose(from_pixels, from_floats) and ((0 < from_pixels) & (from_pixels < 1)).all()


@pytest.mark.parametrize("call, message", [
    (lambda m: m.generate(np.full((2, 100), np.nan, np.float32)), "non-finite"),
    (lambda m: m.generate(np.full((2, 100), np.inf)), "non-finite"),
    (lambda m: m.generate(np.zeros((2, 99), np.float32)), r"shape \(n, 100\)"),
    (lambda m: m.generate(np.zeros(100, np.float32)), r"shape \(n, 100\)"),
    (lambda m: m.generate(np.zeros((2, 100), np.complex64)), "real numbers"),
    (lambda m: m.generate(np.zeros((2, 100), bool)), "real numbers"),
    (lambda m: m.generate([["a"] * 100]), "real numbers"),
    (lambda m: m.generate(np.zeros((2, 100)), output="jpeg"), "output"),
    (lambda m: m.sample(-1), "non-negative"),
    (lambda m: m.sample(2.5), "non-negative"),
    (lambda m: m.sample(True), "non-negative"),
    (lambda m: m.sample(2, seed=-3), "seed"),
    (lambda m: m.score(np.full((1, 784), 3.0, np.float32)), r"\[-1, 1\]"),
    (lambda m: m.score(np.vstack([np.zeros((40, 784), np.float32), np.full((1, 784), -1.01, np.float32)])),
     r"\[-1, 1\]"),  # a later chunk (the C backend checks chunk by chunk)
    (lambda m: m.score(np.where(np.arange(784 * 30).reshape(30, 784) == 784 * 17 + 5, np.nan,
                                0).astype(np.float32)), r"non-finite value \(nan\) at row 17, column 5"),
    (lambda m: m.score(np.full((3, 784), -np.inf, np.float32)), "non-finite"),
    (lambda m: m.score(np.zeros((1, 27, 27), np.uint8)), "28, 28"),
])
def test_bad_input_is_a_clear_error(default_package, call, message):
    for backend in BACKENDS:
        with pytest.raises(InputError, match=message):
            call(ganpack.load(default_package, backend=backend))


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_huge_but_finite_latents_are_accepted(default_package):
    model = ganpack.load(default_package, backend=BACKENDS[0])
    assert np.isfinite(model.generate(np.full((2, 100), 3e38, np.float32), output="float")).all()


def test_other_dtypes_and_layouts_are_converted(default_package):
    model = ganpack.load(default_package, backend=BACKENDS[0])
    z = model.latents(6, seed=4)
    expected = model.generate(z, output="float")
    wide = np.zeros((6, 200), np.float64)
    wide[:, ::2] = z  # a non-contiguous float64 view
    assert np.abs(model.generate(wide[:, ::2], output="float") - expected).max() <= TOLERANCE
    assert model.generate(np.zeros((2, 100), np.int32)).shape == (2, 28, 28)


@pytest.mark.parametrize("backend", [name for name in BACKENDS if name != "c"])  # c: one call, never chunked
def test_large_n_is_chunked(default_package, monkeypatch, backend):
    model = ganpack.load(default_package, backend=backend)
    whole = model.sample(1000, seed=5, output="float")
    rows_per_call = []
    run = model._generator.run

    def counted(rows, labels=None):
        rows_per_call.append(len(rows))
        return run(rows, labels)

    monkeypatch.setattr(model._generator, "run", counted)
    monkeypatch.setattr(chunked_module, "CHUNK_ROWS", 64)
    assert np.abs(model.sample(1000, seed=5, output="float") - whole).max() <= TOLERANCE
    assert rows_per_call == [64] * 15 + [40]  # every row once, in chunks of CHUNK_ROWS


def test_packages_are_checked_on_load(default_package, tmp_path):
    copy = tmp_path / "pkg"
    shutil.copytree(default_package, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 9}))
    with pytest.raises(ManifestError, match="format_version 9"):
        ganpack.load(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    graph = (copy / "generator.onnx").read_bytes()
    (copy / "generator.onnx").write_bytes(graph[: len(graph) // 2])  # truncated
    with pytest.raises(PackageError, match="generator.onnx"):
        ganpack.load(copy)
    with pytest.raises(PackageError, match="not a folder"):
        ganpack.load(tmp_path / "missing")


def test_graph_must_match_its_manifest(packages, tmp_path):
    copy = tmp_path / "pkg"
    shutil.copytree(packages["default"][0], copy)
    shutil.copy(packages["three_layers"][0] / "generator.onnx", copy / "generator.onnx")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["generator"]["sha256"] = json.loads(
        (packages["three_layers"][0] / "manifest.json").read_text())["generator"]["sha256"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="differ from the manifest"):
        ganpack.load(copy)


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_threads_share_one_model(default_package, backend):
    model = ganpack.load(default_package, backend=backend)
    batches = [model.latents(size, seed=size) for size in (1, 3, 17, 64, 100, 5, 250, 8)]
    serial = [model.generate(z, output="float") for z in batches]
    results, errors = [None] * 8, []

    def work(index):
        try:
            for _ in range(20):
                out = model.generate(batches[index], output="float")
                assert np.array_equal(out, serial[index])
            results[index] = out
        except Exception as error:  # surfaced below: a thread's assertion would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert all(np.array_equal(r, s) for r, s in zip(results, serial))


def test_the_model_inside_ganpack():
    model = ganpack.load()
    assert model.path.name == "default" and model.manifest.provenance["steps"] > 0
    digits = model.sample(64, seed=1)
    assert digits.shape == (64, 28, 28) and digits.dtype == np.uint8
    assert 0.2 < model.score(digits).mean() < 0.8  # the trained discriminator is unsure of good fakes


def test_generate_into_a_caller_array(default_package):
    model = ganpack.load(default_package, backend=BACKENDS[0])
    z = model.latents(5, seed=9)
    out = np.zeros((5, 28, 28), np.float32)
    assert model.generate(z, output="float", out=out) is not None
    assert np.array_equal(out, model.generate(z, output="float"))
    for bad in (np.zeros((5, 28, 28), np.float64), np.zeros((4, 28, 28), np.float32),
                np.zeros((5, 28, 56), np.float32)[:, :, ::2]):
        with pytest.raises(InputError, match="out must be"):
            model.generate(z, output="float", out=bad)
    with pytest.raises(InputError, match="uint8 array"):
        model.generate(z, out=out)  # float32 out for the default uint8 output
    pixels = np.zeros((5, 28, 28), np.uint8)
    assert model.generate(z, out=pixels) is pixels
    assert np.array_equal(pixels, model.generate(z))


@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_count_is_accepted_and_checked(default_package, backend):
    one = ganpack.load(default_package, backend=backend, threads=1)
    default = ganpack.load(default_package, backend=backend)
    z = one.latents(100, seed=1)
    assert np.abs(one.generate(z, output="float") - default.generate(z, output="float")).max() <= TOLERANCE
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="threads"):
            ganpack.load(default_package, backend=backend, threads=bad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("legacy", [False, True])
def test_sample_chunks_concatenate_to_sample(default_package, tmp_path, monkeypatch, backend, legacy):
    package = default_package
    if legacy:  # format_version 1: numpy's PCG64, one generator drawn in order
        package = shutil.copytree(default_package, tmp_path / "v1")
        manifest = json.loads((package / "manifest.json").read_text())
        del manifest["latent"]["generator"]
        (package / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    model = ganpack.load(package, backend=backend)
    monkeypatch.setattr(model_module, "STREAM_ROWS", chunked_module.CHUNK_ROWS)
    n = 2 * chunked_module.CHUNK_ROWS + 5
    for output in ("uint8", "float"):
        pieces = list(model.sample_chunks(n, seed=11, output=output))
        assert [len(piece) for piece in pieces] == [chunked_module.CHUNK_ROWS] * 2 + [5]
        assert np.array_equal(np.concatenate(pieces), model.sample(n, seed=11, output=output))
    assert [len(piece) for piece in model.sample_chunks(0, seed=1)] == [0]
    with pytest.raises(InputError, match="output"):
        next(model.sample_chunks(3, seed=1, output="png"))
