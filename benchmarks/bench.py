"""Latency and throughput of ganpack's backends, side by side, through the public API.

    python benchmarks/bench.py [--model DIR] [--backends c,onnxruntime,...] [--batch-sizes 1,8,64]
                               [--networks generator,discriminator] [--quick] [--out-dir DIR]

Each (backend, network) is measured in its own process (see measure.py). Prints a markdown
table and writes bench.json (every figure, the machine, library versions) and bench.png.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import cpu_info, flops_per_cycle, peak_gflops  # noqa: E402
from report import markdown, plot, write_json  # noqa: E402

ALL_BACKENDS = ["c", "onnxruntime", "onnxruntime-tuned", "numpy", "torch"]


def available(requested: list[str]) -> list[str]:
    import importlib.util

    import ganpack

    have = set(ganpack.available_backends())
    names = []
    for name in requested:
        needs = {"onnxruntime-tuned": "onnxruntime"}.get(name, name)
        ok = importlib.util.find_spec("torch") is not None if name == "torch" else needs in have
        if ok:
            names.append(name)
        else:
            print(f"skipping backend {name}: not available here", file=sys.stderr)
    return names


def references(model_dir, batch_sizes, networks, path: Path) -> str:
    """Outputs every backend is compared with: PyTorch when installed, else numpy."""
    import ganpack

    model = ganpack.load(model_dir, backend="numpy")
    try:
        from measure import torch_caller

        runners = {n: torch_caller(model, n) for n in networks}
        name = "the PyTorch model (eager, float32)"
    except ImportError:
        runners = {"generator": lambda z: model.generate(z, output="float").reshape(len(z), -1),
                   "discriminator": model.score}
        name = "the numpy backend (PyTorch not installed)"
    arrays = {}
    for batch in batch_sizes:
        z = model.latents(batch, seed=batch)
        images = np.ascontiguousarray(model.generate(z, output="float").reshape(batch, -1))
        if "generator" in networks:
            arrays[f"generator_{batch}"] = runners["generator"](z)
        if "discriminator" in networks:
            arrays[f"discriminator_{batch}"] = runners["discriminator"](images)
    np.savez(path, **arrays)
    return name


def versions() -> dict:
    import importlib.metadata as metadata

    found = {"python": platform.python_version()}
    for package in ("ganpack", "numpy", "onnxruntime", "onnx", "torch", "cffi"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model package (default: the one inside ganpack)")
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS))
    parser.add_argument("--batch-sizes", default="1,8,64,512,4096")
    parser.add_argument("--networks", default="generator,discriminator")
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: checks the script runs")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per setting")
    parser.add_argument("--flops-per-cycle", type=int, default=0, help="override the per-core fp32 peak guess")
    parser.add_argument("--out-dir", default=str(HERE / "results"))
    args = parser.parse_args(argv)

    import ganpack

    model_dir = str(ganpack.load(args.model, backend="numpy").path)
    batch_sizes = [1, 64] if args.quick else [int(b) for b in args.batch_sizes.split(",")]
    networks = args.networks.split(",")
    backends = available(args.backends.split(","))
    cpu = cpu_info()
    per_cycle, basis = flops_per_cycle(cpu)
    per_cycle, basis = (args.flops_per_cycle, "given on the command line") if args.flops_per_cycle else (per_cycle, basis)
    model = ganpack.load(model_dir, backend="numpy")
    flops = {"generator": 2 * sum(a * b for a, b in zip(model.manifest.generator.layer_widths,
                                                        model.manifest.generator.layer_widths[1:])),
             "discriminator": 2 * sum(a * b for a, b in zip(model.manifest.discriminator.layer_widths,
                                                            model.manifest.discriminator.layer_widths[1:]))}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shown_model = args.model or "the default model inside ganpack"  # never a path of this machine
    results = {"model": shown_model, "batch_sizes": batch_sizes, "flops_per_sample": flops,
               "machine": {**cpu, "flops_per_cycle": per_cycle, "peak_basis": basis,
                           "peak_gflops": peak_gflops(cpu, per_cycle), "platform": platform.platform()},
               "versions": versions(), "networks": {n: {} for n in networks}}
    with tempfile.TemporaryDirectory() as scratch:
        reference_path = Path(scratch) / "references.npz"
        results["reference"] = references(model_dir, batch_sizes, networks, reference_path)
        for network in networks:
            for backend in backends:
                spec = {"model": model_dir, "backend": backend, "network": network, "batch_sizes": batch_sizes,
                        "references": str(reference_path), "min_seconds": 0.05 if args.quick else args.seconds,
                        "min_calls": 5 if args.quick else 50}
                print(f"measuring {network} on {backend} ...", file=sys.stderr)
                done = subprocess.run([sys.executable, str(HERE / "measure.py"), json.dumps(spec)],
                                      capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    return 1
                results["networks"][network][backend] = json.loads(done.stdout)
    print(markdown(results))
    write_json(results, out_dir / "bench.json")
    plotted = plot(results, out_dir / "bench.png")
    print(f"\nwrote {out_dir / 'bench.json'}" + (f" and {out_dir / 'bench.png'}" if plotted else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
