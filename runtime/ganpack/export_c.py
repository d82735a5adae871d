"""`ganpack export-c PACKAGE OUT`: a model package as one ganpack-c file, which C reads (csrc/ganpack.h).

docs/embedding-format.md gives the format ("ganpack-c", version 1) byte by byte: a 64-byte header,
the class names, the generator, the discriminator, then a CRC-32 of all of it. Each network is
written as the C backend hands it to the kernel (backends/c_backend.py, NativeStack): layer 0 holds
W_x only, and a conditional network's one-hot columns become the class-bias table W_y^T + b_0,
computed by the same float32 expression. So gp_model_sample's digits are Model.sample's on the c
backend, bit for bit.
"""

import argparse
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from ganpack.archive import PathLike
from ganpack.atomic import replacing, writable_file
from ganpack.contract import (
    IDENTITY,
    LEAKY_RELU,
    NORMAL,
    RELU,
    SIGMOID,
    TANH,
    UNIFORM,
)
from ganpack.dense_stack import DenseStack
from ganpack.errors import InputError, PackageError
from ganpack.latents import GENERATOR, scale_offset

MAGIC = b"GPKC"
VERSION = 1
# magic, version, header_bytes, file_bytes, latent stream and distribution, latent scale and offset,
# image height and width, classes, names_bytes, generator and discriminator layers, 8 reserved zeros
HEADER = struct.Struct("<4sIIIIIffIIIIII8x")  # 64 bytes
STREAM_CODES = {GENERATOR: 1}  # the only stream C draws; numpy-pcg64 (format_version 1) has no code
DISTRIBUTION_CODES = {NORMAL: 0, UNIFORM: 1}  # gp_latent_distribution
ACTIVATION_CODES = {IDENTITY: 0, LEAKY_RELU: 1, RELU: 2, TANH: 3, SIGMOID: 4}  # gp_activation
# what a reader accepts (csrc/ganpack.h): refused here first, so that no file C would refuse is written
MAX_LAYERS, MAX_WIDTH, MAX_SIDE = 64, 1 << 20, 4096
MAX_NAME_BYTES, MAX_NAMES_BYTES, MAX_FILE_BYTES = 255, 1 << 20, 1 << 31


def export_c(package: PathLike, out: PathLike) -> Path:
    """Write the ganpack-c file of `package` (a folder, a .zip, or the name of a package inside
    ganpack, as ganpack.load takes it) to `out`, whole or not at all (ganpack.atomic)."""
    path = writable_file(out, "model.gpkc")  # before any work
    data = ganpack_c_bytes(package)
    try:
        with replacing(path) as file:
            file.write(data)
    except OSError as error:
        raise InputError(f"cannot write '{out}': {error.strerror or error}") from None
    return path


def ganpack_c_bytes(package: PathLike) -> bytes:
    """The ganpack-c file of `package`, in memory."""
    from ganpack.model import load

    model = load(package, backend="numpy")  # verified as for sampling; numpy: no native stack is built
    manifest, generator, discriminator = model.manifest, model.generator_stack, model.discriminator_stack
    if manifest.latent.generator not in STREAM_CODES:
        raise PackageError(f"model package '{package}' draws its latents with {manifest.latent.generator} "
                           f"(format_version {manifest.format_version}), which a ganpack-c file cannot "
                           f"hold (only {GENERATOR}); export its checkpoint again with this ganpack "
                           "(python -m export)")
    latent, (height, width) = manifest.latent, manifest.image.shape
    names = _names_block(list(manifest.classes.names) if manifest.classes is not None else [])
    classes = manifest.classes.count if manifest.classes is not None else 0
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE and generator.widths[-1] == height * width
            and discriminator.input_width == height * width and discriminator.widths[-1] == 1
            and discriminator.layers[-1].activation == SIGMOID):
        raise PackageError(f"'{package}': {height}x{width} images from generator widths {generator.widths} and "
                           f"discriminator widths {discriminator.widths} (last activation "
                           f"{discriminator.layers[-1].activation}) do not make a ganpack-c model")
    scale, offset = scale_offset(latent.distribution, latent.parameters)  # float32, as Model's stream
    body = names + _network(generator, "generator") + _network(discriminator, "discriminator")
    size = HEADER.size + len(body) + 4
    if size > MAX_FILE_BYTES:
        raise PackageError(f"'{package}': its ganpack-c file would take {size:,} bytes, over the {MAX_FILE_BYTES:,} "
                           "a reader takes")
    header = HEADER.pack(MAGIC, VERSION, HEADER.size, size, STREAM_CODES[latent.generator],
                         DISTRIBUTION_CODES[latent.distribution], scale, offset, height, width, classes, len(names),
                         len(generator.layers), len(discriminator.layers))
    return header + body + struct.pack("<I", zlib.crc32(body, zlib.crc32(header)))


def export_c_command(args: argparse.Namespace) -> int:
    """`ganpack export-c PACKAGE OUT`."""
    path = export_c(args.package, args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes, ganpack-c version {VERSION}; model: {args.package})",
          file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------

def _names_block(names: list[str]) -> bytes:
    """Each name in UTF-8 and a NUL, then zeros up to a multiple of 4 bytes."""
    encoded = [name.encode("utf-8") for name in names]
    for name, data in zip(names, encoded, strict=True):
        if not 1 <= len(data) <= MAX_NAME_BYTES or b"\0" in data:
            raise PackageError(f"class name {name!r}: a ganpack-c file takes 1 to {MAX_NAME_BYTES} bytes of UTF-8 "
                               "without NUL")
    block = b"".join(data + b"\0" for data in encoded)
    block += bytes(-len(block) % 4)
    if len(block) > MAX_NAMES_BYTES:
        raise PackageError(f"the class names take {len(block):,} bytes, over the {MAX_NAMES_BYTES:,} a reader takes")
    return block


def _network(stack: DenseStack, name: str) -> bytes:
    """widths, (activation, alpha) per layer, (weight, bias) per layer, then the class-bias table."""
    widths = [stack.input_width, *stack.widths[1:]]  # widths[0] without the one-hot columns
    if not 1 <= len(stack.layers) <= MAX_LAYERS or not all(1 <= w <= MAX_WIDTH for w in widths):
        raise PackageError(f"{name}: {len(stack.layers)} layers of widths {widths}; a ganpack-c reader takes "
                           f"1 to {MAX_LAYERS} layers of widths 1 to {MAX_WIDTH:,}")
    parts = [np.asarray(widths, "<u4").tobytes()]
    parts += [struct.pack("<If", ACTIVATION_CODES[layer.activation], layer.alpha if layer.activation == LEAKY_RELU
                          else 0.0) for layer in stack.layers]
    for index, layer in enumerate(stack.layers):
        weight = layer.weight[:, :stack.input_width] if index == 0 else layer.weight  # (out, in): W_x for layer 0
        parts += [np.ascontiguousarray(weight, "<f4").tobytes(), np.ascontiguousarray(layer.bias, "<f4").tobytes()]
    if stack.classes:  # the table NativeStack gives the kernel (DenseStack.class_bias): the same bits
        table = stack.class_bias()
        if not np.isfinite(table).all():
            raise PackageError(f"{name}: the class-bias table W_y^T + b_0 overflows float32")
        parts.append(table.astype("<f4").tobytes())  # (classes, widths[1])
    return b"".join(parts)
