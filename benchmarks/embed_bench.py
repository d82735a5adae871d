"""Sampling from C against sampling from Python: microseconds per digit on this machine.

    python benchmarks/embed_bench.py [--model default] [--sizes 64,10000] [--threads 1,0]
                                     [--repeats 3] [--program PATH] [--quick]

Both sides draw the same digits (tests/test_export_c.py checks them bit for bit), on the best
instruction set of this CPU. C: the model written by `ganpack export-c`, and ganpack-sample
(csrc/tools/ganpack_sample.c, built by `make -C csrc` into a temporary folder unless --program
names one) run as `ganpack-sample MODEL -n N --threads T --time`; --time prints the time of the
gp_model_sample call alone, best of 5 calls in the process. Python, through the public API:
ganpack.load(model, backend="c", threads=T).sample(n, seed), timed around each call (a warm-up
call first), best of 5 calls. Each side is measured --repeats times, the best kept: anything else
running on the machine can only slow a reading down. Threads 0: each side's default, one per CPU
(at most 8); the thread count never changes the digits.

Prints a markdown table and, for scale only, onnx2c's figures from the side-by-side run that
docs/embedding.md ("How fast") reports (onnx2c is not built here: its code is not part of ganpack).
A mistake on the command line is one line on stderr and status 2.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ganpack.errors import ArgumentParser  # noqa: E402  one line per mistake, status 2
from machine import cpu_info  # noqa: E402

CSRC = HERE.parent / "csrc"
CALLS = 5  # timed calls per measurement, as ganpack-sample --time makes them
MAX_DIGITS = 10_000  # what ganpack-sample draws at most
TIME_LINE = re.compile(r"^ganpack-sample: time: ([0-9.]+) us per digit", re.MULTILINE)
# onnx2c (commit ea045cc) on the default generator, one thread, microseconds per digit at batch 64, gcc 12.2,
# measured beside ganpack on the 2-core AMD EPYC VM of 2026-12-07 (docs/embedding.md, "How fast")
ONNX2C = {"onnx2c -O3": 77.5, "onnx2c -O3 -ffast-math": 16.7, "onnx2c -O3 -march=native -ffast-math": 6.22}


def build_program(folder: Path) -> Path:
    """ganpack-sample built by the project's Makefile into `folder`."""
    program = folder / "ganpack-sample"
    done = subprocess.run(["make", "-s", "-j2", "-C", str(CSRC), f"BUILD={folder}", str(program)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"embed_bench.py: error: make failed:\n{done.stderr}")
    return program


def c_time(program: Path, model: Path, n: int, threads: int, repeats: int) -> float:
    """Microseconds per digit of gp_model_sample in ganpack-sample, the best of `repeats` runs."""
    best = float("inf")
    for _ in range(repeats):
        done = subprocess.run([str(program), str(model), "-n", str(n), "--seed", "1", "--threads", str(threads),
                               "--time"], capture_output=True, text=True)
        found = TIME_LINE.search(done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"embed_bench.py: error: {program.name} failed: {done.stderr.strip()}")
        best = min(best, float(found.group(1)))
    return best


def python_time(model_name: str, n: int, threads: int, repeats: int) -> float:
    """Microseconds per digit of Model.sample(n, seed) on the c backend, the best single call."""
    import ganpack

    model = ganpack.load(model_name, backend="c", threads=threads or None)
    label = 0 if model.classes else None
    model.sample(n, 1, label=label)  # warm-up: first touch of the weights, the thread pool
    best = float("inf")
    for _ in range(repeats * CALLS):
        start = time.perf_counter()
        model.sample(n, 1, label=label)
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / n


def integers(parser: ArgumentParser, text: str, low: int, high: int, name: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(low <= value <= high for value in values):
        parser.error(f"{name} takes integers from {low} to {high:,}, comma-separated, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="embed_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model package or built-in name (default: default)")
    parser.add_argument("--sizes", default="64,10000", help=f"digits per call, 1 to {MAX_DIGITS:,} (default 64,10000)")
    parser.add_argument("--threads", default="1,0", help="thread counts, 0 for each side's default (default 1,0)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per setting, the best kept (default 3)")
    parser.add_argument("--program", default=None, help="a ganpack-sample already built (default: build one)")
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: checks the script runs")
    args = parser.parse_args(argv)
    sizes = [64] if args.quick else integers(parser, args.sizes, 1, MAX_DIGITS, "--sizes")
    threads = [1] if args.quick else integers(parser, args.threads, 0, 64, "--threads")
    repeats = 1 if args.quick else max(1, args.repeats)

    from ganpack.errors import GanpackError
    from ganpack.export_c import export_c

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        try:
            model = export_c(args.model, folder / "model.gpkc")
        except GanpackError as error:
            print(f"embed_bench.py: error: --model: {error}", file=sys.stderr)
            return 2
        print("building ganpack-sample ...", file=sys.stderr)
        program = Path(args.program) if args.program else build_program(folder / "build")
        rows = []
        for n in sizes:
            for count in threads:
                print(f"n {n:,}, threads {count or 'default'} ...", file=sys.stderr)
                rows.append((n, count, c_time(program, model, n, count, repeats),
                             python_time(args.model, n, count, repeats)))
        info = subprocess.run([str(program), str(model), "--info"], capture_output=True, text=True).stdout
    isa = re.search(r"^isa: (\S+)", info, re.MULTILINE)
    print(f"CPU: {cpu_info()['model']}, {os.cpu_count()} CPUs; ISA {isa.group(1) if isa else 'unknown'}; "
          f"model: {args.model}; best of {repeats} x {CALLS} calls\n")
    print("| n | threads | C (ganpack-sample) us/digit | Python (Model.sample) us/digit | Python / C |")
    print("|---:|---:|---:|---:|---:|")
    for n, count, c_us, python_us in rows:
        print(f"| {n:,} | {count or 'default'} | {c_us:.3f} | {python_us:.3f} | "
              f"{python_us / c_us:.2f} |")
    single = [(n, c_us) for n, count, c_us, _ in rows if count == 1]
    print("\nFor scale only: onnx2c, one thread, as measured beside ganpack on a 2-core AMD EPYC "
          "(docs/embedding.md), not in this run:\n")
    print("| | us/digit | " + " | ".join(f"/ C at n {n:,}, 1 thread" for n, _ in single) + " |")
    print("|---|---:|" + "---:|" * len(single))
    for name, us in ONNX2C.items():
        print(f"| {name} | {us} | " + " | ".join(f"{us / c_us:.1f}" for _, c_us in single) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
