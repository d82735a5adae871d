"""A ganpack-c file (docs/embedding-format.md) read and edited by the spec alone, not by the writer's
code (ganpack.export_c): for tests/test_export_c.py."""

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

ACTIVATION_CODES = {"LeakyRelu": 1, "Relu": 2, "Tanh": 3, "Sigmoid": 4}  # gp_activation (0: none follows)


@dataclass
class Network:
    widths: list[int]
    activations: list[tuple[int, np.float32]]  # (gp_activation code, alpha) per layer
    weights: list[np.ndarray]  # (widths[l + 1], widths[l]) float32
    biases: list[np.ndarray]  # (widths[l + 1],)
    table: np.ndarray | None  # (classes, widths[1]), or None


@dataclass
class GanpackC:
    header: dict
    names: list[str]
    generator: Network
    discriminator: Network
    at: dict  # where each part starts: "names", "generator.widths", "generator.weight.1", ..., "crc"


HEADER_FIELDS = ("magic", "version", "header_bytes", "file_bytes", "latent_stream", "latent_distribution",
                 "latent_scale", "latent_offset", "image_height", "image_width", "classes", "names_bytes",
                 "generator_layers", "discriminator_layers", "reserved")
HEADER = struct.Struct("<4s5I2f6I8s")
OFFSETS = {name: 4 * index for index, name in enumerate(HEADER_FIELDS)}  # every field but reserved: 4 bytes


def parse(data: bytes) -> GanpackC:
    header = dict(zip(HEADER_FIELDS, HEADER.unpack_from(data)))
    at = {"names": 64}
    names_block = data[64:64 + header["names_bytes"]]
    names = [name.decode() for name in names_block.rstrip(b"\0").split(b"\0")] if header["classes"] else []
    offset = 64 + header["names_bytes"]
    networks = []
    for name in ("generator", "discriminator"):
        layers = header[f"{name}_layers"]
        at[f"{name}.widths"] = offset
        widths = [int(w) for w in np.frombuffer(data, "<u4", layers + 1, offset)]
        offset += 4 * (layers + 1)
        at[f"{name}.activations"] = offset
        activations = [(code, np.float32(alpha)) for code, alpha in struct.iter_unpack("<If", data[offset:offset + 8 *
                                                                                                   layers])]
        offset += 8 * layers
        weights, biases = [], []
        for layer in range(layers):
            at[f"{name}.weight.{layer}"] = offset
            weights.append(np.frombuffer(data, "<f4", widths[layer + 1] * widths[layer], offset).reshape(
                widths[layer + 1], widths[layer]))
            offset += weights[-1].nbytes
            at[f"{name}.bias.{layer}"] = offset
            biases.append(np.frombuffer(data, "<f4", widths[layer + 1], offset))
            offset += biases[-1].nbytes
        table = None
        if header["classes"]:
            at[f"{name}.table"] = offset
            table = np.frombuffer(data, "<f4", header["classes"] * widths[1], offset).reshape(header["classes"],
                                                                                             widths[1])
            offset += table.nbytes
        networks.append(Network(widths, activations, weights, biases, table))
    at["crc"] = offset
    assert offset + 4 == len(data), "the file holds bytes after its CRC-32"
    return GanpackC(header, names, networks[0], networks[1], at)


def with_crc(data: bytes) -> bytes:
    """`data` with its last 4 bytes made the CRC-32 of the rest again."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def gemm_layers(path) -> list[tuple[np.ndarray, np.ndarray, int, np.float32]]:
    """(weight (out, in), bias, gp_activation code, alpha) of each Gemm of an ONNX graph, read directly."""
    graph = onnx.load(str(path)).graph
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    layers = []
    for index, node in enumerate(graph.node):
        if node.op_type != "Gemm":
            continue
        assert {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}.get("transB") == 1
        after = graph.node[index + 1] if index + 1 < len(graph.node) else None
        code = ACTIVATION_CODES.get(after.op_type, 0) if after is not None else 0
        alpha = np.float32(after.attribute[0].f) if code == 1 else np.float32(0)
        layers.append((values[node.input[1]], values[node.input[2]], code, alpha))
    return layers


# ---------------------------------------------------------------------------------------------
# edits: each a function (bytes, parse(bytes).at) -> bytes


def put(fmt, offset, *values, crc=True):
    """A mutation: `values` packed at `offset` (a number, or a key of the parsed file's `at` plus a byte
    offset), then the CRC-32 made right again (crc=True), so that only the value is wrong."""
    def mutate(data, at):
        where = offset if isinstance(offset, int) else at[offset[0]] + offset[1]
        changed = bytearray(data)
        struct.pack_into(fmt, changed, where, *values)
        return with_crc(bytes(changed)) if crc else bytes(changed)
    return mutate


def header(field, value, fmt="<I", crc=True):
    return put(fmt, OFFSETS[field], value, crc=crc)


def cut_after(part, extra=0):
    """The file ended inside `part`, its file_bytes and CRC-32 made right: only the structure is short."""
    def mutate(data, at):
        body = bytearray(data[:at[part] + extra])
        struct.pack_into("<I", body, OFFSETS["file_bytes"], len(body) + 4)
        return bytes(body) + struct.pack("<I", zlib.crc32(body))
    return mutate
