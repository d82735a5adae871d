"""The `ganpack` command: sample, score, info, interpolate, export-c, web.

    ganpack sample -n 64 -o digits.png          # a PNG grid (or .npy: uint8 (n, 28, 28))
    ganpack sample --digit 7 -o sevens.png      # the class-conditional model inside ganpack (or --model)
    ganpack score digits.npy                    # discriminator probability per image (or digits.png)
    ganpack info                                # manifest, quality, backends, CPU features in use
    ganpack interpolate -o walk.png --seeds 1 2 --steps 10
    ganpack export-c default digits.gpkc        # one file a C program reads (csrc/ganpack.h)
    ganpack web default page/                   # a static page that draws digits in the browser

A user's mistake (a malformed number, a missing file, an unwritable folder, an image of the
wrong kind) ends in one line on stderr and exit status 2, never a traceback: argparse's errors
are made one line, every other check raises InputError or PackageError (errors.run_command).
Everything that can be checked before the model loads is checked first.
"""

import argparse
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ganpack import __version__
from ganpack.atomic import writable_file
from ganpack.backends import PREFERENCE
from ganpack.contract import IMAGE_DIM, IMAGE_SHAPE
from ganpack.errors import ArgumentParser, InputError, counted, run_command
from ganpack.latents import MAX_SEED
from ganpack.model import STREAM_ROWS, Model, load
from ganpack.npy import check_space, write_npy
from ganpack.package import built_in_models, is_built_in_name
from ganpack.precision import FP32, PRECISIONS

MAX_GRID_IMAGES = 10_000  # a PNG grid of more is not for looking at; .npy takes any n, streamed
CONDITIONAL_MODEL = "conditional"  # the built-in model --digit uses when no --model is given


# ---------------------------------------------------------------------------------------------
# arguments: every number is checked by argparse, so its error names the option and the value

def _integer(low: int, high: int, expected: str) -> Callable[[str], int]:
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return check


COUNT = _integer(1, sys.maxsize, "a positive integer")
SEED = _integer(0, MAX_SEED, "an integer from 0 to 2**64 - 1")
STEPS = _integer(2, MAX_GRID_IMAGES, f"an integer from 2 to {MAX_GRID_IMAGES:,}")
DIGIT = _integer(-sys.maxsize, sys.maxsize, "an integer class index")  # its range is the model's, checked once loaded


def _output_path(out: str) -> Path:
    """Checked before any work is done: a known suffix, a writable folder that exists."""
    if Path(out).suffix.lower() not in (".npy", ".png"):
        raise InputError(f"output '{out}' must end in .png (a grid) or .npy (an array)")
    return writable_file(out, "digits.png")


def _model(args: argparse.Namespace) -> Model:
    """The --model package (a path, or the name of a model inside ganpack), else the built-in one:
    the class-conditional model when --digit is given, the default otherwise. A conditional model
    needs --digit, an unconditional one refuses it (checked by _digit once the model is loaded)."""
    if args.model is not None and not Path(args.model).exists():
        if not (is_built_in_name(args.model) and args.model in built_in_models()):
            raise InputError(f"--model '{args.model}' does not exist (nor is it a model inside ganpack: "
                             f"{', '.join(built_in_models())})")
    if args.model is None and getattr(args, "digit", None) is not None:
        if CONDITIONAL_MODEL not in built_in_models():
            raise InputError(f"--digit {args.digit} needs a class-conditional model, and this ganpack has none "
                             "inside it; give one with --model")
        return load(CONDITIONAL_MODEL, backend=args.backend, precision=args.precision)
    return load(args.model, backend=args.backend, precision=args.precision)


def _digit(args: argparse.Namespace, model: Model) -> int | None:
    """--digit, checked against the model's classes (None for an unconditional model)."""
    digit: int | None = getattr(args, "digit", None)
    if model.classes is None:
        if digit is not None:
            raise InputError(f"--digit {digit}: the model '{model.path}' is unconditional (it has no classes)")
        return None
    count = len(model.classes)
    if digit is None:
        raise InputError(f"the model '{model.path}' is class-conditional ({count} classes): give --digit, "
                         f"0 to {count - 1}")
    if not 0 <= digit < count:
        raise InputError(f"--digit {digit} is out of range: the model '{model.path}' has {count} classes, "
                         f"0 to {count - 1}")
    return digit


def _labels(digit: int | None, n: int) -> np.ndarray | None:
    return None if digit is None else np.full(n, digit, np.int32)


def _done(what: str, model: Model) -> None:
    print(f"{what} (model: {model.path}, backend: {model.backend}, precision: {model.precision})", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# sample and interpolate

def sample(args: argparse.Namespace) -> int:
    path = _output_path(args.out)
    if path.suffix.lower() == ".png":
        if args.n > MAX_GRID_IMAGES:
            raise InputError(f"-n {args.n}: a PNG grid holds at most {MAX_GRID_IMAGES:,} digits; "
                             "write a .npy array for more (-o digits.npy)")
        model = _model(args)
        _write_png(model.sample(args.n, seed=args.seed, label=_digit(args, model)), path)
    else:
        check_space(path, (args.n, *IMAGE_SHAPE), f"-n {args.n}")
        model = _model(args)
        write_npy(path, (args.n, *IMAGE_SHAPE), model.sample_chunks(args.n, seed=args.seed,
                                                                    label=_digit(args, model)))
    _done(f"wrote {counted(args.n, 'image')} to {path}", model)
    return 0


def interpolate(args: argparse.Namespace) -> int:
    path = _output_path(args.out)
    model = _model(args)
    digit = _digit(args, model)
    start, end = (model.latents(1, seed=seed)[0] for seed in args.seeds)
    weights = np.linspace(0.0, 1.0, args.steps, dtype=np.float32)[:, None]
    # a straight line in z, (steps, 28, 28); a conditional model draws the one class all along it
    images = model.generate((1 - weights) * start + weights * end, labels=_labels(digit, args.steps))
    if path.suffix.lower() == ".png":
        _write_png(images, path, columns=args.steps)
    else:
        write_npy(path, images.shape, [images])
    _done(f"wrote {counted(args.steps, 'image')} to {path}", model)
    return 0


def _write_png(images: np.ndarray, path: Path, columns: int = 0) -> None:
    from ganpack.grid import save_grid

    try:
        save_grid(images, path, columns=columns)
    except OSError as error:
        raise InputError(f"cannot write '{path}': {error.strerror or error}") from None


# ---------------------------------------------------------------------------------------------
# score

def score(args: argparse.Namespace) -> int:
    images = {name: _read_images(name) for name in args.images}  # every file checked before any work
    model = _model(args)
    digit = _digit(args, model)  # a conditional model: the probability of a real digit of that class
    count = 0
    for name, array in images.items():
        for first in range(0, len(array), STREAM_ROWS):  # a memory-mapped .npy is read a chunk at a time
            chunk = np.asarray(array[first:first + STREAM_ROWS])
            try:  # the error names a huge or non-finite value; numpy's overflow warnings would only repeat it
                with np.errstate(over="ignore", invalid="ignore"):
                    probabilities = model.score(chunk, labels=_labels(digit, len(chunk)))
            except InputError as error:
                raise InputError(f"'{name}': {error}") from None
            for index, probability in enumerate(probabilities, start=first):
                print(f"{name}[{index}]\t{probability:.6f}")
        count += len(array)
    _done(f"scored {counted(count, 'image')}", model)
    return 0


def _read_images(name: str) -> np.ndarray:
    """A .npy array ((n, 28, 28) or (n, 784), uint8 or real numbers), a 28x28 grayscale PNG, or a
    PNG grid of them that ganpack wrote (its ganpack-grid chunk says where its n digits are)."""
    path = Path(name)
    if path.is_dir():
        raise InputError(f"image file '{name}' is a folder")
    if not path.is_file():
        raise InputError(f"image file '{name}' does not exist")
    suffix = path.suffix.lower()
    if suffix == ".png":
        return _read_png_digits(name)
    if suffix != ".npy":
        raise InputError(f"image file '{name}' must be .npy or .png")
    try:
        with open(path, "rb") as file:
            magic = file.read(6)
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # never unpickle: loading must not run code
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"'{name}' is not a plain numpy array file: {error}") from None
    if magic != b"\x93NUMPY" or not isinstance(array, np.ndarray):
        raise InputError(f"'{name}' is not a plain numpy array file")
    if not (array.ndim == 3 and array.shape[1:] == IMAGE_SHAPE or array.ndim == 2 and array.shape[1] == IMAGE_DIM):
        raise InputError(f"'{name}' holds an array of shape {array.shape}; score takes (n, 28, 28) or (n, 784)")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number) or np.issubdtype(
            array.dtype, np.complexfloating):
        raise InputError(f"'{name}' holds {array.dtype} values; score takes uint8 pixels or floats in [-1, 1]")
    if len(array) == 0:
        raise InputError(f"'{name}' holds no images")
    return array


def _read_png_digits(name: str) -> np.ndarray:
    """(n, 28, 28) uint8: a grid's digits in the order they were drawn, or a plain PNG's one.
    A PNG without the layout chunk that is not 28x28 (a grid written before ganpack recorded
    layouts, or one an editor rewrote) is refused, not guessed at: its size does not say how many
    of its cells hold digits (a short last row and a black digit look alike)."""
    from ganpack.grid import GRID_KEYWORD, read_grid

    images, layout = read_grid(name)  # (n, cell_height, cell_width)
    height, width = images.shape[1:]
    if layout is None and (height, width) != IMAGE_SHAPE:
        raise InputError(f"'{name}' is {width}x{height} pixels with no {GRID_KEYWORD} chunk (the layout ganpack "
                         "sample writes into its grids); score reads a 28x28 digit or a grid ganpack wrote")
    if (height, width) != IMAGE_SHAPE:
        raise InputError(f"'{name}' is a grid of {width}x{height} images; score reads 28x28 digits")
    return images


# ---------------------------------------------------------------------------------------------
# info

def info(args: argparse.Namespace) -> int:
    from ganpack.backends import available_backends

    model = _model(args)
    manifest = model.manifest
    latent, parity = manifest.latent, manifest.parity
    facts = {
        "ganpack": __version__,
        "package": str(model.path),
        "format": f"{manifest.format} v{manifest.format_version}",
        "latent": {"dim": latent.dim, "distribution": latent.distribution, **latent.parameters,
                   "generator": latent.generator},
        "generator": {"layers": manifest.generator.layer_widths, "alpha": manifest.generator.leaky_relu_alpha,
                      "weights": manifest.generator_weights},
        "discriminator": {"layers": manifest.discriminator.layer_widths},
        "classes": ({"count": manifest.classes.count, "names": manifest.classes.names}
                    if manifest.classes is not None else None),
        "trained": {key: manifest.provenance.get(key) for key in
                    ("steps", "epochs", "dataset", "seed", "exported_at", "ganpack_version")},
        "parity": {key: parity.get(key) for key in ("reference", "runtime", "inputs", "tolerance", "max_abs_diff")},
        "quality": manifest.quality,
        "backends_available": available_backends(),
        "backend_in_use": model.backend,
        "precision": model.precision,
        "cpu_features": _cpu_features(),
    }
    print(json.dumps(facts, indent=2) if args.json else _describe(facts))
    return 0


def _classes(classes: dict[str, Any]) -> str:
    """A conditional package's classes on one line: the count, then the names (the first 20)."""
    names = classes["names"]
    shown = " ".join(names[:20]) + (" ..." if len(names) > 20 else "")
    return f"{classes['count']}, --digit 0 to {classes['count'] - 1}: {shown}"


def _cpu_features() -> dict[str, str]:
    """The machine (x86_64, aarch64, ...) and the kernel path it runs: avx512, avx2_fma, or
    portable (plain C, vectorized by the compiler: every CPU without AVX2, ARM64 included)."""
    machine = platform.machine() or "unknown"
    try:
        from ganpack.backends.c_backend import kernel_isa
    except ImportError:
        return {"machine": machine, "c_kernel": "not available"}
    return {"machine": machine, "c_kernel_isa": kernel_isa()}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(_number(v) for v in value)
    return str(value)


def _describe(facts: dict[str, Any]) -> str:
    """The facts as aligned `key  value` lines, then the parity and quality figures as short tables."""
    latent, trained, parity = facts["latent"], facts["trained"], facts["parity"]
    parameters = ", ".join(f"{k}={_number(v)}" for k, v in latent.items() if k not in ("dim", "distribution",
                                                                                       "generator"))
    backends = [f"{b} (in use)" if b == facts["backend_in_use"] else b for b in facts["backends_available"]]
    rows = [
        ("ganpack", facts["ganpack"]),
        ("package", f"{facts['package']} ({facts['format']})"),
        ("latent", f"{latent['dim']} values, {latent['distribution']}({parameters}), stream {latent['generator']}"),
        ("generator", (f"{' -> '.join(map(str, facts['generator']['layers']))}, leaky_relu alpha "
                       f"{facts['generator']['alpha']}, {facts['generator']['weights']} weights")),
        ("discriminator", " -> ".join(map(str, facts["discriminator"]["layers"]))),
        *([("classes", _classes(facts["classes"]))] if facts["classes"] else []),
        ("trained", ", ".join(f"{k} {_number(v)}" for k, v in trained.items() if v is not None) or "unknown"),
        ("backends", ", ".join(backends)),
        ("weights", {"fp32": "float32", "bf16": "bfloat16 (--precision bf16), float32 math"}[facts["precision"]]),
        ("cpu", ", ".join(f"{k} {v}" for k, v in facts["cpu_features"].items())),
    ]
    lines = [f"{key:<15}{value}" for key, value in rows]
    if parity.get("max_abs_diff"):
        lines += ["", (f"parity: max abs difference, {parity.get('runtime')} against {parity.get('reference')} "
                       f"({parity.get('inputs')} inputs, tolerance {_number(parity.get('tolerance'))})")]
        lines += [f"  {key:<28}{_number(value)}" for key, value in parity["max_abs_diff"].items()]
    quality = facts["quality"]
    if not quality:
        return "\n".join(lines + ["", "quality: not measured for this package"])
    real = quality.get("reference_real", {})
    lines += ["", f"quality{'':<24}{'model':>12}" + (f"{'real images':>14}" if real else "")]
    for key, value in quality.items():
        if key != "reference_real" and not isinstance(value, list):
            lines.append(f"  {key:<29}{_number(value):>12}" + (f"{_number(real[key]):>14}" if key in real else ""))
    for key, value in quality.items():  # lists (the class histogram) on lines of their own
        if isinstance(value, list):
            lines.append(f"  {key:<29}{_number(value)}" + (f"\n  {'(real images)':<29}{_number(real[key])}"
                                                           if key in real else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = ArgumentParser(prog="ganpack", description="Sample and score ganpack model packages.")
    top.add_argument("--version", action="version", version=f"ganpack {__version__}")
    commands = top.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--model", default=None, help="model package folder or .zip, or the name of one inside "
                                                      "ganpack (default: the default one; with --digit, the "
                                                      "class-conditional one)")
        sub.add_argument("--backend", default="auto", choices=["auto", *PREFERENCE],
                         help="which backend runs the networks (default: auto, the fastest available)")
        sub.add_argument("--precision", default=FP32, choices=PRECISIONS,
                         help="of the weights: fp32 (default), or bf16 (rounded to bfloat16, run as float32; "
                              "c and numpy backends; see docs/precision.md)")
        sub.set_defaults(handler=handler)
        return sub

    s = command("sample", sample, "generate digits into a PNG grid or a .npy array")
    s.add_argument("-n", type=COUNT, default=64, help=f"how many (default 64; a PNG grid takes at most "
                                                      f"{MAX_GRID_IMAGES:,}, .npy any number, streamed to disk)")
    s.add_argument("-o", "--out", default="digits.png", help="output .png or .npy (default digits.png)")
    s.add_argument("--seed", type=SEED, default=None, help="seed for the latents, 0 to 2**64 - 1 "
                                                           "(default: fresh randomness)")
    digit_help = "the class to draw, for a class-conditional model (0 to 9 for digits)"
    s.add_argument("--digit", type=DIGIT, default=None, help=digit_help)
    c = command("score", score, "print the discriminator's probability that each image is real")
    c.add_argument("images", nargs="+", help=".npy arrays ((n, 28, 28) or (n, 784)), 28x28 grayscale PNGs, or "
                                             "PNG grids that ganpack sample or interpolate wrote")
    c.add_argument("--digit", type=DIGIT, default=None, help="for a class-conditional model: the class every image "
                                                            "is scored as")
    i = command("info", info, "describe the model package (its quality figures too), the backends and the CPU")
    i.add_argument("--json", action="store_true", help="print JSON, for scripts")
    w = command("interpolate", interpolate, "a PNG strip walking in a straight line between two latents")
    w.add_argument("-o", "--out", default="interpolation.png", help="output .png or .npy")
    w.add_argument("--seeds", type=SEED, nargs=2, default=(1, 2), metavar=("A", "B"), help="the two ends' seeds")
    w.add_argument("--steps", type=STEPS, default=10, help=f"images along the line, 2 to {MAX_GRID_IMAGES:,}")
    w.add_argument("--digit", type=DIGIT, default=None, help=digit_help)
    _embedding_commands(commands)
    return top


def _embedding_commands(commands: Any) -> None:
    """export-c and web: a model package turned into what runs without Python (docs/embedding.md)."""
    from ganpack.export_c import export_c_command
    from ganpack.web import web_command

    package_help = "model package folder or .zip, or the name of one inside ganpack (default, conditional)"
    e = commands.add_parser("export-c", help="write the model as one file that C reads (csrc/ganpack.h)",
                            description="write the model as one ganpack-c file that C reads (csrc/ganpack.h)")
    e.add_argument("package", help=package_help)
    e.add_argument("out", help="the file to write, e.g. digits.gpkc")
    e.set_defaults(handler=export_c_command)
    b = commands.add_parser("web", help="write a static web page that draws the model's digits in the browser",
                            description="write a static web page (a folder to open from disk or to serve) that "
                                        "draws the model's digits in the browser, with no runtime")
    b.add_argument("package", help=package_help)
    b.add_argument("out_dir", help="the folder to write (created; an existing one must be empty)")
    b.set_defaults(handler=web_command)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    status: int = args.handler(args)
    return status


def entry_point() -> None:
    try:
        run_command(main, sys.argv[1:])
    except KeyboardInterrupt:  # Ctrl-C: a partial .npy has been removed; no traceback
        print("ganpack: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    entry_point()
