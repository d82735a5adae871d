"""The C kernel through Python: every ISA this CPU has against numpy, argument checks before C,
and the C test suite itself: strict, under AddressSanitizer + UndefinedBehaviorSanitizer, under
ThreadSanitizer, under valgrind (trimmed grids, GP_TEST_QUICK=1, to fit CI), with the x86 paths
compiled out, for ARM64 under qemu, and with the AVX-512 path emulated by SIMDe. Each suite has a
time limit."""

import os
import platform
import shutil
import signal
import subprocess
import time
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
