"""Latency and throughput of ganpack's backends, side by side, through the public API.

    python benchmarks/bench.py [--model DIR] [--backends c,onnxruntime,...] [--batch-sizes 1,8,64]
                               [--networks generator,discriminator] [--paths sample,generate,score]
                               [--precision fp32,bf16,int8] [--quick] [--out DIR]

Two kinds of rows. Float kernels (--networks): generate(z, output="float", out=buf) and
score(float images), per backend, with PyTorch eager as the GEMM-library reference. What users
call (--paths): sample(n, seed) and generate(z) with uint8 pixels out, score(uint8 pixels), per
ganpack backend (c, onnxruntime, numpy), next to "plain onnxruntime", the same work written with
numpy and onnxruntime alone (measure.plain_onnxruntime). FLOP/s are set against the machine's
measured FMA ceiling (machine.fma_ceiling).

--precision picks the rows by the precision of their weights. fp32: every backend named, as
above. bf16: "c-bf16" and "numpy-bf16", ganpack.load(..., precision="bf16") on those backends,
in both kinds of rows. int8: "onnxruntime-int8" when onnxruntime is named, the plain baseline on
the networks quantized to int8 on the fly (measure.int8_model), in both kinds of rows. Every row
is compared with the float32 reference, and the report adds a precision table: the generator's
samples/s, the ratio to c at fp32, and how far the outputs move from float32.

Each (backend, network or path) is measured in its own process (see measure.py). Prints a
markdown report and writes bench.json (every figure, the machine, library versions) and bench.png
into --out: by default a fresh folder under benchmarks/results/local/, which git ignores, so the
committed report (benchmarks/results/bench.json, bench.png) changes only with
`--out benchmarks/results`. A mistake on the command line is one line on stderr and status 2.
"""

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ganpack.errors import ArgumentParser  # noqa: E402  one line per mistake, status 2
from machine import cpu_info, flops_per_cycle, fma_ceiling, peak_gflops  # noqa: E402
from measure import END_TO_END, FLOAT_KERNELS  # noqa: E402
from report import add_ratios, markdown, output_folder, plot, write_json  # noqa: E402

ALL_BACKENDS = ["c", "onnxruntime", "onnxruntime-tuned", "numpy", "torch"]
END_TO_END_BACKENDS = ["c", "c-bf16", "onnxruntime", "numpy", "numpy-bf16"]  # + the plain baselines
PRECISIONS = ["fp32", "bf16", "int8"]
REDUCED_ROWS = {  # precision -> {backend named in --backends: its row at that precision}
    "bf16": {"c": "c-bf16", "numpy": "numpy-bf16"},
    "int8": {"onnxruntime": "onnxruntime-int8"},
}
REDUCED_OF = {row: (backend, precision) for precision, by_backend in REDUCED_ROWS.items()
              for backend, row in by_backend.items()}  # "c-bf16" -> ("c", "bf16")
QUICK_BATCH_SIZES = [1, 64]
MAX_BATCH = 1 << 16  # the reference arrays of a batch take about 10 kB a sample
LOCAL_RESULTS = HERE / "results" / "local"  # git-ignored: a fresh folder per run


def rows(backends: list[str], precisions: list[str]) -> list[str]:
    """Each backend named, at each precision asked for that it runs at, in the order named."""
    found = []
    for backend in backends:
        if "fp32" in precisions:
            found.append(backend)
        found += [REDUCED_ROWS[p][backend] for p in ("bf16", "int8") if p in precisions and backend in REDUCED_ROWS[p]]
    return found


def precision_of(row: str) -> str:
    return REDUCED_OF.get(row, (row, "fp32"))[1]  # torch and plain-onnxruntime too: float32


def available(requested: list[str]) -> list[str]:
    import importlib.util

    import ganpack

    have = set(ganpack.available_backends())
    names = []
    for name in requested:
        backend, precision = REDUCED_OF.get(name, (name, "fp32"))
        needs = {"onnxruntime-tuned": "onnxruntime"}.get(backend, backend)
        ok = importlib.util.find_spec("torch") is not None if name == "torch" else needs in have
        why = "not available here"
        if ok and precision == "int8" and importlib.util.find_spec("onnx") is None:
            ok, why = False, "onnxruntime.quantization needs the onnx package"
        if ok:
            names.append(name)
        else:
            print(f"skipping backend {name}: {why}", file=sys.stderr)
    return names


def references(model_dir, batch_sizes, path: Path) -> str:
    """Inputs every process reads and the outputs every backend is compared with: PyTorch when
    installed, else numpy. Per batch b (seed b): latents_b (the package's), images_float_b (the
    discriminator's float input), generator_b and discriminator_b (float references), uint8_b
    (the generator's reference pixels from latents_b, also score's input), score_b, and
    plain_uint8_b (the reference pixels from the baseline's own latents: numpy's
    default_rng(b).standard_normal, which need not be the package's latent stream)."""
    import ganpack
    from ganpack.contract import from_uint8, to_uint8  # the pixel mapping every path is held to

    model = ganpack.load(model_dir, backend="numpy")
    try:
        from measure import torch_caller

        generator, discriminator = torch_caller(model, "generator"), torch_caller(model, "discriminator")
        name = "the PyTorch model (eager, float32)"
    except ImportError:
        generator = lambda z: model.generate(z, output="float").reshape(len(z), -1)  # noqa: E731
        discriminator = model.score
        name = "the numpy backend (PyTorch not installed)"
    arrays = {}
    for batch in batch_sizes:
        z = model.latents(batch, seed=batch)  # (batch, latent_dim)
        images = np.ascontiguousarray(model.generate(z, output="float").reshape(batch, -1))  # (batch, 784)
        arrays[f"latents_{batch}"] = z
        arrays[f"images_float_{batch}"] = images
        arrays[f"generator_{batch}"] = generator(z)
        arrays[f"discriminator_{batch}"] = discriminator(images)
        arrays[f"uint8_{batch}"] = pixels = to_uint8(arrays[f"generator_{batch}"]).reshape(-1, 28, 28)
        arrays[f"score_{batch}"] = discriminator(np.ascontiguousarray(from_uint8(pixels).reshape(batch, -1)))
        plain_z = np.random.default_rng(batch).standard_normal((batch, model.latent_dim), dtype=np.float32)
        arrays[f"plain_uint8_{batch}"] = to_uint8(generator(plain_z)).reshape(-1, 28, 28)
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


def usage_error(args) -> str | None:
    """What is wrong with the command line, in one line; None when nothing is."""
    for item in args.batch_sizes.split(","):
        if not (item.strip().isdecimal() and 0 < int(item) <= MAX_BATCH):
            return f"--batch-sizes takes positive integers up to {MAX_BATCH} separated by commas, got {item!r}"
    for name in filter(lambda name: name in REDUCED_OF, args.backends.split(",")):
        backend, precision = REDUCED_OF[name]
        return f"--backends: {name!r} is {backend} at {precision}: name {backend} here and {precision} in --precision"
    for option, given, known in (("--backends", args.backends, ALL_BACKENDS),
                                 ("--networks", args.networks, FLOAT_KERNELS),
                                 ("--paths", args.paths, END_TO_END),
                                 ("--precision", args.precision, PRECISIONS)):
        for name in filter(None, given.split(",")):
            if name not in known:
                return f"{option}: unknown {name!r}; choose from {','.join(known)}"
    if args.model is not None and not Path(args.model).exists():
        return f"--model: no such file or folder: {args.model}"
    if not any(name.strip() for name in args.backends.split(",")):
        return "--backends: name at least one backend"
    if not any(name.strip() for name in args.precision.split(",")):
        return f"--precision: name at least one of {','.join(PRECISIONS)}"
    if not rows(args.backends.split(","), args.precision.split(",")):
        return f"--precision: none of {args.backends} runs at {args.precision}"
    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        return f"--seconds must be positive and finite, got {args.seconds}"
    if args.flops_per_cycle < 0:
        return f"--flops-per-cycle must be positive (0: guess), got {args.flops_per_cycle}"
    return None


def jobs(networks, paths, backends) -> list[tuple[str, str, str]]:
    """(section, network or path, backend) for every process to run, in order. backends: rows()."""
    found = [("networks", network, backend) for network in networks for backend in backends]
    end_to_end = [b for b in END_TO_END_BACKENDS if b in backends]
    if "onnxruntime" in backends:
        end_to_end.append("plain-onnxruntime")
    if "onnxruntime-int8" in backends:
        end_to_end.append("onnxruntime-int8")
    return found + [("paths", path, backend) for path in paths for backend in end_to_end]


def machine(cpu: dict, per_cycle: int, basis: str, seconds: float) -> dict:
    """The CPU, its measured FMA ceiling (every online CPU, and one thread), its ISA peak on paper."""
    from ganpack.backends.c_backend import kernel_isa  # the ISA gp_fma_ceiling's "auto" measures

    ceiling = {"gflops": fma_ceiling(0, seconds), "gflops_one_thread": fma_ceiling(1, seconds),
               "threads": os.sysconf("SC_NPROCESSORS_ONLN"), "isa": kernel_isa(),
               "basis": f"gp_fma_ceiling: register-only FMA chains on every thread at once, best of 3 runs "
                        f"of {seconds} s"}
    isa_peak = {"gflops": peak_gflops(cpu, per_cycle), "flops_per_cycle": per_cycle, "basis": basis}
    return {**cpu, "platform": platform.platform(), "ceiling": ceiling, "isa_peak": isa_peak}


def main(argv=None) -> int:
    parser = ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model package (default: the one inside ganpack)")
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS))
    parser.add_argument("--batch-sizes", default="1,8,64,512,4096")
    parser.add_argument("--networks", default=",".join(FLOAT_KERNELS), help="float-kernel rows ('' for none)")
    parser.add_argument("--paths", default=",".join(END_TO_END), help="what-users-call rows ('' for none)")
    parser.add_argument("--precision", default=",".join(PRECISIONS),
                        help="rows by weight precision: fp32 (every backend), bf16 (c, numpy), int8 (onnxruntime, "
                             "quantized on the fly)")
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: checks the script runs")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per setting")
    parser.add_argument("--flops-per-cycle", type=int, default=0, help="override the per-core fp32 ISA peak guess")
    parser.add_argument("--out", "--out-dir", dest="out", default=None,
                        help="folder for bench.json and bench.png (default: a fresh folder under "
                             "benchmarks/results/local/, ignored by git; benchmarks/results itself holds "
                             "the committed report)")
    args = parser.parse_args(argv)
    problem = usage_error(args)
    if problem:
        print(f"bench.py: error: {problem}", file=sys.stderr)
        return 2

    import ganpack

    try:
        model = ganpack.load(args.model, backend="numpy")
    except ganpack.GanpackError as error:
        print(f"bench.py: error: --model: {error}", file=sys.stderr)
        return 2
    model_dir = str(model.path)
    batch_sizes = QUICK_BATCH_SIZES if args.quick else [int(b) for b in args.batch_sizes.split(",")]
    networks, paths = list(filter(None, args.networks.split(","))), list(filter(None, args.paths.split(",")))
    backends = available(rows(list(filter(None, args.backends.split(","))), args.precision.split(",")))
    if not backends:
        print(f"bench.py: error: --backends: none of {args.backends} is available here", file=sys.stderr)
        return 2
    try:  # last of the checks: a mistake above leaves no empty folder behind
        out_dir = output_folder(args.out, LOCAL_RESULTS)
    except OSError as error:
        print(f"bench.py: error: --out: cannot create {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    cpu = cpu_info()
    per_cycle, basis = flops_per_cycle(cpu)
    if args.flops_per_cycle:
        per_cycle, basis = args.flops_per_cycle, "given on the command line"
    flops = {network: 2 * sum(a * b for a, b in zip(stack.layer_widths, stack.layer_widths[1:]))
             for network, stack in (("generator", model.manifest.generator),
                                    ("discriminator", model.manifest.discriminator))}
    shown_model = args.model or "the default model inside ganpack"  # never a path of this machine
    print("measuring the FMA ceiling ...", file=sys.stderr)
    results: dict[str, Any] = {
        "model": shown_model, "batch_sizes": batch_sizes, "flops_per_sample": flops,
        "machine": machine(cpu, per_cycle, basis, 0.02 if args.quick else 0.5),
        "versions": versions(), "networks": {n: {} for n in networks}, "paths": {p: {} for p in paths},
        "precisions": {}}  # row -> the precision of its weights
    with tempfile.TemporaryDirectory() as scratch:
        reference_path = Path(scratch) / "references.npz"
        results["reference"] = references(model_dir, batch_sizes, reference_path)
        for section, name, backend in jobs(networks, paths, backends):
            spec = {"model": model_dir, "backend": backend, "path": name, "batch_sizes": batch_sizes,
                    "references": str(reference_path), "min_seconds": 0.05 if args.quick else args.seconds,
                    "min_calls": 5 if args.quick else 50}
            print(f"measuring {name} on {backend} ...", file=sys.stderr)
            done = subprocess.run([sys.executable, str(HERE / "measure.py"), json.dumps(spec)],
                                  capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            results[section][name][backend] = json.loads(done.stdout)
            results["precisions"][backend] = precision_of(backend)
    add_ratios(results)
    print(markdown(results))
    write_json(results, out_dir / "bench.json")
    plotted = plot(results, out_dir / "bench.png")
    print(f"\nwrote {out_dir / 'bench.json'}" + (f" and {out_dir / 'bench.png'}" if plotted else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
