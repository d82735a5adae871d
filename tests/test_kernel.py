"""The C kernel through Python: every ISA this CPU has against numpy, argument checks before C,
and the C test suite itself: strict, under AddressSanitizer + UndefinedBehaviorSanitizer, under
ThreadSanitizer, under valgrind (trimmed grids, GP_TEST_QUICK=1, to fit CI), with the x86 paths
compiled out, for ARM64 under qemu, and with the AVX-512 path emulated by SIMDe (each suite runs
tests/test_model.c too: the ganpack-c model reader). Each suite has a time limit. The model reader
through cffi: refusals of damaged files, and samples equal to the C backend's; `make fuzz` for a
few seconds on two valid files."""

import os
import platform
import shutil
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from ganpack.backends import BackendError
from ganpack.backends.numpy_backend import NumpyBackend
from ganpack.dense_stack import DenseStack, Layer

kernel = pytest.importorskip("ganpack.backends.c_backend", reason="the C kernel is not built")
CSRC = Path(__file__).resolve().parent.parent / "csrc"
ISAS = [name for name, code in (("portable", 0), ("avx2_fma", 1), ("avx512", 2))
        if code <= kernel.lib.gp_best_isa()]


def random_stack(widths, activations, alpha=0.2, seed=0):
    rng = np.random.default_rng(seed)
    layers = [Layer(rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32), rng.normal(0, 0.1, b).astype(np.float32),
                    act, alpha if act == "leaky_relu" else 0.0)
              for a, b, act in zip(widths[:-1], widths[1:], activations)]
    return DenseStack(layers, "x", {"y": "activated"})


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("widths, activations", [
    ([100, 128, 784], ["leaky_relu", "tanh"]),
    ([784, 128, 1], ["leaky_relu", "sigmoid"]),
    ([7, 17, 3, 5], ["relu", "identity", "leaky_relu"]),
    ([1, 1], ["sigmoid"]),
    ([64, 1024, 33], ["tanh", "leaky_relu"]),
])
def test_every_isa_matches_numpy(isa, widths, activations):
    stack = random_stack(widths, activations)
    native = kernel.NativeStack(stack, isa)
    assert native.isa == isa
    reference = NumpyBackend(stack)
    rng = np.random.default_rng(1)
    for batch in (0, 1, 3, 17, 100):
        x = rng.normal(size=(batch, widths[0])).astype(np.float32)
        expected = reference.run(x)["activated"]
        assert np.abs(native.run(x) - expected).max(initial=0) <= 1e-5 * max(1.0, np.abs(expected).max(initial=0))


def test_arguments_are_checked_before_c():
    native = kernel.NativeStack(random_stack([4, 3], ["tanh"]))
    x = np.zeros((2, 4), np.float32)
    for bad in (x.astype(np.float64), x[:, :3], np.zeros((2, 8), np.float32)[:, ::2], [[0.0] * 4]):
        with pytest.raises(BackendError):
            native.run(bad)
    with pytest.raises(BackendError, match="out must be"):
        native.run(x, out=np.zeros((2, 2), np.float32))
    out = np.zeros((2, 3), np.float32)
    assert native.run(x, out=out) is out
    with pytest.raises(BackendError, match="unknown ISA"):
        kernel.NativeStack(random_stack([4, 3], ["tanh"]), isa="sse9")


def test_c_status_codes_become_exceptions():
    bad = random_stack([4, 3], ["leaky_relu"])
    bad.layers[0].alpha = float("nan")  # the C side refuses it; Python passes it through
    with pytest.raises(BackendError, match="alpha"):
        kernel.NativeStack(bad)


def test_kernel_isa_is_reported():
    assert kernel.kernel_isa() in ("portable", "avx2_fma", "avx512")


needs_make = pytest.mark.skipif(not (shutil.which("make") and shutil.which("gcc")), reason="needs make and gcc")


AARCH64_TOOLS = ["aarch64-linux-gnu-gcc", "qemu-aarch64"]
SIMDE_HEADER = Path("/usr/include/simde/x86/avx512.h")
SUITE_TOOLS = {"valgrind-quick": ["valgrind"], "test-aarch64": AARCH64_TOOLS, "test-avx512-emulated": ["objdump"]}
# Seconds from the start of all suites to each one's end, build included: they start at once and
# share the CPUs, so each limit is on the whole run, and a hang costs at most the largest. On a
# loaded 2-core VM (load 4-5 from other work) all seven ended within 310 s (valgrind-quick alone
# 85-112 s, sanitize ~70 s, tsan 26-70 s, test-aarch64 ~45 s, test-avx512-emulated ~25 s); the
# limits leave 3x that, 4x for valgrind-quick.
SUITE_SECONDS = {"test": 900, "sanitize": 900, "tsan": 900, "valgrind-quick": 1200, "test-portable": 900,
                 "test-aarch64": 900, "test-avx512-emulated": 900}
C_SUITES = [
    "test",  # -Werror build, full grids
    "sanitize",  # AddressSanitizer + UndefinedBehaviorSanitizer, full grids
    "tsan",  # ThreadSanitizer over the worker threads and 8 callers on one stack
    pytest.param("valgrind-quick", marks=pytest.mark.skipif(not shutil.which("valgrind"), reason="needs valgrind")),
    "test-portable",  # the x86 SIMD paths compiled out: the portable path alone, full grids
    pytest.param("test-aarch64", marks=pytest.mark.skipif(
        not all(shutil.which(tool) for tool in AARCH64_TOOLS),
        reason="the ARM64 suite needs aarch64-linux-gnu-gcc and qemu-aarch64 (Debian's gcc-aarch64-linux-gnu "
               "and qemu-user; .ci/run installs them)")),  # cross-built, run under qemu, trimmed grids
    pytest.param("test-avx512-emulated", marks=[  # the avx512 path on SIMDe's AVX2 + FMA code, full grids
        pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64")
                           or kernel.lib.gp_best_isa() < kernel.lib.GP_ISA_AVX2_FMA,
                           reason="the emulated AVX-512 suite runs on x86-64 with AVX2 + FMA"),
        pytest.mark.skipif(not SIMDE_HEADER.exists(), reason=f"the emulated AVX-512 suite needs SIMDe "
                           f"({SIMDE_HEADER}: Debian's libsimde-dev; .ci/install-cross installs it)")]),
]


@pytest.fixture(scope="module")
def c_suites(request, tmp_path_factory):
    """Every selected suite started at once, each in its own copy of csrc/ (the build folder stays
    out of the checkout): valgrind runs one thread for minutes, so the others fit beside it. Each
    is (process, deadline); a process leads its own process group, so that a kill reaches the test
    binary that make started too."""
    running = {}
    started = time.monotonic()
    for item in request.session.items:
        if item.module is request.module and getattr(item, "originalname", None) == "test_c_suite":
            target = item.callspec.params["target"]
            tools = ["make", "gcc", *SUITE_TOOLS.get(target, [])]
            if not all(shutil.which(tool) for tool in tools):
                continue  # the test skips
            source = tmp_path_factory.mktemp(target) / "csrc"
            shutil.copytree(CSRC, source, ignore=shutil.ignore_patterns("build", "build-*"))
            process = subprocess.Popen(["make", "-C", str(source), target], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, start_new_session=True)
            running[target] = (process, started + SUITE_SECONDS[target])
    yield running
    for process, _ in running.values():
        kill_group(process)


def finish(process: subprocess.Popen, deadline: float, target: str) -> tuple[str, str]:
    """The suite's (stdout, stderr) once it ends; past its deadline, it is killed with all it
    started and the test fails naming it."""
    try:
        return process.communicate(timeout=max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        kill_group(process)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # something outside the group still holds its pipes
            stdout, stderr = "", ""
        pytest.fail(f"C suite {target!r} did not finish within its {SUITE_SECONDS.get(target)} s and was killed; "
                    f"its output so far:\n{stdout[-3000:]}{stderr[-3000:]}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_suite_past_its_limit_is_killed_with_what_it_started_and_named(tmp_path):
    """A hung suite: make's stand-in starts a child that never ends. Both must be gone after the
    limit, and the failure must name the suite."""
    pid_file = tmp_path / "child.pid"
    process = subprocess.Popen(["bash", "-c", f"echo started; sleep 300 & echo $! > {pid_file}; wait"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    with pytest.raises(pytest.fail.Exception, match=r"C suite 'hung-suite' did not finish .* killed(.|\n)*started"):
        finish(process, time.monotonic() + 1.0, "hung-suite")
    assert process.returncode is not None
    child = Path(f"/proc/{pid_file.read_text().strip()}/stat")
    for _ in range(50):  # gone, or a zombie that nothing has reaped yet
        if not child.exists() or child.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the suite's child outlived the kill")


def kill_group(process: subprocess.Popen) -> None:
    """Kills make and whatever it started (its process group), then reaps make."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # ended meanwhile
            pass
    process.wait()


@needs_make
@pytest.mark.parametrize("target", C_SUITES)
@pytest.mark.slow
def test_c_suite(c_suites, target):
    process, deadline = c_suites[target]
    stdout, stderr = finish(process, deadline, target)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert " 0 failed" in stdout
    if target in ("test-portable", "test-aarch64"):  # the portable path ran, and alone
        assert "dispatch: portable-only build, this CPU gets portable" in stdout
        assert "[avx2_fma]" not in stdout and "[avx512]" not in stdout
    if target == "test-avx512-emulated":  # the avx512 path ran, on a CPU that may lack AVX-512
        assert "dispatch: x86 SIMD build (AVX-512 emulated by SIMDe), this CPU gets avx512" in stdout
        assert "[avx512]" in stdout


# ---- the ganpack-c model reader (csrc/ganpack.h, docs/embedding-format.md) through cffi

TINY_SHAPES = (4, 2, 3)  # latent dim, image height, image width
TINY_NETWORKS = ([(5, "leaky_relu", 0.2), (6, "tanh", 0.0)],  # generator: 4 -> 5 -> 6 = 2 x 3
                 [(3, "leaky_relu", 0.2), (1, "sigmoid", 0.0)])  # discriminator: 6 -> 3 -> 1
ACTIVATION_CODES = {"identity": 0, "leaky_relu": 1, "relu": 2, "tanh": 3, "sigmoid": 4}


def tiny_layers(seed: int = 0) -> list[list[Layer]]:
    """The generator's and the discriminator's layers of the tiny model, without one-hot columns."""
    rng = np.random.default_rng(seed)
    latent, height, width = TINY_SHAPES
    networks = []
    for first, specification in zip((latent, height * width), TINY_NETWORKS):
        layers, n_in = [], first
        for n_out, activation, alpha in specification:
            layers.append(Layer(rng.normal(0, 0.5, (n_out, n_in)).astype(np.float32),
                                rng.normal(0, 0.1, n_out).astype(np.float32), activation, alpha))
            n_in = n_out
        networks.append(layers)
    return networks


def tiny_model(classes: int = 0, seed: int = 0) -> bytes:
    """A ganpack-c file (docs/embedding-format.md) of the tiny model, from the spec alone: names
    "c0", "c1", ... and a random class-bias table when classes > 0."""
    latent, height, width = TINY_SHAPES
    rng = np.random.default_rng(seed + 1)
    names = b"".join(f"c{index}".encode() + b"\0" for index in range(classes))
    names += bytes(-len(names) % 4)
    body = b""
    for layers in tiny_layers(seed):
        widths = [layers[0].weight.shape[1], *(layer.weight.shape[0] for layer in layers)]
        body += struct.pack(f"<{len(widths)}I", *widths)
        body += b"".join(struct.pack("<If", ACTIVATION_CODES[layer.activation], layer.alpha) for layer in layers)
        body += b"".join(layer.weight.astype("<f4").tobytes() + layer.bias.astype("<f4").tobytes() for layer in layers)
        body += rng.normal(0, 0.5, (classes, widths[1])).astype("<f4").tobytes()
    size = 64 + len(names) + len(body) + 4
    header = b"GPKC" + struct.pack("<5I2f6I8x", 1, 64, size, 1, 0, 1.0, 0.0, height, width, classes, len(names),
                                   len(TINY_NETWORKS[0]), len(TINY_NETWORKS[1]))
    data = header + names + body
    return data + struct.pack("<I", zlib.crc32(data))


def open_model(data: bytes) -> tuple[int, str, object]:
    """(status, why, model or NULL) of gp_model_open_memory on `data`; the caller frees the model."""
    lib, ffi = kernel.lib, kernel.ffi
    out, why = ffi.new("gp_model **"), ffi.new("char[256]")
    status = lib.gp_model_open_memory(data, len(data), lib.GP_ISA_AUTO, 1, out, why, len(why))
    return status, ffi.string(why).decode(), out[0]


def test_model_reader_refuses_damaged_files_with_its_status_codes():
    lib, ffi = kernel.lib, kernel.ffi
    for classes in (0, 3):
        data = tiny_model(classes)
        status, why, model = open_model(data)
        assert status == lib.GP_OK and why == "", why
        try:
            assert (lib.gp_model_latent_dim(model), lib.gp_model_image_height(model),
                    lib.gp_model_image_width(model), lib.gp_model_classes(model)) == (*TINY_SHAPES, classes)
            assert [ffi.string(lib.gp_model_class_name(model, c)).decode() for c in range(classes)] == \
                [f"c{c}" for c in range(classes)]
        finally:
            lib.gp_model_free(model)
        for length in range(len(data)):  # cut anywhere: magic present so far, so corrupt
            status, why, model = open_model(data[:length])
            assert status == lib.GP_ERR_CORRUPT and model == ffi.NULL and why, (length, status)
        for index in range(len(data)):  # one flipped bit anywhere: the CRC-32 covers every byte
            damaged = bytearray(data)
            damaged[index] ^= 1 << (index % 8)
            assert open_model(bytes(damaged))[0] != lib.GP_OK, index
    data = tiny_model()
    assert open_model(b"PK\3\4" + data[4:])[0] == lib.GP_ERR_FORMAT
    assert open_model(os.urandom(100).replace(b"G", b"g"))[0] == lib.GP_ERR_FORMAT
    assert open_model(data[:4] + struct.pack("<I", 2) + data[8:])[0] == lib.GP_ERR_VERSION
    status, why, _ = open_model(data[:-1] + bytes([data[-1] ^ 0xFF]))
    assert status == lib.GP_ERR_CORRUPT and "CRC-32" in why
    nan_weight = bytearray(data)
    offset = 64 + 4 * 3 + 8 * 2  # the generator's first weight: after its widths and activations
    nan_weight[offset:offset + 4] = struct.pack("<f", float("nan"))
    nan_weight[-4:] = struct.pack("<I", zlib.crc32(bytes(nan_weight[:-4])))
    status, why, _ = open_model(bytes(nan_weight))
    assert status == lib.GP_ERR_CORRUPT and "generator weight of layer 0" in why and "not finite" in why
    assert lib.gp_model_open(b"/nonexistent/model.gpkc", lib.GP_ISA_AUTO, 1, ffi.new("gp_model **"),
                             ffi.NULL, 0) == lib.GP_ERR_FILE


def test_model_samples_and_scores_as_the_c_backend_does():
    """gp_model_sample is, bit for bit, the C backend's stack (NativeStack) run on the latents."""
    lib, ffi = kernel.lib, kernel.ffi
    status, why, model = open_model(tiny_model())
    assert status == lib.GP_OK, why
    try:
        generator, discriminator = (kernel.NativeStack(DenseStack(layers, "x", {"y": "activated"}))
                                    for layers in tiny_layers())
        latent, height, width = TINY_SHAPES
        for seed in (0, 1, 2**64 - 1):
            pixels = np.empty((50, height * width), np.uint8)
            assert lib.gp_model_sample(model, seed, 3, 50, ffi.NULL, ffi.from_buffer(pixels), lib.GP_U8) == lib.GP_OK
            z = kernel.draw_latents(seed, 3, 50, latent, "normal", 1.0, 0.0)
            assert np.array_equal(pixels, generator.run(z, out=np.empty_like(pixels)))
            probabilities = np.empty(50, np.float32)
            assert lib.gp_model_score(model, ffi.from_buffer(pixels), lib.GP_U8, 50, ffi.NULL,
                                      ffi.from_buffer("float[]", probabilities)) == lib.GP_OK
            assert np.array_equal(probabilities, discriminator.run(pixels)[:, 0])
        labels = np.zeros(50, np.int32)
        assert lib.gp_model_sample(model, 0, 0, 50, ffi.from_buffer("int32_t[]", labels), ffi.from_buffer(pixels),
                                   lib.GP_U8) == lib.GP_ERR_ARGUMENT  # labels for an unconditional model
    finally:
        lib.gp_model_free(model)


def libfuzzer_missing(folder: Path) -> str | None:
    """Why clang cannot build a libFuzzer target here, or None when it can."""
    if not shutil.which("clang"):
        return "clang is not installed"
    source = folder / "probe.c"
    source.write_text("#include <stddef.h>\n#include <stdint.h>\n"
                      "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
                      "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
    done = subprocess.run(["clang", "-fsanitize=fuzzer,address", str(source), "-o", str(folder / "probe")],
                          capture_output=True, text=True, timeout=120)
    return None if done.returncode == 0 else f"clang cannot link libFuzzer: {done.stderr[-300:]}"


@needs_make
@pytest.mark.slow
def test_make_fuzz_runs_on_valid_files(tmp_path):
    """`make fuzz`: the reader under libFuzzer + ASan + UBSan for FUZZ_SECONDS on two valid files
    (the tiny model, unconditional and conditional); any crash, leak or broken invariant fails it."""
    missing = libfuzzer_missing(tmp_path)
    if missing:
        pytest.skip(f"make fuzz needs clang and libFuzzer (Debian's clang libclang-rt-14-dev; .ci/install-cross "
                    f"installs them): {missing}")
    source = tmp_path / "csrc"
    shutil.copytree(CSRC, source, ignore=shutil.ignore_patterns("build", "build-*"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "unconditional.gpkc").write_bytes(tiny_model(0))
    (corpus / "conditional.gpkc").write_bytes(tiny_model(3, seed=1))
    process = subprocess.Popen(["make", "-C", str(source), "fuzz", "FUZZ_SECONDS=10", f"FUZZ_CORPUS={corpus}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    stdout, stderr = finish(process, time.monotonic() + 600, "fuzz")  # the build takes most of it
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "Done " in stderr and "stat::number_of_executed_units" in stderr, stderr[-3000:]
