"""The latent stream ganpack-philox/1: the numpy reference against Random123's known answers and
a normal distribution; the C kernel against the numpy reference, bit for bit (seeds, widths,
first rows, chunkings, threads); whole samples against latents + generate; the docs' snippet."""

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ganpack
from bounds import AGREEMENT, FLOOR, terms
from ganpack.errors import InputError
from ganpack.latents import GENERATOR, draw_numpy, philox4x32_10

kernel = pytest.importorskip("ganpack.backends.c_backend", reason="the C kernel is not built")
ROOT = Path(__file__).resolve().parent.parent
ISAS = [name for name, code in (("portable", 0), ("avx2_fma", 1), ("avx512", 2)) if code <= kernel.lib.gp_best_isa()]


def bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint32)  # compare bits: -0.0 != 0.0, NaN == NaN


@pytest.mark.parametrize("counter, key, expected", [  # Random123's kat_vectors for philox4x32 10 rounds
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in philox4x32_10([np.uint64(c) for c in counter], key)) == expected


def normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def test_normal_latents_are_normal():
    z = draw_numpy(11, 0, 4000, 100, "normal", 1.0, 0.0).astype(np.float64)
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1) < 0.005
    assert np.abs(z).max() <= 5.78  # the documented radius bound
    sample = np.sort(z.ravel()[::7])  # Kolmogorov-Smirnov against N(0, 1), alpha 0.001
    cdf = normal_cdf(sample)
    n = len(sample)
    distance = max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max())
    assert distance < 1.95 / math.sqrt(n)
    columns = np.corrcoef(z[:, :8].T)  # values of one row are independent
    assert np.abs(columns - np.eye(8)).max() < 0.06


def test_uniform_latents_cover_the_interval():
    u = draw_numpy(3, 0, 2000, 100, "uniform", 2.0, -1.0)
    assert u.min() >= -1 and u.max() < 1 and abs(u.mean()) < 0.01 and abs(u.var() - 1 / 3) < 0.01


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 64 - 1), first_row=st.one_of(st.integers(0, 1000), st.integers(0, 2 ** 63 - 100)),
       rows=st.integers(0, 40), dim=st.integers(1, 300), distribution=st.sampled_from(["normal", "uniform"]),
       scale=st.floats(0.125, 10, width=32), offset=st.floats(-5, 5, width=32))
def test_c_draws_the_numpy_reference_bit_for_bit(seed, first_row, rows, dim, distribution, scale, offset):
    expected = draw_numpy(seed, first_row, rows, dim, distribution, scale, offset)
    got = kernel.draw_latents(seed, first_row, rows, dim, distribution, scale, offset)
    assert np.array_equal(bits(got), bits(expected))


@pytest.mark.parametrize("dim", [1, 4, 31, 64, 100, 257])
def test_rows_depend_on_seed_and_row_only(dim):
    whole = kernel.draw_latents(5, 0, 100, dim, "normal", 1.0, 0.0)
    pieces = np.concatenate([kernel.draw_latents(5, start, count, dim, "normal", 1.0, 0.0)
                             for start, count in ((0, 1), (1, 16), (17, 3), (20, 80))])
    assert np.array_equal(bits(whole), bits(pieces))  # any chunking: the same rows
    assert np.array_equal(bits(whole[:7]), bits(draw_numpy(5, 0, 7, dim, "normal", 1.0, 0.0)))  # prefix
    assert not np.array_equal(whole, kernel.draw_latents(6, 0, 100, dim, "normal", 1.0, 0.0))
    assert len({row.tobytes() for row in whole}) == 100


def test_c_latent_arguments_are_checked():
    z = kernel.ffi.new("float[]", 8)
    lib = kernel.lib
    assert lib.gp_latents(1, 0, 2, 4, lib.GP_LATENT_NORMAL, 1.0, 0.0, z) == lib.GP_OK
    assert lib.gp_latents(1, -1, 2, 4, lib.GP_LATENT_NORMAL, 1.0, 0.0, z) == lib.GP_ERR_SHAPE
    assert lib.gp_latents(1, 2 ** 63 - 1, 2, 4, lib.GP_LATENT_NORMAL, 1.0, 0.0, z) == lib.GP_ERR_SHAPE  # overflow
    assert lib.gp_latents(1, 0, -1, 4, lib.GP_LATENT_NORMAL, 1.0, 0.0, z) == lib.GP_ERR_SHAPE
    assert lib.gp_latents(1, 0, 2, 0, lib.GP_LATENT_NORMAL, 1.0, 0.0, z) == lib.GP_ERR_SHAPE
    assert lib.gp_latents(1, 0, 2, 4, 7, 1.0, 0.0, z) == lib.GP_ERR_ARGUMENT
    assert lib.gp_latents(1, 0, 2, 4, lib.GP_LATENT_NORMAL, float("nan"), 0.0, z) == lib.GP_ERR_ARGUMENT
    assert lib.gp_latents(1, 0, 2, 4, lib.GP_LATENT_NORMAL, 1.0, float("inf"), z) == lib.GP_ERR_ARGUMENT
    assert lib.gp_latents(1, 0, 2, 4, lib.GP_LATENT_NORMAL, 1.0, 0.0, kernel.ffi.NULL) == lib.GP_ERR_NULL
    assert lib.gp_latents(1, 0, 0, 4, lib.GP_LATENT_NORMAL, 1.0, 0.0, kernel.ffi.NULL) == lib.GP_OK


# ---------------------------------------------------------------------------------------------
# whole samples in one C call


@pytest.fixture(scope="module")
def default_model():
    return ganpack.load(backend="numpy")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_one_call_sample_equals_latents_then_generate(default_model, isa, threads):
    """gp_stack_sample = gp_latents + the float kernel (+ the uint8 mapping), bit for bit, at every
    batch size around the chunk and thread-split boundaries, and row i never depends on n."""
    generator = kernel.CBackend(default_model._generator.stack, threads=threads, isa=isa,
                                stream=default_model.stream)
    z = default_model.latents(150, seed=9)
    floats = generator.run(z)
    pixels = np.clip(np.rint((floats + 1) * np.float32(127.5)), 0, 255).astype(np.uint8)
    for batch in (1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 63, 64, 65, 150):
        for dtype, expected in ((np.float32, floats), (np.uint8, pixels)):
            out = np.empty((batch, 784), dtype)
            generator.sample_into(9, 0, None, out)
            assert np.array_equal(out, expected[:batch]), (isa, threads, batch, dtype)


def test_sample_on_every_backend_draws_the_same_latents(default_model):
    """Same (package, seed, n) on every backend: images within the agreement bound (tests/bounds.py),
    uint8 pixels at most one level apart and only where the float image lies that close to a
    rounding boundary."""
    results = {name: ganpack.load(backend=name) for name in ganpack.available_backends()}
    reference = results["numpy"].sample(300, seed=21, output="float")
    z = default_model.latents(300, seed=21)
    bound = (AGREEMENT * terms(default_model._generator.stack, z) + FLOOR).reshape(300, 28, 28)
    for name, model in results.items():
        assert np.array_equal(model.latents(300, seed=21), z), name
        floats = model.sample(300, seed=21, output="float")
        assert (np.abs(floats - reference) <= bound).all(), name
        pixels = model.sample(300, seed=21).astype(int)
        own = np.clip(np.rint((reference + 1) * np.float32(127.5)), 0, 255).astype(int)
        differ = pixels != own
        assert np.abs(pixels - own).max() <= 1, name
        scaled = (reference[differ].astype(np.float64) + 1) * 127.5
        assert np.all(np.abs(scaled - np.floor(scaled) - 0.5) <= 127.5 * bound[differ]), name  # near a .5 boundary


def test_seeds_are_checked(default_model):
    model = ganpack.load(backend=ganpack.available_backends()[0])
    assert model.sample(2, seed=2 ** 64 - 1).shape == (2, 28, 28)
    for bad in (-1, 2 ** 64, 1.5, "1", True):
        with pytest.raises(InputError, match="seed"):
            model.sample(1, seed=bad)
    fresh = [model.sample(1).tobytes() for _ in range(3)]
    assert len(set(fresh)) == 3  # seed=None: fresh randomness each call


def test_the_docs_snippet_reproduces_the_latents(default_model, tmp_path):
    text = (ROOT / "docs" / "latents.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", text, re.S)
    program = snippet + "\nimport sys\nassert 'ganpack' not in sys.modules\nnp.save(sys.argv[1], z)\n"
    done = subprocess.run([sys.executable, "-c", program, str(tmp_path / "z.npy")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    z = np.load(tmp_path / "z.npy")
    assert default_model.manifest.latent.generator == GENERATOR
    assert np.array_equal(bits(z), bits(default_model.latents(4, seed=7)))


def test_float_error_is_bounded_by_the_terms_summed(default_model):
    """Why two backends can differ by more than 1e-5 (4.2e-5 at batch 4,096 on the default model):
    each rounds float32 sums of large terms. Against an exact (float64) evaluation every backend's
    error stays below 1e-7 S + 5e-7, S the size of every product the output depends on
    (tests/bounds.py; measured up to 1.9e-8 S), on every ISA the C kernel has here."""
    stack = default_model._generator.stack
    w1, b1, w2, b2 = (np.asarray(a, np.float64) for a in (stack.layers[0].weight, stack.layers[0].bias,
                                                         stack.layers[1].weight, stack.layers[1].bias))
    z = default_model.latents(4096, seed=4096)
    hidden = z @ w1.T + b1
    hidden = np.where(hidden >= 0, hidden, 0.01 * hidden)
    exact = np.tanh(hidden @ w2.T + b2)
    sizes = terms(stack, z)
    outputs = {name: ganpack.load(backend=name).generate(z, output="float").reshape(4096, -1)
               for name in ganpack.available_backends()}
    for isa in ISAS:
        generator = kernel.CBackend(stack, threads=2, isa=isa, stream=default_model.stream)
        outputs[isa] = np.empty((4096, 784), np.float32)
        generator.sample_into(4096, 0, None, outputs[isa])
    for name, out in outputs.items():
        error = np.abs(out - exact)
        assert (error <= 1e-7 * sizes + 5e-7).all(), (name, float((error / sizes).max()))
