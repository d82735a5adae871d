"""Class-conditional packages in the runtime: the manifest's `classes`, the graphs' leading Concat,
every backend (and every ISA of the C kernel) against the numpy reference, the C kernel's
class-bias table against the same network run on one-hot columns, sample / sample_chunks /
generate / score with label and labels, every label mistake, built-in names, and the CLI's
--digit. The packages are built here with onnx.helper from seeded random weights (the export
side has its own end-to-end test)."""

import copy
import json
import re
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ganpack
import ganpack.backends.chunked as chunked_module
import ganpack.model as model_module
import ganpack.package as package_module
from ganpack.backends.numpy_backend import NumpyBackend
from ganpack.cli import main
from ganpack.contract import CLASS_INPUT, IMAGE_SHAPE, LATENT_PARAMETERS, TO_UINT8, one_hot
from ganpack.dense_stack import DenseStack, UnsupportedGraphError, from_onnx, load_dense_stack
from ganpack.errors import InputError, PackageError, run_command
from ganpack.manifest import Classes, Image, Latent, Manifest, ManifestError, Network, parse_manifest
from ganpack.package import sha256_of
from test_manifest import changed

BACKENDS = ganpack.available_backends()
TOLERANCE = 1e-5
LATENT, CLASSES, HIDDEN, IMAGE = 100, 10, 128, 784

# ---------------------------------------------------------------------------------------------
# packages made with onnx.helper: Concat(axis=1) [x, label] -> Gemm -> LeakyRelu -> Gemm -> act


def dense_graph(input_name: str, width: int, classes: int, hidden: int, out: int, last: str,
                outputs: dict[str, str], rng: np.random.Generator, alpha: float = 0.2,
                concat_inputs: list[str] | None = None, axis: int = 1) -> onnx.ModelProto:
    """A two-layer dense graph reading `input_name` (batch, width) and, when classes > 0, `label`
    (batch, classes) concatenated after it. outputs: graph output name -> "activated" or "logits"."""
    in_width = width + classes
    weights = {"w0": rng.normal(0, 1 / np.sqrt(in_width), (hidden, in_width)), "b0": rng.normal(0, 0.1, hidden),
               "w1": rng.normal(0, 1 / np.sqrt(hidden), (out, hidden)), "b1": rng.normal(0, 0.1, out)}
    if classes:
        weights["w0"][:, width:] *= 8  # the label's columns weigh like a few inputs: classes really differ
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", width])]
    nodes, first = [], input_name
    if classes:
        inputs.append(helper.make_tensor_value_info(CLASS_INPUT, TensorProto.FLOAT, ["batch", classes]))
        nodes.append(helper.make_node("Concat", concat_inputs or [input_name, CLASS_INPUT], ["joined"],
                                      name="/Concat", axis=axis))
        first = "joined"
    names = {kind: name for name, kind in outputs.items()}
    logits = names.get("logits", "logits")
    nodes += [helper.make_node("Gemm", [first, "w0", "b0"], ["h0"], name="/0/Gemm", transB=1),
              helper.make_node("LeakyRelu", ["h0"], ["a0"], name="/1/LeakyRelu", alpha=alpha),
              helper.make_node("Gemm", ["a0", "w1", "b1"], [logits], name="/2/Gemm", transB=1),
              helper.make_node(last, [logits], [names["activated"]], name=f"/3/{last}")]
    initializers = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()]
    graph_outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", out]) for name in outputs]
    return helper.make_model(helper.make_graph(nodes, "g", inputs, graph_outputs, initializers),
                             opset_imports=[helper.make_opsetid("", 17)])


def network(file: str, path, inputs: dict, outputs: dict, widths: list[int], last: str) -> Network:
    return Network(file=file, sha256=sha256_of(path), inputs=inputs, outputs=outputs, layer_widths=widths,
                   hidden_activation="leaky_relu", leaky_relu_alpha=0.2, output_activation=last)


def write_package(folder, classes: int = CLASSES, seed: int = 0, names: list[str] | None = None,
                  generator: onnx.ModelProto | None = None):
    """A complete package in `folder`: conditional (format_version 3) when classes > 0, else a plain
    format_version 2 one. Returns the folder."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    generator = generator or dense_graph("z", LATENT, classes, HIDDEN, IMAGE, "Tanh", {"image": "activated"}, rng)
    discriminator = dense_graph("image", IMAGE, classes, HIDDEN, 1, "Sigmoid",
                                {"probability": "activated", "logit": "logits"}, rng)
    onnx.save(generator, folder / "generator.onnx")
    onnx.save(discriminator, folder / "discriminator.onnx")
    shutil.copy(package_module.BUILT_IN / "default" / "preview.png", folder / "preview.png")
    label = {CLASS_INPUT: ["batch", classes]} if classes else {}
    manifest = Manifest(
        latent=Latent(LATENT, "normal", dict(LATENT_PARAMETERS["normal"])),
        image=Image(shape=list(IMAGE_SHAPE), value_range=[-1.0, 1.0], to_uint8=TO_UINT8),
        generator=network("generator.onnx", folder / "generator.onnx", {"z": ["batch", LATENT], **label},
                          {"image": ["batch", IMAGE]}, [LATENT + classes, HIDDEN, IMAGE], "tanh"),
        discriminator=network("discriminator.onnx", folder / "discriminator.onnx",
                              {"image": ["batch", IMAGE], **label},
                              {"probability": ["batch", 1], "logit": ["batch", 1]}, [IMAGE + classes, HIDDEN, 1],
                              "sigmoid"),
        opset=17, generator_weights="ema", training_config={}, provenance={"steps": 0}, parity={},
        **({"classes": Classes(count=classes, names=names or [str(i) for i in range(classes)]),
            "format_version": 3} if classes else {}))
    (folder / "manifest.json").write_text(manifest.to_json())
    return folder


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return write_package(tmp_path_factory.mktemp("packages") / "conditional")


@pytest.fixture(scope="module")
def plain_package(tmp_path_factory):
    return write_package(tmp_path_factory.mktemp("packages") / "plain", classes=0)


def reference(package, z, labels):
    """The generator in float64, straight from the graph's weights: leaky(z Wz^T + Wy[:, y] + b0), then tanh."""
    weights = {init.name: numpy_helper.to_array(init).astype(np.float64)
               for init in onnx.load(package / "generator.onnx").graph.initializer}
    h = z @ weights["w0"][:, :LATENT].T + weights["w0"][:, LATENT:].T[labels] + weights["b0"]
    h = np.where(h >= 0, h, 0.2 * h)
    return np.tanh(h @ weights["w1"].T + weights["b1"])


# ---------------------------------------------------------------------------------------------
# backends and the C kernel


def test_the_reference_is_the_graph(package):
    model = ganpack.load(package, backend="numpy")
    z, labels = model.latents(20, seed=1), np.arange(20) % CLASSES
    expected = reference(package, z.astype(np.float64), labels)
    images = model.generate(z, output="float", labels=labels).reshape(20, -1)
    assert np.abs(images - expected).max() <= TOLERANCE
    assert model.classes == tuple(str(i) for i in range(CLASSES))
    assert np.abs(images[0] - model.generate(z[:1], output="float", labels=[3]).reshape(-1)).max() > 0.05


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_matches_numpy(package, backend):
    model, numpy_model = ganpack.load(package, backend=backend), ganpack.load(package, backend="numpy")
    rng = np.random.default_rng(2)
    for batch in (1, 3, 17, 100):
        z, labels = model.latents(batch, seed=batch), rng.integers(0, CLASSES, batch)
        images = model.generate(z, output="float", labels=labels)
        expected = numpy_model.generate(z, output="float", labels=labels)
        assert images.shape == (batch, 28, 28) and np.abs(images - expected).max() <= TOLERANCE
        scores, expected_scores = model.score(expected, labels=labels), numpy_model.score(expected, labels=labels)
        assert scores.shape == (batch,) and np.abs(scores - expected_scores).max() <= TOLERANCE
        for label in (0, 9):
            sampled = model.sample(batch, seed=5, output="float", label=label)
            assert np.abs(sampled - numpy_model.sample(batch, seed=5, output="float", label=label)).max() <= TOLERANCE


def isas():
    kernel = pytest.importorskip("ganpack.backends.c_backend", reason="the C kernel is not built")
    return kernel, [name for name, code in (("portable", 0), ("avx2_fma", 1), ("avx512", 2))
                    if code <= kernel.lib.gp_best_isa()]


@pytest.mark.parametrize("network_file", ["generator.onnx", "discriminator.onnx"])
def test_every_isa_equals_the_one_hot_stack(package, network_file):
    """The class-bias table (W_y^T + b0 as a per-row bias) gives, within the tolerance, what a plain
    stack gives when the one-hot columns are concatenated to its input; on every ISA this CPU has."""
    kernel, names = isas()
    stack = load_dense_stack(package / network_file)
    assert stack.classes == CLASSES and stack.label_name == CLASS_INPUT
    plain = DenseStack(stack.layers, stack.input_name, stack.outputs)  # the same weights, labels as inputs
    rng = np.random.default_rng(3)
    for isa in names:
        conditional = kernel.NativeStack(stack, isa, threads=1)
        threaded = kernel.NativeStack(stack, isa, threads=2)
        one_hot_stack = kernel.NativeStack(plain, isa, threads=1)
        assert conditional.isa == isa and conditional.in_width == stack.input_width
        for batch in (0, 1, 3, 8, 9, 70):
            x = rng.uniform(-1, 1, (batch, stack.input_width)).astype(np.float32)
            labels = rng.integers(0, CLASSES, batch).astype(np.int32)
            got = conditional.run(x, labels=labels)
            joined = np.ascontiguousarray(np.concatenate([x, one_hot(labels, CLASSES)], axis=1))
            expected = NumpyBackend(stack).run(x, labels)["activated"]
            assert np.abs(got - one_hot_stack.run(joined)).max(initial=0) <= TOLERANCE, isa
            assert np.abs(got - expected).max(initial=0) <= TOLERANCE, isa
            assert np.array_equal(threaded.run(x, labels=labels), got), isa  # threads: bit for bit
            pixels = np.empty(got.shape, np.uint8)
            conditional.run(x, out=pixels, labels=labels)
            assert np.array_equal(pixels, np.clip(np.rint((got + 1) * 127.5), 0, 255).astype(np.uint8))


def test_native_labels_are_checked_before_c(package):
    kernel, _ = isas()
    from ganpack.backends import BackendError

    stack = load_dense_stack(package / "generator.onnx")
    native = kernel.NativeStack(stack)
    x = np.zeros((2, LATENT), np.float32)
    for bad in (None, np.zeros(2, np.int64), np.zeros(3, np.int32), np.zeros((2, 1), np.int32)):
        with pytest.raises(BackendError, match="labels"):
            native.run(x, labels=bad)
    with pytest.raises(InputError, match="label"):  # C's own range check, behind Model's
        native.run(x, labels=np.array([0, CLASSES], np.int32))
    with pytest.raises(BackendError, match="not conditional"):
        kernel.NativeStack(DenseStack(stack.layers, "z", stack.outputs)).run(
            np.zeros((2, LATENT + CLASSES), np.float32), labels=np.zeros(2, np.int32))


# ---------------------------------------------------------------------------------------------
# the public API


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_with_label_and_labels(package, backend):
    model = ganpack.load(package, backend=backend)
    z = model.latents(12, seed=4)
    sevens = model.sample(12, seed=4, label=7)
    assert sevens.shape == (12, 28, 28) and sevens.dtype == np.uint8
    assert np.array_equal(sevens, model.sample(12, seed=4, labels=[7] * 12))
    assert np.array_equal(sevens, model.generate(z, labels=np.full(12, 7)))  # the same z for every label
    mixed = np.arange(12) % CLASSES
    floats = model.sample(12, seed=4, output="float", labels=mixed)
    assert np.array_equal(model.sample(12, seed=4, labels=mixed), np.clip(np.rint((floats + 1) * 127.5), 0, 255))
    assert np.abs(floats - model.generate(z, output="float", labels=mixed)).max() <= TOLERANCE
    assert not np.array_equal(sevens, model.sample(12, seed=4, label=np.int64(3)))  # the label matters
    assert model.sample(0, seed=1, label=2).shape == (0, 28, 28)
    assert model.sample(0, seed=1, labels=[]).shape == (0, 28, 28)
    out = np.empty((12, 28, 28), np.uint8)
    assert model.generate(z, out=out, labels=mixed) is out


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_chunks_concatenate_to_sample(package, backend, monkeypatch):
    model = ganpack.load(package, backend=backend)
    monkeypatch.setattr(model_module, "STREAM_ROWS", 64)
    monkeypatch.setattr(chunked_module, "CHUNK_ROWS", 64)  # every backend call sees the batches sample() gives it
    labels = np.random.default_rng(5).integers(0, CLASSES, 150)
    for output in ("uint8", "float"):
        pieces = list(model.sample_chunks(150, seed=6, output=output, labels=labels))
        assert [len(p) for p in pieces] == [64, 64, 22]
        assert np.array_equal(np.concatenate(pieces), model.sample(150, seed=6, output=output, labels=labels))
    assert np.array_equal(np.concatenate(list(model.sample_chunks(70, seed=1, label=4))),
                          model.sample(70, seed=1, label=4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_score_with_labels(package, backend):
    model = ganpack.load(package, backend=backend)
    images = model.sample(6, seed=8, label=1)
    labels = [1, 1, 2, 3, 4, 1]
    from_pixels = model.score(images, labels=labels)
    from_floats = model.score(images.reshape(6, -1).astype(np.float32) / 127.5 - 1, labels=np.array(labels))
    assert from_pixels.shape == (6,) and np.abs(from_pixels - from_floats).max() <= TOLERANCE
    assert np.abs(from_pixels - model.score(images, labels=[1] * 6)).max() > 0  # the label matters
    assert from_pixels[0] == model.score(images[:1], labels=[1])[0]
    assert model.score(np.zeros((0, 784), np.float32), labels=[]).shape == (0,)


LABEL_MISTAKES = [  # (call, message): every one an InputError naming the offending value
    (lambda m: m.sample(3, seed=1, label=10), r"label 10 is out of range: this model has 10 classes, 0 to 9"),
    (lambda m: m.sample(3, seed=1, label=-1), r"label -1 is out of range"),
    (lambda m: m.sample(3, seed=1, label=7.5), r"label must be an integer class index from 0 to 9, got 7\.5"),
    (lambda m: m.sample(3, seed=1, label=7.0), r"got 7\.0"),
    (lambda m: m.sample(3, seed=1, label="7"), r"got '7' \(class names are not accepted"),
    (lambda m: m.sample(3, seed=1, label=True), r"got True"),
    (lambda m: m.sample(3, seed=1, label=np.float32(7)), r"got np\.float32\(7\.0\)|got 7\.0"),
    (lambda m: m.sample(3, seed=1), r"class-conditional \(10 classes: 0 to 9\); pass label="),
    (lambda m: m.sample(3, seed=1, label=1, labels=[1, 1, 1]), "not both"),
    (lambda m: m.sample(3, seed=1, labels=[1, 2]), r"labels must hold 3 class indices \(one per row\), got 2"),
    (lambda m: m.sample(3, seed=1, labels=[1, 2, 10]), r"labels\[2\] = 10 is out of range"),
    (lambda m: m.sample(3, seed=1, labels=[-1, 2, 3]), r"labels\[0\] = -1 is out of range"),
    (lambda m: m.sample(3, seed=1, labels=[1.0, 2.0, 3.5]), r"labels must be integer class indices, got float64"),
    (lambda m: m.sample(3, seed=1, labels=[True, False, True]), r"got bool"),
    (lambda m: m.sample(3, seed=1, labels=["1", "2", "3"]), r"labels must be integer class indices"),
    (lambda m: m.sample(3, seed=1, labels=[2 ** 70, 1, 1]), r"out of range"),
    (lambda m: m.sample(3, seed=1, labels=7), r"labels must be a sequence of 3 class indices .* use label="),
    (lambda m: m.sample(3, seed=1, labels=np.eye(10)[:3]), r"shape \(3,\), got shape \(3, 10\)"),
    (lambda m: next(m.sample_chunks(3, seed=1, label=11)), r"label 11 is out of range"),
    (lambda m: m.generate(np.zeros((2, 100), np.float32)), r"pass labels= \(one class index per row\)"),
    (lambda m: m.generate(np.zeros((2, 100), np.float32), labels=[0, 1, 2]), r"hold 2 class indices"),
    (lambda m: m.score(np.zeros((2, 784), np.uint8)), r"pass labels="),
    (lambda m: m.score(np.zeros((2, 784), np.float32), labels=[0, 12]), r"labels\[1\] = 12 is out of range"),
]


@pytest.mark.parametrize("call, message", LABEL_MISTAKES)
def test_label_mistakes_are_clear_errors(package, call, message):
    for backend in BACKENDS:
        with pytest.raises(InputError, match=message):
            call(ganpack.load(package, backend=backend))


@pytest.mark.parametrize("call", [
    lambda m: m.sample(2, seed=1, label=3),
    lambda m: m.sample(2, seed=1, labels=[1, 2]),
    lambda m: next(m.sample_chunks(2, seed=1, label=0)),
    lambda m: m.generate(np.zeros((2, 100), np.float32), labels=[1, 2]),
    lambda m: m.score(np.zeros((2, 784), np.uint8), labels=[1, 2]),
])
def test_unconditional_models_refuse_labels(plain_package, call):
    for backend in BACKENDS:
        model = ganpack.load(plain_package, backend=backend)
        assert model.classes is None
        with pytest.raises(InputError, match="this model is unconditional; it takes no class label"):
            call(model)


def test_unconditional_packages_are_unchanged(plain_package):
    manifest = json.loads((plain_package / "manifest.json").read_text())
    assert "classes" not in manifest and manifest["format_version"] == 2
    default = model_module.DEFAULT_MODEL / "manifest.json"  # written by export before classes existed
    assert parse_manifest(json.loads(default.read_text())).to_json() == default.read_text()
    stack = load_dense_stack(plain_package / "generator.onnx")
    assert stack.classes == 0 and stack.label_name is None and stack.input_width == stack.widths[0] == LATENT


# ---------------------------------------------------------------------------------------------
# the manifest


@pytest.fixture(scope="module")
def manifest_values(package):
    return json.loads((package / "manifest.json").read_text())


def test_conditional_manifest_round_trips(manifest_values):
    manifest = parse_manifest(manifest_values)
    assert manifest.format_version == 3 and manifest.classes == Classes(10, [str(i) for i in range(10)])
    assert manifest.classes.input == "label" and manifest.classes.encoding == "one_hot"
    assert parse_manifest(json.loads(manifest.to_json())) == manifest
    assert json.loads(manifest.to_json())["classes"]["names"][7] == "7"


@pytest.mark.parametrize("path, value, message", [
    ("classes", ..., "format_version 3 is a class-conditional package, but the field 'classes' is missing"),
    ("classes", None, "field 'classes' is missing"),
    ("format_version", 2, "field 'classes' needs format_version 3, this manifest is version 2"),
    ("classes", [10], "'classes' must be an object"),
    ("classes.count", ..., "'classes.count' is missing"),
    ("classes.count", 0, "'classes.count' must be from 1 to 65536"),
    ("classes.count", 65537, "'classes.count' must be from 1 to 65536"),
    ("classes.count", True, "'classes.count' must be int"),
    ("classes.count", "10", "'classes.count' must be int"),
    ("classes.names", [str(i) for i in range(9)], "'classes.names' must hold classes.count = 10 names, got 9"),
    ("classes.names", ["0"] * 10, "'classes.names' must hold distinct names, got '0' twice"),
    ("classes.names", [str(i) for i in range(9)] + [""], "non-empty strings, got '' at index 9"),
    ("classes.names", list(range(10)), "non-empty strings, got 0 at index 0"),
    ("classes.names", "0123456789", "'classes.names' must be list"),
    ("classes.input", "y", "'classes.input' must be 'label', got 'y'"),
    ("classes.encoding", "index", "'classes.encoding' must be 'one_hot', got 'index'"),
    ("generator.layer_widths", [100, 128, 784], r"generator input width 100 != latent.dim 100 \+ classes.count 10"),
    ("discriminator.layer_widths", [784, 128, 1], r"discriminator input width 784 - classes.count 10"),
    ("generator.inputs.label", ["batch", 9], r"'generator.inputs.label' must be \[\"batch\", 10\]"),
    ("discriminator.inputs", {"image": ["batch", 784]}, r"'discriminator.inputs.label' must be"),
])
def test_malformed_classes_are_named(manifest_values, path, value, message):
    with pytest.raises(ManifestError, match=message):
        parse_manifest(changed(path, value, manifest_values))


def test_unconditional_manifests_have_no_classes(plain_package):
    values = json.loads((plain_package / "manifest.json").read_text())
    assert parse_manifest({**values, "classes": None}).classes is None  # null means unconditional
    with pytest.raises(ManifestError, match="needs format_version 3"):
        parse_manifest({**values, "classes": {"count": 10}})
    with pytest.raises(ManifestError, match="format_version 3"):
        parse_manifest({**values, "format_version": 3})


def test_manifest_and_graph_must_agree_on_classes(package, plain_package, tmp_path):
    """A conditional graph under an unconditional manifest (or the reverse) is refused on load."""
    mixed = shutil.copytree(plain_package, tmp_path / "mixed")
    shutil.copy(package / "generator.onnx", mixed / "generator.onnx")
    manifest = json.loads((mixed / "manifest.json").read_text())
    manifest["generator"]["sha256"] = sha256_of(mixed / "generator.onnx")
    manifest["generator"]["layer_widths"] = [110, 128, 784]
    (mixed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="latent.dim"):
        ganpack.load(mixed)
    manifest["generator"]["layer_widths"] = [100, 128, 784]
    (mixed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="generator.onnx: the graph reads 10 classes through input 'label', "
                                           "the manifest says no classes"):
        ganpack.load(mixed)


# ---------------------------------------------------------------------------------------------
# the graphs: exactly a leading Concat(axis=1) of [x, label]


def conditional_graph(**kwargs) -> onnx.ModelProto:
    return dense_graph("z", 6, 3, 5, 4, "Tanh", {"image": "activated"}, np.random.default_rng(0), **kwargs)


def test_the_leading_concat_is_read():
    stack = from_onnx(conditional_graph())
    assert (stack.input_name, stack.label_name, stack.classes, stack.input_width) == ("z", "label", 3, 6)
    assert stack.widths == [9, 5, 4]


def edit(model: onnx.ModelProto, change) -> onnx.ModelProto:
    model = copy.deepcopy(model)
    change(model.graph)
    return model


def retype_label(graph, dims=("batch", "classes"), elem_type=TensorProto.FLOAT):
    label = next(i for i in graph.input if i.name == CLASS_INPUT)
    label.CopyFrom(helper.make_tensor_value_info(CLASS_INPUT, elem_type, list(dims)))


@pytest.mark.parametrize("make, message", [
    (lambda: conditional_graph(axis=0), r"node '/Concat' \(Concat\): axis=0 is not supported \(only 1\)"),
    (lambda: conditional_graph(axis=-1), r"axis=-1 is not supported"),
    (lambda: edit(conditional_graph(), lambda g: g.node[0].attribute.pop()), "axis must be given, and 1"),
    (lambda: edit(conditional_graph(), lambda g: g.node[0].input.append("z")), r"the two graph inputs once each"),
    (lambda: edit(conditional_graph(), lambda g: retype_label(g)), "fixed"),
    (lambda: edit(conditional_graph(), lambda g: retype_label(g, ("batch", 3), TensorProto.DOUBLE)), "float32"),
    (lambda: edit(conditional_graph(), lambda g: g.node[0].CopyFrom(helper.make_node(
        "Sum", ["z", "label"], ["joined"], name="/Sum"))), r"input 'z' feeds node '/Sum' \(Sum\)"),
    (lambda: edit(conditional_graph(), lambda g: (g.node.insert(0, helper.make_node(
        "Identity", ["label"], ["label2"], name="/Identity")), g.node[1].input.__setitem__(1, "label2"))),
     r"input 'label' feeds node '/Identity' \(Identity\)"),
    (lambda: edit(conditional_graph(), lambda g: g.input.append(helper.make_tensor_value_info(
        "extra", TensorProto.FLOAT, ["batch", 1]))), "this graph has 3"),
    (lambda: edit(conditional_graph(), lambda g: g.input[1].CopyFrom(helper.make_tensor_value_info(
        "extra", TensorProto.FLOAT, ["batch", 3]))), r"input 'extra' feeds nothing"),
])
def test_anything_but_the_concat_is_refused(make, message):
    with pytest.raises(UnsupportedGraphError, match=message):
        from_onnx(make())


def test_a_reversed_concat_is_refused_on_load(tmp_path):
    """Concat [label, z] would make the C backend treat the labels as latents: the manifest's names
    catch it (the graph's second Concat input must be classes.input)."""
    rng = np.random.default_rng(0)
    reversed_graph = dense_graph("z", LATENT, CLASSES, HIDDEN, IMAGE, "Tanh", {"image": "activated"}, rng,
                                 concat_inputs=[CLASS_INPUT, "z"])
    folder = write_package(tmp_path / "reversed", generator=reversed_graph)
    with pytest.raises(PackageError, match="generator.onnx: the graph reads .* through input 'z'"):
        ganpack.load(folder)


# ---------------------------------------------------------------------------------------------
# built-in names


@pytest.fixture
def built_in(tmp_path, monkeypatch, package):
    """A models folder holding the real default model and the test's conditional package."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copytree(model_module.DEFAULT_MODEL, folder / "default")
    shutil.copytree(package, folder / "conditional")
    monkeypatch.setattr(package_module, "BUILT_IN", folder)
    monkeypatch.chdir(tmp_path)
    return folder


def test_built_in_names_resolve(built_in, tmp_path, plain_package):
    assert ganpack.built_in_models() == ["conditional", "default"]
    model = ganpack.load("conditional", backend="numpy")
    assert model.folder == built_in / "conditional" and model.classes is not None
    assert ganpack.load("default", backend="numpy").classes is None
    with pytest.raises(PackageError, match=r"'seven' is neither a model package .* inside ganpack "
                                           r"\(conditional, default\)"):
        ganpack.load("seven")
    shutil.copytree(plain_package, tmp_path / "conditional")  # an existing path always wins
    assert ganpack.load("conditional", backend="numpy").classes is None
    with pytest.raises(PackageError, match="not a folder"):  # a path, never a name
        ganpack.load("no/such/conditional")


def test_built_in_names_are_only_folders_that_hold_a_package(built_in):
    (built_in / "empty").mkdir()
    assert "empty" not in ganpack.built_in_models()
    with pytest.raises(PackageError, match="neither"):
        ganpack.load("empty")
    for name in ("..", ".", ""):  # paths (the current folder and its parent), never names
        with pytest.raises(PackageError, match="manifest|not a folder"):
            ganpack.load(name)


# ---------------------------------------------------------------------------------------------
# the command line


def run_cli(argv, capsys) -> tuple[int, str]:
    """The `ganpack` command as a user meets it: exit status and stderr."""
    with pytest.raises(SystemExit) as exit_:
        run_command(main, argv)
    return exit_.value.code, capsys.readouterr().err


def test_sample_digit(built_in, capsys):
    assert main(["sample", "-n", "5", "-o", "sevens.npy", "--seed", "3", "--digit", "7", "--backend", "numpy"]) == 0
    expected = ganpack.load(built_in / "conditional", backend="numpy").sample(5, seed=3, label=7)
    assert np.array_equal(np.load("sevens.npy"), expected)
    assert main(["sample", "-n", "4", "-o", "sevens.png", "--digit", "7", "--model", "conditional"]) == 0
    assert main(["interpolate", "-o", "walk.npy", "--digit", "2", "--steps", "4", "--backend", "numpy"]) == 0
    walk, model = np.load("walk.npy"), ganpack.load("conditional", backend="numpy")
    ends = np.concatenate([model.latents(1, seed=s) for s in (1, 2)])
    assert np.array_equal(walk[[0, -1]], model.generate(ends, labels=[2, 2]))
    capsys.readouterr()
    assert main(["score", "sevens.npy", "--digit", "7", "--backend", "numpy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    scores = model.score(np.load("sevens.npy"), labels=[7] * 5)
    assert lines == [f"sevens.npy[{i}]\t{p:.6f}" for i, p in enumerate(scores)]


def test_info_shows_the_classes(built_in, capsys):
    assert main(["info", "--model", "conditional"]) == 0
    assert re.search(r"\nclasses +10, --digit 0 to 9: 0 1 2 3 4 5 6 7 8 9\n", capsys.readouterr().out)
    assert main(["info", "--model", "conditional", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == {"count": 10, "names": [str(i) for i in range(10)]}
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] is None


@pytest.mark.parametrize("argv, message", [
    (["sample", "--digit", "seven"], "argument --digit: expected an integer class index, got 'seven'"),
    (["sample", "--digit", "7.5"], "argument --digit: expected an integer class index, got '7.5'"),
    (["sample", "--digit", "10"], "--digit 10 is out of range: the model '.*' has 10 classes, 0 to 9"),
    (["sample", "--digit", "-1"], "--digit -1 is out of range"),
    (["interpolate", "--digit", "12"], "--digit 12 is out of range"),
    (["sample", "--digit", "7", "--model", "default"], "--digit 7: the model '.*' is unconditional"),
    (["score", "x.npy", "--digit", "7", "--model", "default"], "--digit 7: the model '.*' is unconditional"),
    (["sample", "--model", "conditional"], r"is class-conditional \(10 classes\): give --digit, 0 to 9"),
    (["sample", "--model", "seven"], r"--model 'seven' does not exist \(nor is it a model inside ganpack: "
                                     r"conditional, default\)"),
])
def test_digit_mistakes_are_one_line_and_status_2(built_in, capsys, argv, message):
    np.save("x.npy", np.zeros((2, 28, 28), np.uint8))
    status, err = run_cli(argv, capsys)
    (line,) = err.splitlines()
    assert status == 2 and re.search(message, line), line
    assert sorted(p.name for p in built_in.parent.iterdir()) == ["models", "x.npy"]  # nothing written


def test_digit_without_a_built_in_conditional_model(built_in, capsys):
    shutil.rmtree(built_in / "conditional")
    status, err = run_cli(["sample", "--digit", "7"], capsys)
    assert status == 2 and err.strip() == ("error: --digit 7 needs a class-conditional model, and this ganpack has "
                                           "none inside it; give one with --model")
