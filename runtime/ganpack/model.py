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
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ganpack.archive import PathLike, extract_archive, is_archive
from ganpack.backends import Backend, FusedBackend, activations, backend_class, choose_backend
from ganpack.contract import DISCRIMINATOR_FILE, GENERATOR_FILE, IMAGE_SIDE, LEAKY_RELU, NORMAL, from_uint8, to_uint8
from ganpack.dense_stack import DenseStack, load_dense_stack
from ganpack.errors import InputError, PackageError
from ganpack.labels import Labels, checked_labels
from ganpack.latents import GENERATOR, MAX_SEED, draw_numpy, scale_offset
from ganpack.manifest import Classes, Network
from ganpack.package import BUILT_IN, DEFAULT_NAME, built_in_path, is_built_in_name, verify_package
from ganpack.precision import FP32, checked_precision

CHUNK_ROWS = 4096  # rows per backend call: bounds the memory of intermediate activations
STREAM_ROWS = 4 * CHUNK_ROWS  # digits per sample_chunks piece (12.8 MB of uint8); a multiple of CHUNK_ROWS,
                              # so every backend call sees the batches sample() gives it
DEFAULT_MODEL = BUILT_IN / DEFAULT_NAME
OUTPUTS = ("uint8", "float")


def load(path: PathLike | None = None, backend: str = "auto", threads: int | None = None,
         precision: str = FP32) -> "Model":
    """Open a model package folder or its .zip archive (checksums verified); None opens the
    default one inside ganpack, and a name (a str with no path separator that is no existing
    file or folder, such as "conditional") the package of that name inside ganpack
    (ganpack.built_in_models() lists them).

    threads: CPU threads a backend may use per call (None: its default). onnxruntime also turns
    its spin-waiting off when it is given, so idle threads do not burn a core.
    precision: "fp32" (the default), or "bf16": both networks' weights rounded to bfloat16, half
    their bytes, everything else float32 (ganpack.precision; the c and numpy backends run it)."""
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
        # None, or the class names: label i means classes[i] (e.g. "7")
        self.classes: tuple[str, ...] | None = (tuple(self.manifest.classes.names) if self.manifest.classes
                                                else None)
        self.backend = choose_backend(backend, self.precision)
        cls = backend_class(self.backend)
        self._generator: Backend = cls(generator, generator_path, threads=threads, precision=self.precision)
        self._discriminator: Backend = cls(discriminator, discriminator_path, threads=threads,
                                           precision=self.precision)
        self.latent_dim = self.manifest.latent.dim
        self.image_dim = generator.widths[-1]
        latent = self.manifest.latent
        self._stream = latent.generator  # GENERATOR, or ganpack.latents.LEGACY_GENERATOR (format_version 1)
        self._scale, self._offset = (float(v) for v in scale_offset(latent.distribution, latent.parameters))
        self._fused = self._sample_in_c = self._sample_labelled_in_c = False  # True on the C backend: one C
                                                                              # call per sample(), score()
        if isinstance(self._generator, FusedBackend) and isinstance(self._discriminator, FusedBackend):
            self._fused = True  # everything fixed per model is looked up once, here: batch 1 needs it
            if self.classes is None:
                self._run_generator = self._generator.runner()
                self._run_discriminator = self._discriminator.runner(check="image")
                self._sample_in_c = self._stream == GENERATOR
                if self._sample_in_c:
                    self._draw = self._generator.sampler(latent.distribution, self._scale, self._offset)
            else:  # conditional: the same one-call paths, with the labels
                self._run_generator_labelled = self._generator.labelled_runner()
                self._run_discriminator_labelled = self._discriminator.labelled_runner(check="image")
                self._sample_labelled_in_c = self._stream == GENERATOR
                if self._sample_labelled_in_c:
                    self._draw_labelled = self._generator.labelled_sampler(latent.distribution, self._scale,
                                                                           self._offset)

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
        n, seed = _count(n), self._seed(seed)
        if self._stream == GENERATOR:
            return next(self._latent_chunks(n, seed, max(n, 1)))
        rng = np.random.default_rng(seed)  # 0.1.0's stream: one numpy generator, drawn in order
        out = np.empty((n, self.latent_dim), np.float32)
        for start in range(0, n, CHUNK_ROWS):
            self._draw_legacy(rng, out[start:start + CHUNK_ROWS])
        return out

    def _latent_chunks(self, n: int, seed: int | None, rows: int) -> Iterator[np.ndarray]:
        """Rows 0..n-1 of the latent stream (seed already checked), `rows` at a time."""
        latent = self.manifest.latent
        if self._stream == GENERATOR:  # counter-based: any row range can be drawn on its own
            assert seed is not None  # _seed gives this stream an int
            try:
                from ganpack.backends.c_backend import draw_latents
            except ImportError:  # no compiled kernel: the numpy reference gives the same bits
                draw_latents = draw_numpy
            for first in range(0, max(n, 1), rows):
                yield draw_latents(seed, first, min(rows, n - first), self.latent_dim, latent.distribution,
                                   self._scale, self._offset)
            return
        rng = np.random.default_rng(seed)  # 0.1.0's stream: one numpy generator, drawn in order
        for first in range(0, max(n, 1), rows):
            yield self._draw_legacy(rng, np.empty((min(rows, n - first), self.latent_dim), np.float32))

    def _draw_legacy(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        """The next rows of the "numpy-pcg64" stream, drawn into `rows` (float32, in place)."""
        if self.manifest.latent.distribution == NORMAL:
            rng.standard_normal(rows.shape, dtype=np.float32, out=rows)
        else:
            rng.random(rows.shape, dtype=np.float32, out=rows)
        rows *= np.float32(self._scale)  # (std, mean) or (high - low, low)
        rows += np.float32(self._offset)
        return rows

    def _seed(self, seed: object) -> int | None:
        """The seed checked; None becomes a fresh random one for the GENERATOR stream (the legacy
        stream takes None itself)."""
        if self._stream == GENERATOR:
            return _stream_seed(seed)
        return None if seed is None else _checked_seed(seed)

    # ------------------------------------------------------------------------------------------
    # generator

    def sample(self, n: int, seed: int | None = None, output: str = "uint8", *, label: int | None = None,
               labels: npt.ArrayLike | None = None) -> np.ndarray:
        """n digits, (n, 28, 28): uint8 pixels by default, or float32 in [-1, 1]. Equal to
        generate(latents(n, seed), output); on the C backend one C call does all of it.

        A conditional model needs the class of the digits: label=7 for every row, or labels= n class
        indices (integers from 0 to len(model.classes) - 1). The latents are the same for every
        label: sample(n, seed, label=3) and sample(n, seed, label=7) draw the same z."""
        if self._sample_in_c and label is None and labels is None:  # written for batch 1, where the Python
                                                                     # around the C call is most of it
            if type(n) is not int or n < 0:  # bool is not int here
                n = _count(n)
            if type(seed) is not int or not 0 <= seed <= MAX_SEED:
                seed = _stream_seed(seed)  # = self._seed(seed): this is the GENERATOR stream
            if output == "uint8":
                return self._draw(seed, np.empty((n, IMAGE_SIDE, IMAGE_SIDE), np.uint8))
            if output == "float":
                return self._draw(seed, np.empty((n, IMAGE_SIDE, IMAGE_SIDE), np.float32))
            raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
        n, seed = _count(n), self._seed(seed)
        if output not in OUTPUTS:
            raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
        checked = checked_labels(n, label, labels, self.classes)
        if checked is not None and self._sample_labelled_in_c:  # one C call: latents, labelled stack, pixels
            assert seed is not None  # the GENERATOR stream: _seed gave it an int
            dtype = np.uint8 if output == "uint8" else np.float32
            return self._draw_labelled(seed, checked, np.empty((n, IMAGE_SIDE, IMAGE_SIDE), dtype))
        return self.generate(self.latents(n, seed), output, labels=checked)

    def sample_chunks(self, n: int, seed: int | None = None, output: str = "uint8", *, label: int | None = None,
                      labels: npt.ArrayLike | None = None) -> Iterator[np.ndarray]:
        """sample(n, seed, output, label=..., labels=...) in pieces of at most STREAM_ROWS digits, for
        outputs larger than memory: the pieces, concatenated, equal sample(...) bit for bit."""
        n, seed = _count(n), self._seed(seed)
        if output not in OUTPUTS:
            raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
        checked = checked_labels(n, label, labels, self.classes)
        first = 0
        for z in self._latent_chunks(n, seed, STREAM_ROWS):
            yield self.generate(z, output, labels=None if checked is None else checked[first:first + len(z)])
            first += len(z)

    def generate(self, z: npt.ArrayLike, output: str = "uint8", out: np.ndarray | None = None, *,
                 labels: npt.ArrayLike | None = None) -> np.ndarray:
        """Digits from caller-provided latents z of shape (n, latent_dim).

        out: an optional C-contiguous (n, 28, 28) array to write into, float32 for
        output="float" or uint8 for output="uint8", so repeated calls allocate nothing.
        labels: a conditional model's class per row, n integers (see sample)."""
        if output not in OUTPUTS:
            raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
        z = _as_float32_rows(z, self.latent_dim, "z", check_finite=not self._fused)  # C checks it in cache
        checked = None if labels is None and self.classes is None else self._labels_per_row(len(z), labels)
        dtype = np.uint8 if output == "uint8" else np.float32
        if out is not None and not (isinstance(out, np.ndarray) and out.dtype == dtype and out.flags.c_contiguous
                                    and out.flags.writeable and out.shape == (len(z), IMAGE_SIDE, IMAGE_SIDE)):
            raise InputError(f"out must be a writeable C-contiguous {np.dtype(dtype).name} array of shape "
                             f"{(len(z), IMAGE_SIDE, IMAGE_SIDE)} for output={output!r}")
        if self._fused:  # C: the uint8 mapping happens in the kernel's store
            target = np.empty((len(z), IMAGE_SIDE, IMAGE_SIDE), dtype) if out is None else out
            try:
                if checked is None:
                    return self._run_generator(z, target)
                return self._run_generator_labelled(z, checked, target)
            except InputError:
                _as_float32_rows(z, self.latent_dim, "z")  # names the row and column
                raise
        images = self._run(self._generator, z, "activated", None if output == "uint8" else out, checked)  # (n, 784)
        images = images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
        if output == "float":
            return images
        if out is None:
            return to_uint8(images)
        out[...] = to_uint8(images)
        return out

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
            checked = None if labels is None and self.classes is None else self._labels_per_row(len(images), labels)
            if self._fused:  # the sigmoid too: one C call
                if checked is None:
                    return self._run_discriminator(np.ascontiguousarray(images), np.empty(len(images), np.float32))
                return self._run_discriminator_labelled(np.ascontiguousarray(images), checked,
                                                        np.empty(len(images), np.float32))
            images = from_uint8(images)
        if self._fused:  # C checks the range chunk by chunk, in cache, as the first layer reads it
            rows = _as_float32_rows(images, self.image_dim, "images", check_finite=False)
            checked = None if labels is None and self.classes is None else self._labels_per_row(len(rows), labels)
            try:
                if checked is None:
                    return self._run_discriminator(rows, np.empty(len(rows), np.float32))
                return self._run_discriminator_labelled(rows, checked, np.empty(len(rows), np.float32))
            except InputError:
                _check_image_range(_as_float32_rows(rows, self.image_dim, "images"))  # names the value
                raise
        rows = _check_image_range(_as_float32_rows(images, self.image_dim, "images"))
        checked = None if labels is None and self.classes is None else self._labels_per_row(len(rows), labels)
        logits = self._run(self._discriminator, rows, "logits", labels=checked)  # (n, 1)
        return activations.sigmoid(logits[:, 0])


    # ------------------------------------------------------------------------------------------

    def _run(self, backend: Backend, rows: np.ndarray, kind: str, out: np.ndarray | None = None,
             labels: Labels | None = None) -> np.ndarray:
        """Run a numpy or onnxruntime backend over (n, in) rows (and a conditional model's labels) in
        chunks of CHUNK_ROWS, so their intermediates stay bounded; returns the `kind` output. (The C
        backend runs in one call: _run_generator, _run_discriminator and their labelled forms.)"""
        width = backend.out_width
        out = np.empty((len(rows), width), np.float32) if out is None else out.reshape(len(rows), width)
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = slice(start, start + CHUNK_ROWS)  # row slices of `out` stay C-contiguous
            result = backend.run(rows[chunk], None if labels is None else labels[chunk])
            out[chunk] = result[kind] if kind in result else _activate(backend, result)
        return out


def _activate(backend: Backend, result: dict[str, np.ndarray]) -> np.ndarray:
    """The activated output from logits, for backends that returned only the logits."""
    last = backend.stack.layers[-1]
    return activations.apply(result["logits"], last.activation, last.alpha)


def _count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


def _checked_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def _stream_seed(seed: object) -> int:
    """A seed of the GENERATOR stream, checked; None: a fresh random one."""
    if seed is None:
        return secrets.randbits(64)
    checked = _checked_seed(seed)
    if checked > MAX_SEED:
        raise InputError(f"seed must be below 2**64 for the {GENERATOR} latent stream, got {seed}")
    return checked


def _check_image_range(rows: np.ndarray) -> np.ndarray:
    """Float images must lie in [-1, 1] (a float rounding's worth around it)."""
    if rows.size and (rows.min() < -1.0 - 1e-6 or rows.max() > 1.0 + 1e-6):
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
