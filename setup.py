"""Only what pyproject.toml cannot say: the cffi extension, built as one abi3 wheel for CPython 3.10+."""

from setuptools import setup

setup(
    cffi_modules=["runtime/build_kernel.py:ffi"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
