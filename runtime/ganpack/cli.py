"""The `ganpack` command: sample, score, info, interpolate.

    ganpack sample -n 64 -o digits.png          # a PNG grid (or .npy: uint8 (n, 28, 28))
    ganpack score images.npy                    # discriminator probability per image
    ganpack info                                # manifest, backends, CPU features in use
    ganpack interpolate -o walk.png --seeds 1 2 --steps 10
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ganpack.errors import InputError, run_command


def _model(args):
    from ganpack.model import load

    model = load(args.model, backend=args.backend)
    print(f"model: {model.path} (backend: {model.backend})", file=sys.stderr)
    return model


def _write_images(images: np.ndarray, out: str, columns: int = 0) -> None:
    from ganpack.grid import save_grid

    path = _output_path(out)
    try:
        if path.suffix == ".npy":
            np.save(path, images)
        else:
            save_grid(images, path, columns=columns)
    except OSError as error:  # a full disk, no permission, a folder where the file should go
        raise InputError(f"cannot write '{out}': {error.strerror or error}") from None
    print(f"wrote {len(images)} images to {path}", file=sys.stderr)


def _output_path(out: str) -> Path:
    """Checked before any work is done: a known suffix, and a folder that exists."""
    path = Path(out)
    if path.suffix not in (".npy", ".png"):
        raise InputError(f"output '{out}' must end in .png (a grid) or .npy (an array)")
    if not path.parent.is_dir():
        raise InputError(f"output folder '{path.parent}' does not exist (for '{out}')")
    return path


def sample(args) -> int:
    if args.n < 1:
        raise InputError(f"-n must be at least 1, got {args.n}")
    _output_path(args.out)
    model = _model(args)
    try:
        images = model.sample(args.n, seed=args.seed)
    except MemoryError:
        raise InputError(f"-n {args.n}: {args.n * model.image_dim / 2**30:.1f} GiB of pixels do not fit in "
                         "memory; sample fewer at a time") from None
    _write_images(images, args.out)
    return 0


def score(args) -> int:
    model = _model(args)
    for name in args.images:
        images = _read_images(name)
        for index, probability in enumerate(model.score(images)):
            print(f"{name}[{index}]\t{probability:.6f}")
    return 0


def _read_images(name: str) -> np.ndarray:
    """A .npy array ((n, 28, 28) or (n, 784), uint8 or floats in [-1, 1]) or a 28x28 PNG."""
    path = Path(name)
    if not path.is_file():
        raise InputError(f"image file '{name}' does not exist")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)  # never unpickle: loading must not run code
        except ValueError as error:
            raise InputError(f"'{name}' is not a plain numpy array file: {error}") from None
    if path.suffix == ".png":
        try:
            from PIL import Image
        except ImportError:  # the runtime wheel does not depend on Pillow
            raise InputError(f"reading '{name}' needs Pillow (pip install pillow); or pass the images as a "
                             ".npy array") from None

        picture = Image.open(path).convert("L")
        if picture.size != (28, 28):
            raise InputError(f"'{name}' is {picture.size[0]}x{picture.size[1]}; score takes 28x28 digits")
        return np.asarray(picture, dtype=np.uint8)[None]
    raise InputError(f"image file '{name}' must be .npy or .png")


def info(args) -> int:
    from ganpack.backends import available_backends
    from ganpack.model import load

    model = load(args.model, backend=args.backend)
    manifest = model.manifest
    facts = {
        "package": str(model.path),
        "format": f"{manifest.format} v{manifest.format_version}",
        "latent": {"dim": manifest.latent.dim, "distribution": manifest.latent.distribution,
                   **manifest.latent.parameters, "generator": manifest.latent.generator},
        "generator": {"layers": manifest.generator.layer_widths, "alpha": manifest.generator.leaky_relu_alpha,
                      "weights": manifest.generator_weights},
        "discriminator": {"layers": manifest.discriminator.layer_widths},
        "trained": {k: manifest.provenance.get(k) for k in ("steps", "epochs", "dataset", "seed")},
        "parity_max_abs_diff": manifest.parity.get("max_abs_diff"),
        "backends_available": available_backends(),
        "backend_in_use": model.backend,
        "cpu_features": _cpu_features(),
    }
    print(json.dumps(facts, indent=2))
    return 0


def _cpu_features() -> dict:
    try:
        from ganpack.backends.c_backend import kernel_isa
    except ImportError:
        return {"c_kernel": "not available"}
    return {"c_kernel_isa": kernel_isa()}


def interpolate(args) -> int:
    if args.steps < 2:
        raise InputError(f"--steps must be at least 2, got {args.steps}")
    _output_path(args.out)
    model = _model(args)
    start, end = (model.latents(1, seed=seed)[0] for seed in args.seeds)
    weights = np.linspace(0.0, 1.0, args.steps, dtype=np.float32)[:, None]
    z = (1 - weights) * start + weights * end  # (steps, latent_dim), a straight line in z
    _write_images(model.generate(z), args.out, columns=args.steps)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ganpack", description="Sample and score ganpack model packages.")
    commands = top.add_subparsers(dest="command", required=True)

    def command(name, handler, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--model", default=None, help="model package folder (default: the one inside ganpack)")
        sub.add_argument("--backend", default="auto", help="c, onnxruntime, numpy or auto (default)")
        sub.set_defaults(handler=handler)
        return sub

    s = command("sample", sample, "generate digits into a PNG grid or a .npy array")
    s.add_argument("-n", type=int, default=64, help="how many (default 64)")
    s.add_argument("-o", "--out", default="digits.png", help="output .png or .npy (default digits.png)")
    s.add_argument("--seed", type=int, default=None, help="seed for the latents (default: fresh randomness)")
    c = command("score", score, "print the discriminator's probability that each image is real")
    c.add_argument("images", nargs="+", help=".npy arrays or 28x28 PNG files")
    command("info", info, "describe the model package, the backends and the CPU features in use")
    i = command("interpolate", interpolate, "a PNG strip walking in a straight line between two latents")
    i.add_argument("-o", "--out", default="interpolation.png")
    i.add_argument("--seeds", type=int, nargs=2, default=(1, 2), metavar=("A", "B"))
    i.add_argument("--steps", type=int, default=10)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.handler(args)


def entry_point() -> None:
    run_command(main, sys.argv[1:])


if __name__ == "__main__":
    entry_point()
