"""`ganpack export-c`: the ganpack-c file (docs/embedding-format.md) read back by the spec alone
(tests/gpkc.py) against the ONNX graphs, and the command's errors; then the file opened by the C
library through cffi (gp_model_*, csrc/ganpack.h), bit for bit against ganpack.load(...,
backend="c"), and hostile files refused with the documented status; slow: the C program
(ganpack-sample) and the installed library (make install, pkg-config), against Python."""

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import ganpack
from ganpack.archive import write_archive
from ganpack.cli import main
from ganpack.errors import PackageError, run_command
from ganpack.export_c import export_c, ganpack_c_bytes
from ganpack.package import BUILT_IN
from gpkc import cut_after, gemm_layers, header, parse, put
from packages import make_package

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "n\u00fcll"]  # 52 bytes with padding


# ---------------------------------------------------------------------------------------------
# packages


@pytest.fixture(scope="module")
def architectures(tmp_path_factory):
    """Packages of other shapes (tests/packages.py): three layers, alpha 0.2, 64 latents."""
    root = tmp_path_factory.mktemp("packages")
    return {name: make_package(root / name, name, seed=index)[0]
            for index, name in enumerate(("three_layers", "alpha_0.2", "hidden_256"))}


def edited_package(tmp_path, name, edit):
    """A copy of a built-in package with its manifest edited (the manifest carries no checksum)."""
    package = tmp_path / f"{name}-edited"
    shutil.copytree(BUILT_IN / name, package)
    manifest = json.loads((package / "manifest.json").read_text())
    edit(manifest)
    (package / "manifest.json").write_text(json.dumps(manifest))
    return package


def legacy_package(tmp_path):
    """A format_version 1 package: latents from numpy-pcg64, which C does not draw."""
    def edit(manifest):
        del manifest["latent"]["generator"]
        manifest["format_version"] = 1
    return edited_package(tmp_path, "default", edit)


def renamed_package(tmp_path):
    """The conditional package with longer names (one not ASCII), so that the names block is padded."""
    return edited_package(tmp_path, "conditional", lambda manifest: manifest["classes"].update(names=NAMES))


# ---------------------------------------------------------------------------------------------
# quick: the layout


@pytest.mark.parametrize("name", ["default", "conditional"])
def test_the_header_describes_the_package(name):
    data = ganpack_c_bytes(name)
    parsed = parse(data)
    model = ganpack.load(name, backend="numpy")
    classes = len(model.classes) if model.classes else 0
    names_bytes = -(-sum(len(n.encode()) + 1 for n in model.classes or ()) // 4) * 4
    assert parsed.header == {
        "magic": b"GPKC", "version": 1, "header_bytes": 64, "file_bytes": len(data), "latent_stream": 1,
        "latent_distribution": 0, "latent_scale": 1.0, "latent_offset": 0.0, "image_height": 28, "image_width": 28,
        "classes": classes, "names_bytes": names_bytes, "generator_layers": 2, "discriminator_layers": 2,
        "reserved": bytes(8)}
    assert parsed.names == list(model.classes or [])
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    assert parsed.generator.widths == [100, 128, 784] and parsed.discriminator.widths == [784, 128, 1]
    assert len(data) == {"default": 858_816, "conditional": 869_076}[name]  # docs/embedding-export quotes them


@pytest.mark.parametrize("name", ["default", "conditional"])
def test_the_weights_are_the_onnx_graphs_own(name):
    """Layer 0 holds W_x; a conditional graph's one-hot columns W_y are the class-bias table W_y^T + b_0."""
    parsed = parse(ganpack_c_bytes(name))
    for network, file in ((parsed.generator, "generator.onnx"), (parsed.discriminator, "discriminator.onnx")):
        layers = gemm_layers(BUILT_IN / name / file)
        assert [(code, alpha) for _, _, code, alpha in layers] == network.activations
        x_width = network.widths[0]
        for index, (weight, bias, _, _) in enumerate(layers):
            assert np.array_equal(network.weights[index], weight[:, :x_width] if index == 0 else weight)
            assert np.array_equal(network.biases[index], bias)
        weight, bias = layers[0][0], layers[0][1]
        if parsed.header["classes"]:
            assert weight.shape[1] == x_width + parsed.header["classes"]
            assert np.array_equal(network.table, (weight[:, x_width:].T + bias).astype(np.float32))
        else:
            assert network.table is None and weight.shape[1] == x_width
    assert parsed.generator.activations == [(1, np.float32(0.01)), (3, 0.0)]  # leaky_relu, tanh
    assert parsed.discriminator.activations == [(1, np.float32(0.01)), (4, 0.0)]  # leaky_relu, sigmoid


@pytest.mark.parametrize("architecture, widths, activations", [
    ("three_layers", [100, 128, 256, 784], [(1, np.float32(0.01)), (1, np.float32(0.01)), (3, 0.0)]),
    ("alpha_0.2", [100, 128, 784], [(1, np.float32(0.2)), (3, 0.0)]),
    ("hidden_256", [64, 256, 784], [(1, np.float32(0.01)), (3, 0.0)]),
])
def test_other_shapes_are_written_as_their_graphs(architectures, architecture, widths, activations):
    package = architectures[architecture]
    parsed = parse(ganpack_c_bytes(package))
    assert parsed.generator.widths == widths and parsed.generator.activations == activations
    for network, file in ((parsed.generator, "generator.onnx"), (parsed.discriminator, "discriminator.onnx")):
        for index, (weight, bias, _, _) in enumerate(gemm_layers(package / file)):
            assert np.array_equal(network.weights[index], weight) and np.array_equal(network.biases[index], bias)


def test_class_names_are_nul_terminated_then_padded(tmp_path):
    data = ganpack_c_bytes(renamed_package(tmp_path))
    parsed = parse(data)
    assert parsed.names == NAMES and parsed.header["names_bytes"] == 52
    assert data[64:116] == b"".join(name.encode() + b"\0" for name in NAMES) + b"\0"


@pytest.mark.parametrize("name, reason", [("x" * 256, "1 to 255 bytes"), ("a\0b", "without NUL")])
def test_a_class_name_the_reader_would_refuse_is_refused_first(tmp_path, name, reason):
    def edit(manifest):
        manifest["classes"]["names"][3] = name
    package = edited_package(tmp_path, "conditional", edit)
    with pytest.raises(PackageError, match=f"class name .*{reason}"):
        ganpack_c_bytes(package)


def test_a_uniform_latent_records_high_minus_low_and_low(tmp_path):
    def edit(manifest):
        manifest["latent"].update(distribution="uniform", parameters={"low": -0.3, "high": 0.9})
    header = parse(ganpack_c_bytes(edited_package(tmp_path, "default", edit))).header
    assert header["latent_distribution"] == 1
    assert (header["latent_scale"], header["latent_offset"]) == (np.float32(0.9 - -0.3), np.float32(-0.3))


def test_a_folder_a_zip_and_a_name_give_the_same_file(tmp_path):
    write_archive(BUILT_IN / "conditional", tmp_path / "conditional.zip")
    data = ganpack_c_bytes("conditional")
    assert ganpack_c_bytes(BUILT_IN / "conditional") == data
    assert ganpack_c_bytes(str(tmp_path / "conditional.zip")) == data


def test_the_command_writes_the_file_whole_and_says_so(tmp_path, capsys):
    out = tmp_path / "digits.gpkc"
    out.write_bytes(b"an older file")
    assert main(["export-c", "default", str(out)]) == 0
    assert out.read_bytes() == ganpack_c_bytes("default")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"wrote {out} (858,816 bytes, ganpack-c version 1")
    assert [p.name for p in tmp_path.iterdir()] == ["digits.gpkc"]  # no partial file left


def command_error(capsys, argv) -> str:
    """What a person sees: status 2, one line on stderr, nothing on stdout, no traceback."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_command(main, argv)
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert exit_.value.code == 2 and captured.out == "" and "Traceback" not in captured.err
    return line


@pytest.mark.parametrize("case", ["no such name", "no such folder", "legacy stream", "a file, not a zip",
                                  "output folder missing", "output is a folder"])
def test_mistakes_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a package")
    (tmp_path / "taken").mkdir()
    package, out, expected = {
        "no such name": ("nosuch", "x.gpkc", "error: 'nosuch' is neither a model package (no such file or folder) "
                                             "nor the name of one inside ganpack (conditional, default)"),
        "no such folder": ("no/such", "x.gpkc", "error: model package 'no/such' is not a folder"),
        "legacy stream": (str(legacy_package(tmp_path)), "x.gpkc", "numpy-pcg64"),
        "a file, not a zip": ("notes.txt", "x.gpkc", "error: 'notes.txt' is a file but not a model package archive"),
        "output folder missing": ("default", "missing/x.gpkc", "error: output folder 'missing' does not exist "
                                                               "(for 'missing/x.gpkc')"),
        "output is a folder": ("default", "taken", "error: output 'taken' is a folder"),
    }[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    line = command_error(capsys, ["export-c", package, out])
    assert line.startswith(expected) or expected in line, line
    if case == "legacy stream":
        assert line.startswith(f"error: model package '{package}' draws its latents with numpy-pcg64")
    assert sorted(p.name for p in tmp_path.iterdir()) == before and list((tmp_path / "taken").iterdir()) == []


# ---------------------------------------------------------------------------------------------
# through cffi: the C library reads the file (csrc/ganpack.h)


@pytest.fixture(scope="module")
def c():
    kernel = pytest.importorskip("ganpack._kernel", reason="the C kernel is not built")
    if not hasattr(kernel.lib, "gp_model_open_memory"):
        pytest.skip("this build of the C kernel has no gp_model_* (csrc/ganpack.h)")
    return kernel.ffi, kernel.lib


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The ganpack-c bytes of the built-in packages, and of the conditional one with padded names."""
    renamed = renamed_package(tmp_path_factory.mktemp("renamed"))
    return {"default": ganpack_c_bytes("default"), "conditional": ganpack_c_bytes("conditional"),
            "renamed": ganpack_c_bytes(renamed)}


def open_bytes(c, data, threads=0, why_size=256):
    """gp_model_open_memory: (status, the model (freed with its Python owner) or None, why)."""
    ffi, lib = c
    out, why = ffi.new("gp_model **"), ffi.new("char[]", why_size)
    status = lib.gp_model_open_memory(ffi.from_buffer(data), len(data), lib.GP_ISA_AUTO, threads, out, why,
                                      why_size)
    if status != lib.GP_OK:
        assert out[0] == ffi.NULL
        return status, None, ffi.string(why).decode()
    return status, ffi.gc(out[0], lib.gp_model_free), ffi.string(why).decode()


def opened(c, data, threads=0):
    status, model, why = open_bytes(c, data, threads)
    assert status == c[1].GP_OK, why
    return model


def labels_or_null(c, labels):
    return c[0].NULL if labels is None else c[0].from_buffer("int32_t[]", np.ascontiguousarray(labels, np.int32))


def c_sample(c, model, n, seed, labels=None, first_row=0, output="uint8"):
    ffi, lib = c
    out = np.empty((n, 28, 28), np.uint8 if output == "uint8" else np.float32)
    status = lib.gp_model_sample(model, seed, first_row, n, labels_or_null(c, labels), ffi.from_buffer(out),
                                 lib.GP_U8 if output == "uint8" else lib.GP_F32)
    assert status == lib.GP_OK
    return out


def c_score(c, model, images, labels=None):
    ffi, lib = c
    probabilities = np.empty(len(images), np.float32)
    code = lib.GP_U8 if images.dtype == np.uint8 else lib.GP_F32
    assert lib.gp_model_score(model, ffi.from_buffer(np.ascontiguousarray(images)), code, len(images),
                              labels_or_null(c, labels), ffi.from_buffer("float[]", probabilities)) == lib.GP_OK
    return probabilities


SEEDS = [0, 1, 2 ** 64 - 1]


@pytest.mark.parametrize("n", [1, 64, 1000])
@pytest.mark.parametrize("seed", SEEDS)
def test_c_draws_the_digits_python_draws(c, exported, n, seed):
    model = opened(c, exported["default"])
    python = ganpack.load("default", backend="c")
    assert np.array_equal(c_sample(c, model, n, seed), python.sample(n, seed))


@pytest.mark.parametrize("n", [1, 64, 1000])
@pytest.mark.parametrize("seed", SEEDS)
def test_c_draws_the_conditional_digits_python_draws(c, exported, n, seed):
    model = opened(c, exported["conditional"])
    python = ganpack.load("conditional", backend="c")
    labels = np.random.default_rng(seed % 1000).integers(0, 10, n).astype(np.int32)
    assert np.array_equal(c_sample(c, model, n, seed, np.full(n, 7)), python.sample(n, seed, label=7))
    assert np.array_equal(c_sample(c, model, n, seed, labels), python.sample(n, seed, labels=labels))


@pytest.mark.parametrize("name", ["default", "conditional"])
def test_floats_rows_latents_and_generate_agree_too(c, exported, name):
    ffi, lib = c
    model, python = opened(c, exported[name]), ganpack.load(name, backend="c")
    labels = None if python.classes is None else np.arange(100, dtype=np.int32) % 10
    assert np.array_equal(c_sample(c, model, 100, 5, labels, output="float"),
                          python.sample(100, 5, output="float", labels=labels))
    rows = None if labels is None else labels[:40]
    assert np.array_equal(c_sample(c, model, 40, 5, rows, first_row=60), python.sample(100, 5, labels=labels)[60:])
    z = np.empty((100, 100), np.float32)
    assert lib.gp_model_latents(model, 5, 0, 100, ffi.from_buffer("float[]", z)) == lib.GP_OK
    assert np.array_equal(z, python.latents(100, 5))
    images = np.empty((100, 28, 28), np.uint8)
    assert lib.gp_model_generate(model, ffi.from_buffer("float[]", z), 100, labels_or_null(c, labels),
                                 ffi.from_buffer(images), lib.GP_U8) == lib.GP_OK
    assert np.array_equal(images, python.generate(z, labels=labels))


@pytest.mark.parametrize("name", ["default", "conditional"])
def test_c_scores_as_python_does(c, exported, name):
    """The same kernel path (the discriminator from pixels, sigmoid in C): the same bits."""
    model, python = opened(c, exported[name]), ganpack.load(name, backend="c")
    labels = None if python.classes is None else np.arange(300, dtype=np.int32) % 10
    images = python.sample(300, 3, labels=labels)
    assert np.array_equal(c_score(c, model, images, labels), python.score(images, labels=labels))
    floats = python.sample(300, 3, output="float", labels=labels)
    assert np.array_equal(c_score(c, model, floats, labels), python.score(floats, labels=labels))


@pytest.mark.parametrize("architecture", ["three_layers", "alpha_0.2", "hidden_256"])
def test_other_shapes_draw_and_score_as_in_python(c, architectures, architecture):
    package = architectures[architecture]
    model, python = opened(c, ganpack_c_bytes(package)), ganpack.load(package, backend="c")
    images = c_sample(c, model, 200, 11)
    assert np.array_equal(images, python.sample(200, 11))
    assert np.array_equal(c_score(c, model, images), python.score(images))


def test_threads_do_not_change_the_bits(c, exported):
    one, two, per_cpu = (opened(c, exported["conditional"], threads) for threads in (1, 2, 0))
    labels = np.arange(2000, dtype=np.int32) % 10
    expected = c_sample(c, one, 2000, 9, labels)
    assert c[1].gp_model_threads(one) == 1
    assert np.array_equal(c_sample(c, two, 2000, 9, labels), expected)
    assert np.array_equal(c_sample(c, per_cpu, 2000, 9, labels), expected)


def test_the_model_s_facts(c, exported):
    ffi, lib = c
    for name, classes in (("default", []), ("conditional", [str(i) for i in range(10)]), ("renamed", NAMES)):
        model = opened(c, exported[name])
        assert (lib.gp_model_latent_dim(model), lib.gp_model_image_height(model), lib.gp_model_image_width(model),
                lib.gp_model_classes(model)) == (100, 28, 28, len(classes))
        assert [ffi.string(lib.gp_model_class_name(model, i)).decode() for i in range(len(classes))] == classes
        assert lib.gp_model_class_name(model, len(classes)) == ffi.NULL
        assert lib.gp_model_class_name(model, -1) == ffi.NULL
        assert lib.gp_model_isa(model) == lib.gp_best_isa()  # what backend="c" runs by default


def test_labels_are_given_exactly_for_a_conditional_model(c, exported):
    ffi, lib = c
    unconditional, conditional = opened(c, exported["default"]), opened(c, exported["conditional"])
    out = np.full((2, 28, 28), 17, np.uint8)
    labels = np.array([3, 10], np.int32)  # 10 is out of range
    assert lib.gp_model_sample(unconditional, 1, 0, 2, labels_or_null(c, [3, 3]), ffi.from_buffer(out),
                               lib.GP_U8) == lib.GP_ERR_ARGUMENT
    assert lib.gp_model_sample(conditional, 1, 0, 2, ffi.NULL, ffi.from_buffer(out), lib.GP_U8) == lib.GP_ERR_ARGUMENT
    assert lib.gp_model_sample(conditional, 1, 0, 2, labels_or_null(c, labels), ffi.from_buffer(out),
                               lib.GP_U8) == lib.GP_ERR_INPUT
    assert (out == 17).all()  # nothing written


def test_the_file_opens_from_disk(c, tmp_path):
    ffi, lib = c
    path = export_c("conditional", tmp_path / "digits.gpkc")
    out, why = ffi.new("gp_model **"), ffi.new("char[]", 256)
    assert lib.gp_model_open(str(path).encode(), lib.GP_ISA_AUTO, 0, out, why, 256) == lib.GP_OK
    model = ffi.gc(out[0], lib.gp_model_free)
    labels = np.arange(64, dtype=np.int32) % 10
    assert np.array_equal(c_sample(c, model, 64, 2, labels), ganpack.load("conditional", backend="c").sample(
        64, 2, labels=labels))
    missing = tmp_path / "missing.gpkc"
    assert lib.gp_model_open(str(missing).encode(), lib.GP_ISA_AUTO, 0, out, why, 256) == lib.GP_ERR_FILE
    assert out[0] == ffi.NULL and str(missing) in ffi.string(why).decode()
    assert lib.gp_model_open(str(tmp_path).encode(), lib.GP_ISA_AUTO, 0, out, why, 256) == lib.GP_ERR_FILE


# ---------------------------------------------------------------------------------------------
# through cffi: hostile files (docs/embedding-format.md, "What a reader refuses")


NAN, INF = float("nan"), float("inf")
HOSTILE = [  # (case, which file, mutation, status, what `why` says)
    ("empty", "default", lambda d, at: b"", "CORRUPT", ()),
    ("other bytes", "default", lambda d, at: b"PK\x03\x04" + d[4:], "FORMAT", ("magic",)),
    ("magic cut short", "default", lambda d, at: d[:2], "CORRUPT", ()),
    ("header cut at 8", "default", lambda d, at: d[:8], "CORRUPT", ("truncated",)),
    ("header cut at 63", "default", lambda d, at: d[:63], "CORRUPT", ("truncated",)),
    ("header only", "default", lambda d, at: d[:64], "CORRUPT", ()),
    ("cut inside a weight", "default", lambda d, at: d[:at["generator.weight.1"] + 10], "CORRUPT", ()),
    ("CRC cut", "default", lambda d, at: d[:-1], "CORRUPT", ()),
    ("a byte appended", "default", lambda d, at: d + b"\0", "CORRUPT", ()),
    ("cut inside a weight, sizes and CRC fixed", "default", cut_after("discriminator.weight.1", 8), "CORRUPT",
     ("truncated",)),
    ("cut before the table, sizes and CRC fixed", "conditional", cut_after("discriminator.table"), "CORRUPT", ()),
    ("wrong magic", "default", header("magic", b"GPKD", "<4s", crc=False), "FORMAT", ("magic",)),
    ("wrong magic, CRC fixed", "default", header("magic", b"GPKD", "<4s"), "FORMAT", ("magic",)),
    ("version 2", "default", header("version", 2, crc=False), "VERSION", ("version",)),
    ("version 2, CRC fixed", "default", header("version", 2), "VERSION", ("version",)),
    ("version 0", "default", header("version", 0), "VERSION", ("version",)),
    ("header_bytes 68", "default", header("header_bytes", 68), "CORRUPT", ("header_bytes",)),
    ("file_bytes 4 short", "default", lambda d, at: header("file_bytes", len(d) - 4)(d, at), "CORRUPT",
     ("file_bytes",)),
    ("latent stream 0", "default", header("latent_stream", 0), "CORRUPT", ("latent_stream",)),
    ("latent stream 2", "default", header("latent_stream", 2), "CORRUPT", ("latent_stream",)),
    ("distribution 2", "default", header("latent_distribution", 2), "CORRUPT", ("latent_distribution",)),
    ("latent scale NaN", "default", header("latent_scale", NAN, "<f"), "CORRUPT", ("latent_scale",)),
    ("latent offset inf", "default", header("latent_offset", -INF, "<f"), "CORRUPT", ("latent_offset",)),
    ("image height 0", "default", header("image_height", 0), "CORRUPT", ("image_height",)),
    ("image width 4097", "default", header("image_width", 4097), "CORRUPT", ("image_height",)),
    ("image 27 high: the widths do not chain", "default", header("image_height", 27), "CORRUPT", ("widths",)),
    ("classes 65537", "conditional", header("classes", 65537), "CORRUPT", ("classes",)),
    ("a class without names", "default", header("classes", 1), "CORRUPT", ("names_bytes",)),
    ("names_bytes 18", "conditional", header("names_bytes", 18), "CORRUPT", ("names_bytes",)),
    ("an empty class name", "conditional", put("<B", ("names", 0), 0), "CORRUPT", ("class name 0",)),
    ("name padding not zero", "renamed", put("<B", ("names", 51), 1), "CORRUPT", ("padding",)),
    ("a name not UTF-8", "renamed", put("<B", ("names", 0), 0xFF), "CORRUPT", ("UTF-8",)),
    ("generator_layers 0", "default", header("generator_layers", 0), "CORRUPT", ("generator_layers",)),
    ("discriminator_layers 65", "default", header("discriminator_layers", 65), "CORRUPT",
     ("discriminator_layers",)),
    ("generator_layers 3", "default", header("generator_layers", 3), "CORRUPT", ()),
    ("reserved byte set", "default", put("<B", 63, 1), "CORRUPT", ("reserved",)),
    ("a width of 2^20 + 1", "default", put("<I", ("generator.widths", 4), (1 << 20) + 1), "CORRUPT", ("widths[1]",)),
    ("a width of 2^32 - 1", "default", put("<I", ("generator.widths", 4), 2 ** 32 - 1), "CORRUPT", ("widths[1]",)),
    ("widths whose product wraps 32 bits", "default", put("<II", ("generator.widths", 0), 1 << 16, 1 << 16),
     "CORRUPT", ("truncated",)),  # 2^32 floats claimed: refused before any allocation
    ("discriminator output width 2", "default", put("<I", ("discriminator.widths", 8), 2), "CORRUPT",
     ("discriminator widths[2]",)),
    ("discriminator input width 783", "default", put("<I", ("discriminator.widths", 0), 783), "CORRUPT",
     ("discriminator widths[0]",)),
    ("activation 5", "default", put("<I", ("generator.activations", 8), 5), "CORRUPT", ("activation",)),
    ("alpha NaN", "default", put("<f", ("generator.activations", 4), NAN), "CORRUPT", ("alpha",)),
    ("a NaN weight", "default", put("<f", ("generator.weight.1", 4 * 12345), NAN), "CORRUPT",
     ("generator", "layer 1", "12345")),
    ("an infinite bias", "default", put("<f", ("discriminator.bias.0", 4 * 77), INF), "CORRUPT",
     ("discriminator", "layer 0", "77")),
    ("a NaN in the class-bias table", "conditional", put("<f", ("generator.table", 4 * 300), NAN), "CORRUPT",
     ("generator", "table", "300")),
    ("a weight changed, the CRC not", "default", put("<f", ("generator.weight.0", 8), 0.5, crc=False), "CORRUPT",
     ("CRC",)),
    ("the CRC changed", "default", lambda d, at: d[:-4] + bytes(b ^ 0xFF for b in d[-4:]), "CORRUPT", ("CRC",)),
]


@pytest.mark.parametrize("case, name, mutate, status, reasons", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_files_are_refused_with_their_status(c, exported, case, name, mutate, status, reasons):
    data = exported[name]
    bad = mutate(data, parse(data).at)
    assert bad != data
    code, model, why = open_bytes(c, bad)
    assert code == getattr(c[1], f"GP_ERR_{status}"), why
    assert model is None and why and "\n" not in why
    for reason in reasons:
        assert reason in why, why


def test_a_reason_is_cut_to_its_buffer(c, exported):
    ffi, lib = c
    bad = put("<f", ("generator.weight.1", 4 * 12345), NAN)(exported["default"], parse(exported["default"]).at)
    code, _, why = open_bytes(c, bad, why_size=8)
    assert code == lib.GP_ERR_CORRUPT and len(why) == 7
    out = ffi.new("gp_model **")
    assert lib.gp_model_open_memory(ffi.from_buffer(bad), len(bad), lib.GP_ISA_AUTO, 0, out, ffi.NULL,
                                    0) == lib.GP_ERR_CORRUPT


# ---------------------------------------------------------------------------------------------
# slow: the C program and the installed library (make -C csrc), against Python

CSRC = Path(__file__).resolve().parent.parent / "csrc"
SAMPLE = "ganpack-sample"
PROGRAM = r"""/* n digits of MODEL for SEED (every one of class LABEL, if given) as raw uint8 pixels on stdout */
#include <ganpack.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    char why[256];
    gp_model *model = NULL;
    gp_status status = gp_model_open(argv[1], GP_ISA_AUTO, 0, &model, why, sizeof why);
    if (status != GP_OK) {
        fprintf(stderr, "%s\n", why);
        return 2;
    }
    const int n = atoi(argv[2]);
    const size_t pixels = (size_t)gp_model_image_height(model) * (size_t)gp_model_image_width(model);
    unsigned char *out = malloc((size_t)n * pixels);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    for (int i = 0; i < n; i++) labels[i] = argc > 4 ? atoi(argv[4]) : 0;
    status = gp_model_sample(model, strtoull(argv[3], NULL, 10), 0, n, argc > 4 ? labels : NULL, out, GP_U8);
    if (status == GP_OK) fwrite(out, 1, (size_t)n * pixels, stdout);
    free(labels);
    free(out);
    gp_model_free(model);
    return status == GP_OK ? 0 : 1;
}
"""


def run(argv, timeout=300, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """csrc built and installed into fresh folders, and both built-in models exported."""
    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.skip("needs make and a C compiler")
    pytest.importorskip("ganpack.backends.c_backend", reason="Python's side needs the C kernel built")
    root = tmp_path_factory.mktemp("c")
    build, prefix = root / "build", root / "prefix"
    done = run(["make", "-s", "-j2", "-C", CSRC, f"BUILD={build}", f"PREFIX={prefix}", build / SAMPLE, "install"])
    assert done.returncode == 0, done.stderr.decode()
    models = {name: export_c(name, root / f"{name}.gpkc") for name in ("default", "conditional")}
    return {"sample": build / SAMPLE, "prefix": prefix, "models": models, "root": root}


def read_pgm(path) -> np.ndarray:
    data = path.read_bytes()
    magic, width, height, top, pixels = data.split(maxsplit=4)
    assert (magic, top) == (b"P5", b"255")
    return np.frombuffer(pixels, np.uint8).reshape(int(height), int(width))


@pytest.mark.slow
@pytest.mark.parametrize("name, digit", [("default", None), ("conditional", 3)])
@pytest.mark.parametrize("n", [1, 7, 64])
def test_the_program_draws_python_s_grids(built, tmp_path, name, digit, n):
    """Its PNG (pixels and ganpack-grid chunk) and PGM are save_grid's and tile's of Model.sample."""
    from ganpack.grid import save_grid, tile
    from ganpack.png import read_png_text

    option = [] if digit is None else ["--digit", digit]
    expected = ganpack.load(name, backend="c").sample(n, 5, label=digit)
    for out, threads in (("c.png", 1), ("c.pgm", 0)):
        done = run([built["sample"], built["models"][name], "-n", n, "--seed", 5, *option, "--threads", threads,
                    "-o", tmp_path / out])
        assert done.returncode == 0 and done.stdout == done.stderr == b"", done.stderr.decode()
    c_pixels, c_texts = read_png_text(tmp_path / "c.png")
    python_pixels, python_texts = read_png_text(save_grid(expected, tmp_path / "python.png"))
    assert c_texts == python_texts and np.array_equal(c_pixels, python_pixels)
    assert np.array_equal(read_pgm(tmp_path / "c.pgm"), np.repeat(np.repeat(tile(expected), 2, 0), 2, 1))


@pytest.mark.slow
@pytest.mark.parametrize("name, digit", [("default", None), ("conditional", 8)])
def test_ganpack_score_reads_the_program_s_grid(built, tmp_path, capsys, name, digit):
    option = [] if digit is None else ["--digit", str(digit)]
    done = run([built["sample"], built["models"][name], "-n", 10, "--seed", 2, *option, "-o", tmp_path / "c.png"])
    assert done.returncode == 0, done.stderr.decode()
    python = ganpack.load(name)
    np.save(tmp_path / "python.npy", python.sample(10, 2, label=digit))
    lines = {}
    for file in ("c.png", "python.npy"):
        capsys.readouterr()
        assert main(["score", str(tmp_path / file), "--model", name, *option]) == 0
        lines[file] = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
    assert len(lines["c.png"]) == 10 and lines["c.png"] == lines["python.npy"]


@pytest.mark.slow
@pytest.mark.parametrize("link", ["shared", "static"])
def test_a_program_built_with_pkg_config_draws_python_s_digits(built, tmp_path, link):
    if shutil.which("pkg-config") is None:
        pytest.skip("needs pkg-config")
    prefix = built["prefix"]
    environment = {**os.environ, "PKG_CONFIG_PATH": str(prefix / "lib" / "pkgconfig")}
    flags = run(["pkg-config", "--cflags", "--libs", *(["--static"] if link == "static" else []), "ganpack"],
                env=environment)
    assert flags.returncode == 0, flags.stderr.decode()
    (tmp_path / "digits.c").write_text(PROGRAM)
    program = tmp_path / f"digits-{link}"
    compiled = run(["cc", "-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", tmp_path / "digits.c",
                    *flags.stdout.decode().split(), *(["-static"] if link == "static" else []), "-o", program])
    assert compiled.returncode == 0, compiled.stderr.decode()
    needs = run(["readelf", "-d", program]).stdout
    if link == "shared":
        assert b"[libganpack.so.0]" in needs
        environment["LD_LIBRARY_PATH"] = str(prefix / "lib")
    else:  # nothing to find at run time
        assert b"libganpack" not in needs
    for name, label in (("default", None), ("conditional", 4)):
        argv = [program, built["models"][name], 300, 2 ** 64 - 1, *([] if label is None else [label])]
        done = run(argv, env=environment)
        assert done.returncode == 0, done.stderr.decode()
        expected = ganpack.load(name, backend="c").sample(300, 2 ** 64 - 1, label=label)
        assert done.stdout == expected.tobytes()


@pytest.mark.slow
@pytest.mark.parametrize("case, argv, message", [
    ("missing file", ["{root}/missing.gpkc"], "cannot use the model '{root}/missing.gpkc': cannot open"),
    ("corrupt file", ["{root}/corrupt.gpkc"], "cannot use the model '{root}/corrupt.gpkc': CRC-32 mismatch"),
    ("not a model", ["{root}/default.gpkc.txt"], "not a ganpack-c model file"),
    ("unknown option", ["{root}/default.gpkc", "--fast"], "unknown option '--fast'"),
    ("no digit", ["{root}/conditional.gpkc", "-o", "{root}/x.png"], "is class-conditional (10 classes)"),
    ("a digit for an unconditional model", ["{root}/default.gpkc", "--digit", "1"], "is unconditional"),
    ("n 0", ["{root}/default.gpkc", "-n", "0"], "-n '0' is not a whole number in 1..10000"),
    ("an output it cannot write", ["{root}/default.gpkc", "-o", "{root}/missing/x.png"], "cannot write"),
    ("an ISA this CPU lacks", ["{root}/default.gpkc", "--isa", "avx512"],
     "--isa avx512: this CPU or this build lacks it"),
    ("--info with a digit for an unconditional model", ["{root}/default.gpkc", "--info", "--digit", "99"],
     "--digit 99: the model '{root}/default.gpkc' is unconditional"),
    ("--info with a digit out of range", ["{root}/conditional.gpkc", "--info", "--digit", "10"],
     "--digit 10 is out of range"),
    ("a FIFO with no writer", ["{root}/fifo.gpkc"], "truncated: the file is empty"),
    ("/dev/zero", ["/dev/zero"], "'/dev/zero': not a ganpack-c model file"),
    ("a newline in the path", ["{root}/new\nline.gpkc"], "'{root}/new\\nline.gpkc': cannot open"),
])
def test_the_program_s_mistakes_are_one_line_and_status_2(built, case, argv, message):
    root = built["root"]
    if case == "an ISA this CPU lacks":
        kernel = pytest.importorskip("ganpack._kernel", reason="the C kernel is not built")
        if kernel.lib.gp_best_isa() == kernel.lib.GP_ISA_AVX512:
            pytest.skip("this CPU has AVX-512")
    data = bytearray((root / "default.gpkc").read_bytes())
    data[1000] ^= 1
    (root / "corrupt.gpkc").write_bytes(bytes(data))
    (root / "default.gpkc.txt").write_text("hello")
    if not (root / "fifo.gpkc").exists():
        os.mkfifo(root / "fifo.gpkc")  # no writer ever: opening it must not block
    done = run([built["sample"], *(a.format(root=root) for a in argv)], cwd=root, timeout=60)
    (line,) = done.stderr.decode().splitlines()
    assert done.returncode == 2 and done.stdout == b"", done.stderr
    assert line.startswith("ganpack-sample: error: ") and message.format(root=root) in line, line
    assert not (root / "x.png").exists() and not (root / "digits.png").exists()


@pytest.mark.slow
def test_the_program_s_output_lost_on_stdout_is_an_error(built):
    with open("/dev/full", "wb") as full:
        done = subprocess.run([built["sample"], built["models"]["default"], "--info"], stdout=full,
                              stderr=subprocess.PIPE, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().splitlines() == ["ganpack-sample: error: cannot write to standard output: "
                                                 "No space left on device"]


@pytest.mark.slow
@pytest.mark.parametrize("out", ["keep.png", "keep.pgm"])
def test_a_failed_write_leaves_the_old_output_and_no_partial_file(built, tmp_path, out):
    """A grid written past `ulimit -f` (SIGXFSZ ignored: the write fails with EFBIG) is not renamed
    over the old file, and its temporary is removed."""
    (tmp_path / out).write_bytes(b"the old grid")
    script = f"trap '' XFSZ; ulimit -f 50; exec \"$0\" \"$1\" -n 2000 -o {out}"  # 50 blocks: ~25-50 KB
    done = run(["bash", "-c", script, built["sample"], built["models"]["default"]], cwd=tmp_path, timeout=120)
    (line,) = done.stderr.decode().splitlines()
    assert done.returncode == 2 and line == f"ganpack-sample: error: cannot write '{out}': File too large", line
    assert (tmp_path / out).read_bytes() == b"the old grid"
    assert sorted(path.name for path in tmp_path.iterdir()) == [out]
    done = run([built["sample"], built["models"]["default"], "-n", 4, "-o", out], cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / out).read_bytes() != b"the old grid", done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [out]
    assert (tmp_path / out).stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.slow
def test_the_embedding_benchmark_runs(built):
    """benchmarks/embed_bench.py --quick prints its table (never a check of speed)."""
    bench = CSRC.parent / "benchmarks" / "embed_bench.py"
    done = run([sys.executable, bench, "--quick", "--program", built["sample"]])
    assert done.returncode == 0, done.stderr.decode()
    table = done.stdout.decode()
    assert "| n | threads | C (ganpack-sample) us/digit |" in table and "| 64 | 1 |" in table
    assert "| onnx2c -O3 -ffast-math | 16.7 |" in table
    mistake = run([sys.executable, bench, "--sizes", "0"])
    assert mistake.returncode == 2 and len(mistake.stderr.decode().splitlines()) == 1
