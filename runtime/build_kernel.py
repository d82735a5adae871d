"""cffi build script (API mode) for ganpack._kernel, the C dense-stack kernel in csrc/.

The declarations come from the real headers, csrc/ganpack_kernel.h (the kernel) then csrc/ganpack.h
(a whole model from a ganpack-c file), with their preprocessor lines dropped (cdef reads declarations
only; ganpack.h's #include of ganpack_kernel.h goes with them). Run by setuptools through `cffi_modules`.
No -march flags: the kernel picks AVX-512, AVX2+FMA or portable code at run time. The flags are
plain GCC/Clang ones that every target accepts (tests/test_portable.py compiles every source with
them for ARM64, where the x86 files compile to nothing and the portable path is the kernel).
"""

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
KERNEL_HEADER = CSRC / "ganpack_kernel.h"
MODEL_HEADER = CSRC / "ganpack.h"  # after the kernel's: it uses gp_status
# csrc/*.c but the example; csrc/tools/ (ganpack-sample, with its main) is a subfolder, not globbed
SOURCES = [str(path.relative_to(ROOT)) for path in sorted(CSRC.glob("*.c")) if path.name != "example.c"]
# Every header the sources include (the public one and the internal ones: gp_isa.h, gp_math.h,
# dense_stack_layer.h, ...): a change to any of them rebuilds the extension.
HEADERS = [str(path.relative_to(ROOT)) for path in sorted(CSRC.glob("*.h"))]
# -g0 after Python's own -g: the wheel's kernel carries no debug information (3.1 MB of its 3.5 MB
# with it); the make builds in csrc/ keep -g for the sanitizers and debuggers.
COMPILE_ARGS = ["-O2", "-std=c11", "-ffp-contract=off", "-fvisibility=hidden", "-g0"]


def header_declarations(header: Path) -> str:
    return "\n".join(line for line in header.read_text().splitlines() if not line.lstrip().startswith("#"))


def declarations() -> str:
    """Every public declaration: the kernel's (ganpack_kernel.h), then the model's (ganpack.h)."""
    return header_declarations(KERNEL_HEADER) + "\n" + header_declarations(MODEL_HEADER)


ffi = FFI()
ffi.cdef(declarations())
ffi.set_source(
    "ganpack._kernel",
    '#include "ganpack.h"',
    sources=SOURCES,
    include_dirs=[str(CSRC.relative_to(ROOT))],
    depends=HEADERS,
    extra_compile_args=COMPILE_ARGS,
    py_limited_api=True,
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
