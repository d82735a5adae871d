"""cffi build script (API mode) for ganpack._kernel, the C dense-stack kernel in csrc/.

The declarations come from the real header, csrc/ganpack_kernel.h, with its preprocessor
lines dropped (cdef reads declarations only). Run by setuptools through `cffi_modules`.
No -march flags: the kernel picks AVX-512, AVX2+FMA or portable code at run time. The flags are
plain GCC/Clang ones that every target accepts (tests/test_portable.py compiles every source with
them for ARM64, where the x86 files compile to nothing and the portable path is the kernel).
"""

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
HEADER = CSRC / "ganpack_kernel.h"
SOURCES = [str(path.relative_to(ROOT)) for path in sorted(CSRC.glob("*.c")) if path.name != "example.c"]
# Every header the sources include (the public one and the internal ones: gp_isa.h, gp_math.h,
# dense_stack_layer.h, ...): a change to any of them rebuilds the extension.
HEADERS = [str(path.relative_to(ROOT)) for path in sorted(CSRC.glob("*.h"))]
# -g0 after Python's own -g: the wheel's kernel carries no debug information (3.1 MB of its 3.5 MB
# with it); the make builds in csrc/ keep -g for the sanitizers and debuggers.
COMPILE_ARGS = ["-O2", "-std=c11", "-ffp-contract=off", "-fvisibility=hidden", "-g0"]


def declarations() -> str:
    return "\n".join(line for line in HEADER.read_text().splitlines() if not line.lstrip().startswith("#"))


ffi = FFI()
ffi.cdef(declarations())
ffi.set_source(
    "ganpack._kernel",
    '#include "ganpack_kernel.h"',
    sources=SOURCES,
    include_dirs=[str(CSRC.relative_to(ROOT))],
    depends=HEADERS,
    extra_compile_args=COMPILE_ARGS,
    py_limited_api=True,
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
