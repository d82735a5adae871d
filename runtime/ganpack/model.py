"""The public runtime API: load a model package, sample digits, score images.

    model = ganpack.load("model/")          # or ganpack.load() for the model inside the wheel
    images = model.sample(64, seed=1)       # uint8 (64, 28, 28); output="float" gives [-1, 1]
                                            # (the C backend does all of it in one call: latents,
                                            # both layers, the uint8 mapping)
    images = model.generate(z)              # from your own latents (n, latent_dim)
    p_real = model.score(images)            # (n,) discriminator probabilities

A class-conditional package (model.classes: its class names) takes the class of every row:
sample(n, seed, label=7) or labels=[...] (n indices), generate(z, labels=...) and
score(images, labels=...); ganpack.labels checks them.

    model = ganpack.load(precision="bf16")  # bfloat16 weights (ganpack.precision), float32 math

A loaded Model holds no mutable state, so one instance can serve many threads at once.
"""

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ganpack.archive import PathLike, extract_archive, is_archive
from ganpack.backends import Backend, backend_class, choose_backend
from ganpack.contract import DISCRIMINATOR_FILE, GENERATOR_FILE, IMAGE_SIDE, IMAGE_SLACK, LEAKY_RELU
from ganpack.dense_stack import DenseStack, load_dense_stack
from ganpack.errors import InputError, PackageError
from ganpack.labels import Labels, checked_labels
from ganpack.latents import MAX_SEED, Stream, draw_numpy, scale_offset
from ganpack.manifest import Classes, Network
from ganpack.package import BUILT_IN, DEFAULT_NAME, built_in_path, is_built_in_name, verify_package
from ganpack.precision import FP32, checked_precision

STREAM_ROWS = 16384  # digits per sample_chunks piece (12.8 MB of uint8); a multiple of the chunked
                    # backends' CHUNK_ROWS, so every backend call sees the batches sample() gives it
DEFAULT_MODEL = BUILT_IN / DEFAULT_NAME
OUTPUTS = ("uint8", "float")
DTYPES: dict[str, type[np.uint8] | type[np.float32]] = {"uint8": np.uint8, "float": np.float32}  # per output


def load(path: PathLike | None = None, backend: str = "auto", threads: int | None = None,
         precision: str = FP32) -> "Model":
    """Open a model package folder or its .zip archive (checksums verified); None opens the
    default one inside ganpack, and a name (a str with no path separator that is no existing
    file or folder, such as "conditional") the package of that name inside ganpack
    (ganpack.built_in_models() lists them).

    threads: CPU threads a backend may use per call (None: its default). onnxruntime also turns
    its spin-waiting off when it is given, so idle threads do not burn a core.
    precision: "fp32" (the default), or "bf16": both networks' weights rounded to bfloat16, then
    everything float32 (ganpack.precision; the c and numpy backends run it)."""
    if path is None:
        return Model(DEFAULT_MODEL, backend, threads, precision)
    return Model(built_in_path(path) if is_built_in_name(path) else path, backend, threads, precision)


def _check_stack(stack: DenseStack, network: Network, name: str, classes: Classes | None) -> None:
    """The graph must be the network the manifest describes, layer for layer (and the conditional
    one, reading the manifest's classes as its second input)."""
    count = classes.count if classes is not None else 0
    if stack.classes != count or (classes is not None and stack.label_name != classes.input):
        reads = f"{stack.classes} classes through input {stack.label_name!r}" if stack.classes else "no classes"
        says = f"{count} classes through input {classes.input!r}" if classes is not None else "no classes"
        raise PackageError(f"{name}: the graph reads {reads}, the manifest says {says}")
    if stack.widths != network.layer_widths:
        raise PackageError(f"{name}: graph widths {stack.widths} differ from the manifest's {network.layer_widths}")
    expected = [network.hidden_activation] * (len(stack.layers) - 1) + [network.output_activation]
    found = [layer.activation for layer in stack.layers]
    if found != expected:
        raise PackageError(f"{name}: graph activations {found} differ from the manifest's {expected}")
    for layer in stack.layers:
        if layer.activation == LEAKY_RELU and abs(layer.alpha - network.leaky_relu_alpha) > 1e-6:
            raise PackageError(f"{name}: graph Leaky ReLU alpha {layer.alpha} differs from the manifest's "
                               f"{network.leaky_relu_alpha}")
    inputs: dict[str, list[int | str]] = {stack.input_name: ["batch", stack.input_width]}
    if stack.label_name is not None:
        inputs[stack.label_name] = ["batch", stack.classes]
    expected_io = (inputs, {output: ["batch", stack.widths[-1]] for output in stack.outputs})
    if (network.inputs, network.outputs) != expected_io:
        raise PackageError(f"{name}: graph inputs and outputs {expected_io} differ from the manifest's "
                           f"{network.inputs} and {network.outputs}")


class Model:
    def __init__(self, package_dir: PathLike, backend: str = "auto", threads: int | None = None,
                 precision: str = FP32) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError(f"threads must be a positive integer or None, got {threads!r}")
        self.precision = checked_precision(precision)  # of the weights: "fp32" or "bf16"
        self.path = Path(package_dir)
        if is_archive(self.path):  # the single-file form: checked, then extracted for this model's lifetime
            self._extracted = extract_archive(self.path)
            folder = Path(self._extracted.name)
        elif self.path.is_file():
            raise PackageError(f"'{self.path}' is a file but not a model package archive (a .zip)")
        else:
            folder = self.path
        self.folder = folder  # where the package's files are read from
        self.manifest = verify_package(folder)
        generator_path, discriminator_path = folder / GENERATOR_FILE, folder / DISCRIMINATOR_FILE
        generator = load_dense_stack(generator_path)
        discriminator = load_dense_stack(discriminator_path)
        _check_stack(generator, self.manifest.generator, GENERATOR_FILE, self.manifest.classes)
        _check_stack(discriminator, self.manifest.discriminator, DISCRIMINATOR_FILE, self.manifest.classes)
        # both networks as read and checked (the objects the backends hold): what export-c and web write out
        self.generator_stack, self.discriminator_stack = generator, discriminator
        # None, or the class names: label i means classes[i] (e.g. "7")
        self.classes: tuple[str, ...] | None = (tuple(self.manifest.classes.names) if self.manifest.classes
                                                else None)
        self.backend = choose_backend(backend, self.precision)
        self.latent_dim = self.manifest.latent.dim
        self.image_dim = generator.widths[-1]
        latent = self.manifest.latent  # its stream: GENERATOR, or LEGACY_GENERATOR (format_version 1)
        scale, offset = scale_offset(latent.distribution, latent.parameters)
        self.stream = Stream(latent.generator, latent.dim, latent.distribution, float(scale), float(offset),
                             _draw_rows())
        cls = backend_class(self.backend)
        self._generator: Backend = cls(generator, generator_path, threads=threads, precision=self.precision,
                                       stream=self.stream)
        self._discriminator: Backend = cls(discriminator, discriminator_path, threads=threads,
                                           precision=self.precision)

    def __repr__(self) -> str:
        classes = f", classes={len(self.classes)}" if self.classes is not None else ""
        precision = f", precision='{self.precision}'" if self.precision != FP32 else ""
        return (f"ganpack.Model('{self.path}', backend='{self.backend}'{precision}, latent_dim={self.latent_dim}"
                f"{classes})")

    # ------------------------------------------------------------------------------------------
    # latents

    def latents(self, n: int, seed: int | None = None) -> np.ndarray:
        """(n, latent_dim) float32: rows 0..n-1 of the package's latent stream for `seed`
        (None: a fresh random seed). Row i never depends on n.

        "ganpack-philox/1" (format_version 2 packages; see ganpack.latents): counter-based, drawn
        in C when the kernel is built, else by the numpy reference, the same bits either way.
        "numpy-pcg64" (format_version 1): numpy.random.default_rng(seed), then mean + std *
        standard_normal(float32) or low + (high - low) * random(float32), as 0.1.0 drew them."""
        return self.stream.draw(self.stream.seed(seed), 0, _count(n))

    # ------------------------------------------------------------------------------------------
    # generator

    def sample(self, n: int, seed: int | None = None, output: str = "uint8", *, label: int | None = None,
               labels: npt.ArrayLike | None = None) -> np.ndarray:
        """n digits, (n, 28, 28): uint8 pixels by default, or float32 in [-1, 1]. Equal to
        generate(latents(n, seed), output); on the C backend one C call does all of it.

        A conditional model needs the class of the digits: label=7 for every row, or labels= n class
        indices (integers from 0 to len(model.classes) - 1). The latents are the same for every
        label: sample(n, seed, label=3) and sample(n, seed, label=7) draw the same z."""
        if type(n) is not int or n < 0:  # the common case checked first: at batch 1 every step counts
            n = _count(n)                # (bool is not int here)
        if type(seed) is not int or not 0 <= seed <= MAX_SEED:
            seed = self.stream.seed(seed)
        out = np.empty((n, IMAGE_SIDE, IMAGE_SIDE), DTYPES[output] if output in OUTPUTS else _dtype(output))
        checked = None if label is None and labels is None and self.classes is None else \
            checked_labels(n, label, labels, self.classes)
        return self._generator.sample_into(seed, 0, checked, out)

    def sample_chunks(self, n: int, seed: int | None = None, output: str = "uint8", *, label: int | None = None,
                      labels: npt.ArrayLike | None = None) -> Iterator[np.ndarray]:
        """sample(n, seed, output, label=..., labels=...) in pieces of at most STREAM_ROWS digits, for
        outputs larger than memory: the pieces, concatenated, equal sample(...) bit for bit."""
        n, seed, dtype = _count(n), self.stream.seed(seed), _dtype(output)
        checked = checked_labels(n, label, labels, self.classes)
        first = 0
        for z in self.stream.pieces(seed, n, STREAM_ROWS):  # the legacy stream is drawn in order
            out = np.empty((len(z), IMAGE_SIDE, IMAGE_SIDE), dtype)
            yield self._generator.run_into(z, None if checked is None else checked[first:first + len(z)], out)
            first += len(z)

    def generate(self, z: npt.ArrayLike, output: str = "uint8", out: np.ndarray | None = None, *,
                 labels: npt.ArrayLike | None = None) -> np.ndarray:
        """Digits from caller-provided latents z of shape (n, latent_dim).

        out: an optional C-contiguous (n, 28, 28) array to write into, float32 for
        output="float" or uint8 for output="uint8", so repeated calls allocate nothing.
        labels: a conditional model's class per row, n integers (see sample)."""
        dtype = DTYPES[output] if output in OUTPUTS else _dtype(output)
        z = _as_float32_rows(z, self.latent_dim, "z", check_finite=False)  # the backend checks the values
        checked = None if labels is None and self.classes is None else self._labels_per_row(len(z), labels)
        if out is None:
            out = np.empty((len(z), IMAGE_SIDE, IMAGE_SIDE), dtype)
        elif not (isinstance(out, np.ndarray) and out.dtype == dtype and out.flags.c_contiguous
                  and out.flags.writeable and out.shape == (len(z), IMAGE_SIDE, IMAGE_SIDE)):
            raise InputError(f"out must be a writeable C-contiguous {np.dtype(dtype).name} array of shape "
                             f"{(len(z), IMAGE_SIDE, IMAGE_SIDE)} for output={output!r}")
        try:
            return self._generator.run_into(z, checked, out, "finite")
        except InputError:
            _as_float32_rows(z, self.latent_dim, "z")  # names the row and column
            raise

    def _labels_per_row(self, n: int, labels: npt.ArrayLike | None) -> Labels | None:
        """generate's and score's labels, checked (None for an unconditional model, which takes none).
        Callers skip the call when both are None: the unconditional batch-1 path."""
        return checked_labels(n, None, labels, self.classes, takes_label=False)

    # ------------------------------------------------------------------------------------------
    # discriminator

    def score(self, images: npt.ArrayLike, labels: npt.ArrayLike | None = None) -> np.ndarray:
        """The discriminator's probability that each image is real, (n,) float32.

        images: uint8 pixels (n, 28, 28) or (n, 784), mapped to [-1, 1] as x / 127.5 - 1 (on the C
        backend inside the kernel); or floats already in [-1, 1] (other real dtypes are converted
        to float32). labels: a conditional model's class per image, n integers: the probability
        that the image is a real digit of that class."""
        images = np.asarray(images)
        if images.ndim == 3:
            if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
                raise InputError(f"images must be (n, 28, 28) or (n, 784), got shape {images.shape}")
            images = images.reshape(len(images), -1)
        if images.dtype == np.uint8:
            if images.ndim != 2 or images.shape[1] != self.image_dim:
                raise InputError(f"images must be (n, 28, 28) or (n, 784), got shape {images.shape}")
            rows, check = np.ascontiguousarray(images), None  # every uint8 value is a pixel
        else:
            rows, check = _as_float32_rows(images, self.image_dim, "images", check_finite=False), "image"
        checked = None if labels is None and self.classes is None else self._labels_per_row(len(rows), labels)
        try:
            return self._discriminator.run_into(rows, checked, np.empty(len(rows), np.float32), check)
        except InputError:
            if check:
                _check_image_range(_as_float32_rows(rows, self.image_dim, "images"))  # names the value
            raise


def _draw_rows() -> Callable[[int, int, int, int, str, float, float], np.ndarray]:
    """The latent stream's rows in C when the kernel is built, else in numpy: the same bits."""
    try:
        from ganpack.backends.c_backend import draw_latents
    except ImportError:
        return draw_numpy
    return draw_latents


def _dtype(output: object) -> type[np.uint8] | type[np.float32]:
    if isinstance(output, str) and output in DTYPES:
        return DTYPES[output]
    raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")


def _count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


def _check_image_range(rows: np.ndarray) -> np.ndarray:
    """Float images must lie in [-1, 1] (a float rounding's worth around it)."""
    if rows.size and (rows.min() < -1.0 - IMAGE_SLACK or rows.max() > 1.0 + IMAGE_SLACK):
        raise InputError(f"float images must lie in [-1, 1], got values in [{rows.min()}, {rows.max()}]; "
                         "pass uint8 pixels to have them rescaled")
    return rows


def _as_float32_rows(values: npt.ArrayLike, width: int, name: str, check_finite: bool = True) -> np.ndarray:
    """Validate and convert to a C-contiguous float32 (n, width) array.

    The one conversion rule: any real numeric dtype (float16/64, integers) becomes float32;
    bool, complex, object and string arrays are refused. Non-finite values are refused (unless
    the caller has them checked elsewhere: check_finite=False)."""
    if (type(values) is np.ndarray and values.dtype == np.float32 and values.ndim == 2
            and values.shape[1] == width and values.flags.c_contiguous):
        array = values  # already what the backends take: skip the conversions
    else:
        array = _converted(values, width, name)
    if check_finite and not _all_finite(array):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise InputError(f"{name} holds a non-finite value ({array[tuple(bad)]}) at row {bad[0]}, column {bad[1]}")
    return array


def _all_finite(array: np.ndarray) -> bool:
    """One dot product answers for most arrays: x . x is finite when every x is finite and not
    huge, NaN or inf otherwise (about 3x faster than isfinite().all() at batch 1). Only when
    it is not finite does the exact elementwise check run (numpy then also warns of the
    overflow, for inputs beyond 1e19)."""
    flat = array.reshape(-1)
    return math.isfinite(float(flat.dot(flat))) or bool(np.isfinite(flat).all())


def _converted(values: npt.ArrayLike, width: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.floating)
                                       or np.issubdtype(array.dtype, np.integer)):
        raise InputError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != width:
        raise InputError(f"{name} must have shape (n, {width}), got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)
