"""The AVX-512 path through Python on a CPU without AVX-512: the kernel built a second time, into a
temporary folder, with that path's intrinsics from SIMDe (csrc/tests/simde_avx512.h, as
`make -C csrc test-avx512-emulated` builds it), then the kernel's comparisons with numpy and
PyTorch run on it in a child process: test_kernel.py's every-ISA test, the property test over
every ISA, and test_precision.py's bf16 tests of the kernel, avx512 among their ISAs.

The installed extension and the wheel are untouched: SIMDe (Debian's libsimde-dev) is a test-only
dependency. gp_fma_ceiling is left out of this build (its AVX-512 loop is real AVX-512, and no
test here measures the ceiling), so the module holds no AVX-512 instruction at all."""

import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

kernel = pytest.importorskip("ganpack.backends.c_backend", reason="the C kernel is not built")
pytest.importorskip("cffi")
ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SIMDE_HEADER = Path("/usr/include/simde/x86/avx512.h")
# The emulated path runs on AVX2 + FMA instructions: a CPU whose best ISA is at least avx2_fma.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not shutil.which("gcc"),
                       reason="needs x86-64 and gcc"),
    pytest.mark.skipif(kernel.lib.gp_best_isa() < kernel.lib.GP_ISA_AVX2_FMA,
                       reason="SIMDe's AVX-512 here is AVX2 + FMA code, which this CPU lacks"),
    pytest.mark.skipif(not SIMDE_HEADER.exists(), reason=f"needs SIMDe ({SIMDE_HEADER}: Debian's libsimde-dev; "
                                                          ".ci/install-cross installs it)"),
]
TESTS = ["tests/test_kernel.py::test_every_isa_matches_numpy",
         "tests/test_properties.py::test_c_kernel_matches_numpy_on_any_stack_batch_and_layout",
         "tests/test_precision.py::test_c_bf16_agrees_with_pytorch_on_every_isa",
         "tests/test_precision.py::test_c_bf16_is_float32_on_the_rounded_weights_bit_for_bit"]
BUILD_SECONDS, RUN_SECONDS = 300, 300  # the whole test: 33-58 s on a loaded 2-core VM, 7-17 s of it the run

# The child: loads the emulated module as ganpack._kernel before ganpack is imported, counts the
# stacks each ISA built, runs the tests on it. argv: the module's path, then pytest's arguments.
CHILD = """
import collections, importlib.util, sys
spec = importlib.util.spec_from_file_location("ganpack._kernel", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules["ganpack._kernel"] = module
from ganpack.backends import c_backend
assert c_backend.lib is module.lib and c_backend.kernel_isa() == "avx512", c_backend.kernel_isa()
built = collections.Counter()
create = c_backend.NativeStack.__init__
def counting_init(self, *args, **kwargs):
    create(self, *args, **kwargs)
    built[self.isa] += 1
c_backend.NativeStack.__init__ = counting_init
import pytest
status = pytest.main(sys.argv[2:])
print("stacks built per ISA:", dict(built), "avx512:", built["avx512"])
sys.exit(int(status))
"""


def load_build_script():
    """runtime/build_kernel.py, the wheel's own cffi build script: its sources, flags, declarations."""
    spec = importlib.util.spec_from_file_location("build_kernel", ROOT / "runtime" / "build_kernel.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def build_emulated_kernel(out: Path) -> Path:
    """ganpack._kernel from the wheel's sources and flags plus -DGP_AVX512_SIMDE; as in the Makefile,
    dense_stack_avx512.c alone gets -mavx2 -mfma (cffi has no per-file flags: it is compiled first
    and linked in as an object). Returns the module's path."""
    from cffi import FFI

    script = load_build_script()
    avx512 = out / "dense_stack_avx512_simde.o"
    subprocess.run(["gcc", *script.COMPILE_ARGS, "-fPIC", "-DGP_AVX512_SIMDE", "-mavx2", "-mfma", "-Wno-psabi",
                    f"-I{CSRC}", f"-I{CSRC / 'tests'}", "-c", str(CSRC / "dense_stack_avx512.c"), "-o", str(avx512)],
                   check=True, timeout=BUILD_SECONDS)
    left_out = ("dense_stack_avx512.c", "fma_ceiling.c")
    ffi = FFI()
    ffi.cdef("\n".join(line for line in script.declarations().splitlines()
                       if not line.startswith("gp_status gp_fma_ceiling(")))
    ffi.set_source("ganpack._kernel", '#include "ganpack.h"',
                   sources=[str(ROOT / source) for source in script.SOURCES if not source.endswith(left_out)],
                   include_dirs=[str(CSRC)], define_macros=[("GP_AVX512_SIMDE", None)],
                   extra_compile_args=script.COMPILE_ARGS, extra_objects=[str(avx512)])
    return Path(ffi.compile(tmpdir=str(out)))


def test_the_avx512_path_matches_numpy_and_pytorch_through_simde(tmp_path):
    module = build_emulated_kernel(tmp_path)
    disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(module)], capture_output=True,
                                 text=True, check=True, timeout=BUILD_SECONDS).stdout
    avx512 = re.findall(r"%(?:zmm[0-9]+|k[0-7]\b|[xy]mm(?:1[6-9]|2[0-9]|3[01])\b)", disassembly)
    assert not avx512, f"the emulated module holds AVX-512 instructions: {sorted(set(avx512))}"
    child = subprocess.run([sys.executable, "-c", CHILD, str(module), *TESTS, "-k", "avx512 or any_stack",
                            "-p", "no:cacheprovider", "-q", "-rA"], cwd=ROOT, capture_output=True, text=True,
                           timeout=RUN_SECONDS, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    output = child.stdout + child.stderr
    assert child.returncode == 0, output[-6000:]
    # every selected test ran on the avx512 path: its parametrized cases by name, the property test
    # (which spreads its examples over every ISA) by the stacks it built
    assert len(re.findall(r"^PASSED .*avx512", output, re.MULTILINE)) == 5 + 2, output[-6000:]
    assert re.search(r"^PASSED .*any_stack", output, re.MULTILINE), output[-6000:]
    # 49 measured: 17 from the named tests, 32 from the property test's 150 examples
    built = re.search(r"avx512: (\d+)$", output, re.MULTILINE)
    assert built and int(built.group(1)) >= 30, output[-3000:]
