"""`ganpack web PACKAGE OUT_DIR`: a static page that draws a model's digits in the browser.

The folder works opened from disk (file://, no server) and on any static host: classic <script>
files, no modules and no fetch() (browsers block both over file://), so the weights travel in a
script too. It holds the assets in ganpack/web_page/ (index.html, style.css, ganpack.js: the latent
stream and the generator; page.js: the page) and model.js, written here:

    window.GANPACK_MODEL = {format, name, latent, classes, layers, weights}

`weights` is base64 of little-endian float32, the generator only, layer by layer: weight (out,
in) row-major, then bias (out,); a conditional layer 0 stores its x columns W_x (out, in) and,
instead of the bias, the class-bias table W_y^T + b (classes, out) that the C backend builds.
The page draws "ganpack-philox/1" latents bit for bit as ganpack.latents does; a package with
the legacy numpy stream, or an activation ganpack.js lacks, is refused.

The CLI imports this module for every command: it imports nothing the CLI lacks, and reads a
package (onnx) only when a page is written.
"""

import argparse
import base64
import json
import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganpack.archive import PathLike
from ganpack.atomic import partial_name
from ganpack.contract import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH
from ganpack.errors import InputError, PackageError
from ganpack.latents import GENERATOR, LEGACY_GENERATOR

if TYPE_CHECKING:
    from ganpack.model import Model

WEB_FORMAT = "ganpack-web/1"  # model.js's layout, as ganpack.js reads it
ASSETS = ("index.html", "style.css", "ganpack.js", "page.js")  # copied from ganpack/web_page/ as they are
MODEL_SCRIPT = "model.js"
PAGE_ACTIVATIONS = (IDENTITY, LEAKY_RELU, RELU, TANH, SIGMOID)  # those ganpack.js draws (its ACTIVATIONS)


def web_command(args: argparse.Namespace) -> int:
    """The `ganpack web` subcommand: write the page, then say where and how big on stderr."""
    out = write_page(args.package, args.out_dir)
    files = [path for path in out.rglob("*") if path.is_file()]
    size = sum(path.stat().st_size for path in files)
    print(f"wrote {out} ({len(files)} files, {size / 1024:.0f} KB)", file=sys.stderr)
    return 0


def write_page(package: PathLike, out_dir: PathLike) -> Path:
    """Write the page for `package` (a folder, a .zip, or the name of a package inside ganpack,
    as ganpack.load takes it) into the new folder `out_dir`; returns its path. An existing folder
    must be empty (never a user's files overwritten). The page is written under a partial name
    (beside a new folder, inside an existing one), then renamed into place: a new folder whole, an
    empty folder's files one by one, all of them removed again if any move fails or is interrupted,
    so that the folder is left empty as it was."""
    _check_out_dir(out_dir)  # before the model is loaded
    out = Path(out_dir)
    from ganpack.model import load

    model = load(package, backend="numpy")  # the manifest and files checked; no native stack needed
    script = model_script(model)
    try:
        existing = out.is_dir()  # an empty folder is kept (its permissions, a mount): filled from inside
        if not existing:
            out.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_name(out.resolve() / "page" if existing else out)  # same file system as out
        partial.mkdir()  # mode 0o777 less the umask, as a folder the user makes
        try:
            assets = resources.files("ganpack") / "web_page"
            for name in ASSETS:
                (partial / name).write_bytes((assets / name).read_bytes())
            (partial / MODEL_SCRIPT).write_text(script, encoding="utf-8")
            if existing:  # moved in one by one: on any exception the moved ones go, the folder is empty again
                moved: list[Path] = []
                try:
                    for path in sorted(partial.iterdir()):
                        path.rename(out / path.name)
                        moved.append(out / path.name)
                except BaseException:
                    for path in moved:
                        path.unlink(missing_ok=True)
                    raise
                partial.rmdir()
            else:
                partial.rename(out)  # refused if a non-empty folder appeared there meanwhile
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    except OSError as error:
        raise InputError(f"cannot write '{out}': {error.strerror or error}") from None
    return out


def _check_out_dir(out_dir: PathLike) -> None:
    """`out_dir` checked before the model is loaded: a new folder, or an empty one, whose nearest
    existing ancestor is a writable folder; else InputError naming what is in the way."""
    if not os.fspath(out_dir):
        raise InputError("the output folder is an empty name; name a new folder, such as 'page'")
    out = Path(out_dir)
    if out.is_dir():
        if any(out.iterdir()):
            raise InputError(f"'{out}' exists and is not empty; ganpack web writes a new folder (or an empty one)")
        return
    if out.exists() or out.is_symlink():
        raise InputError(f"'{out}' exists and is not a folder")
    ancestor = next((parent for parent in out.parents if parent.exists() or parent.is_symlink()), Path("."))
    if not ancestor.is_dir():  # a file (or a broken link) where a folder of out_dir's path must be
        raise InputError(f"'{ancestor}' is not a folder, so '{out}' cannot be made in it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"'{ancestor}' is not writable, so '{out}' cannot be made in it")


def model_script(model: "Model") -> str:
    """model.js for a loaded model: `window.GANPACK_MODEL = {...};`. PackageError if the page
    cannot draw it."""
    import numpy as np

    latent = model.manifest.latent
    if latent.generator != GENERATOR:
        why = " (numpy's PCG64, a format_version 1 package)" if latent.generator == LEGACY_GENERATOR else ""
        raise PackageError(f"'{model.path}': its latent stream is {latent.generator!r}{why}; the web page draws "
                           f"{GENERATOR!r} only (export the model again with this ganpack)")
    stack = model.generator_stack
    layers: list[dict[str, Any]] = []
    arrays = []
    for index, layer in enumerate(stack.layers):
        if layer.activation not in PAGE_ACTIVATIONS:
            raise PackageError(f"'{model.path}': generator layer {index} has activation {layer.activation!r}, "
                               f"which the web page does not draw")
        weight, bias = layer.weight, layer.bias  # (out, in), (out,)
        if index == 0 and stack.classes:  # W [x; onehot(y)] + b = W_x x + (W_y[:, y] + b)
            weight, bias = weight[:, :stack.input_width], stack.class_bias()  # (out, in), (classes, out)
        layers.append({"inputs": weight.shape[1], "outputs": weight.shape[0], "activation": layer.activation,
                       "alpha": layer.alpha})
        arrays += [weight, bias]
    weights = b"".join(np.ascontiguousarray(array, dtype="<f4").tobytes() for array in arrays)
    page_model = {
        "format": WEB_FORMAT,
        "name": _name(model),
        "latent": {"dim": latent.dim, "distribution": latent.distribution, "scale": model.stream.scale,
                   "offset": model.stream.offset, "generator": latent.generator},
        "classes": list(model.classes) if model.classes is not None else None,
        "layers": layers,
        "weights": base64.b64encode(weights).decode("ascii"),
    }
    return ("// written by `ganpack web`: the generator of one model package, for ganpack.js\n"
            f"window.GANPACK_MODEL = {json.dumps(page_model)};\n")


def _name(model: "Model") -> str:
    """The package's name as a person knows it: a built-in name, or the folder's (the archive's) name."""
    path = model.path
    return path.stem if path.suffix.lower() == ".zip" else path.resolve().name or str(path)
