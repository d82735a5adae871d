"""The kernel off x86 SIMD: the Python extension's sources and flags build for ARM64.

runtime/build_kernel.py compiles every csrc/*.c into the extension with the same flags on every
machine, and the sdist compiles it wherever it is installed. On ARM64 the x86 files must compile
to nothing and the flags must be ones that compiler accepts. This compiles each source with the
ARM64 cross compiler and exactly those flags (plus -fPIC, which setuptools adds, and -Werror with
the warnings the kernel is kept clean of), then checks which objects define code.

The C suites themselves run on the portable path alone (make test-portable) and on ARM64 under
qemu (make test-aarch64) in tests/test_kernel.py; the property test of the portable path against
numpy is in tests/test_properties.py.
"""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CROSS_CC, CROSS_NM = "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-nm"
X86_ONLY = {"dense_stack_avx2.c", "dense_stack_avx512.c", "latents_avx2.c"}
WARNINGS = ["-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror"]

needs_cross = pytest.mark.skipif(
    not (shutil.which(CROSS_CC) and shutil.which(CROSS_NM)),
    reason="needs aarch64-linux-gnu-gcc (Debian's gcc-aarch64-linux-gnu; .ci/run installs it)")


def build_script():
    spec = importlib.util.spec_from_file_location("build_kernel", ROOT / "runtime" / "build_kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def defined_code(obj: Path) -> list[str]:
    """The functions and data an object file defines (nm's T, t, D, d, B, b, R, r symbols)."""
    listing = subprocess.run([CROSS_NM, "--defined-only", str(obj)], capture_output=True, text=True, check=True)
    return [line.split()[-1] for line in listing.stdout.splitlines() if line.split()[1] in "TtDdBbRr"]


def test_the_build_compiles_every_source_but_the_example_with_plain_flags():
    script = build_script()
    names = sorted(Path(source).name for source in script.SOURCES)
    assert names == sorted(path.name for path in (ROOT / "csrc").glob("*.c") if path.name != "example.c")
    assert not [flag for flag in script.COMPILE_ARGS if flag.startswith(("-march", "-mavx", "-mfma", "-ffast-math"))]


@needs_cross
@pytest.mark.slow
def test_every_source_compiles_for_arm64_with_the_extension_flags(tmp_path):
    script = build_script()
    objects = {}
    for source in script.SOURCES:
        obj = tmp_path / (Path(source).stem + ".o")
        command = [CROSS_CC, *script.COMPILE_ARGS, "-fPIC", *WARNINGS, f"-I{ROOT / 'csrc'}",
                   "-c", str(ROOT / source), "-o", str(obj)]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, f"{source} for ARM64: {done.stderr[-2000:]}"
        objects[Path(source).name] = obj
    for name, obj in objects.items():
        symbols = defined_code(obj)
        if name in X86_ONLY:
            assert symbols == [], f"{name} should compile to nothing on ARM64, defines {symbols}"
        else:
            assert symbols, f"{name} defines nothing on ARM64"
    assert "gp_layer_forward_portable" in defined_code(objects["dense_stack_portable.c"])
