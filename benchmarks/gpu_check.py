"""Proves the GPU training path in one command: correctness, steps/s, the main job, the C kernel.

    python benchmarks/gpu_check.py --out DIR [--device auto|cpu|cuda] [--tiny] [--steps N]
                                   [--threads N] [--skip-main-job] [--skip-c] [--skip-compile]

From the repository root, with nothing installed: `PYTHONPATH=runtime:. python3 benchmarks/gpu_check.py`
works too (this script puts runtime/ and the root on sys.path itself; ganpack's C extension may be
absent). Phases, one progress line each on stderr:
 1. the machine: CPU model and ISA flags, torch, the GPU;
 2. correctness (benchmarks/step_check.py states the tolerances and why): the fast step and the
    graphed step in lock-step with the autograd reference on the device; on CUDA the graph also
    with the CPU's reference on the CPU's draws; the graph against its own uncaptured step, bit for
    bit (a failure on the CPU; on CUDA reported, the lock-step holding it); three graphs broken on
    purpose (a stale batch, a rate or the moving average's weight frozen at capture), each of
    which must be caught; exact resume through Trainer.train;
 3. steps/s of the reference, the fast and the graphed step at the default settings, through
    benchmarks/train_bench.py's measure(); on CUDA also torch.compile(mode="reduce-overhead") of
    the fast step, reported only;
 4. on CUDA, the main job: `python -m training.run` with the defaults, end to end, in DIR/runs/main;
 5. `make test` and `make bench` of a copy of csrc/ in DIR/csrc.
Without CUDA (or with --device cpu) phases 2 and 3 run on the CPU, the graph without a capture,
and what needs CUDA is skipped with the reason. Writes gpu_check.json, gpu_check.md and
gpu_check.png into --out. Exit status: 0 when every correctness check passes, 1 when one fails
(named on stderr), 2 for a mistake on the command line (one line).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)] + ([str(ROOT / "runtime")] if (ROOT / "runtime" / "ganpack").is_dir() else [])

from ganpack.errors import ArgumentParser  # noqa: E402  one line per mistake, status 2
from machine import cpu_info  # noqa: E402
from report import output_folder  # noqa: E402

LOCAL_RESULTS = ROOT / "runs" / "gpu_check"  # git-ignored
TARGET_GRAPHED_STEPS_PER_S = 10_000  # the issue's, on one H100 / H200 at the default batch
TARGET_MAIN_JOB_TRAINING_S = 60.0
MAIN_JOB_TIMEOUT_S = 420
# full: 16 epochs of the default 19 steps (the decay from epoch 5); tiny: batch 64, 4-step epochs
# resume: Trainer.train's own epochs (tiny: a dry run, 1,024 images, 16 steps an epoch)
FULL = {"steps": 304, "steps_per_epoch": 19, "batch_size": 256, "resume_steps": 57, "resume_per_epoch": 19,
        "stop_at": 30, "dry_run": False}
TINY = {"steps": 24, "steps_per_epoch": 4, "batch_size": 64, "resume_steps": 32, "resume_per_epoch": 16,
        "stop_at": 13, "dry_run": True}
SPEED_NOTE = "median of repeats taken in turns, through benchmarks/train_bench.py measure()"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def usage_error(args) -> str | None:
    if args.steps is not None and not 5 <= args.steps <= 100_000:
        return f"--steps must be in [5, 100000] (the graph is captured at step 4), got {args.steps}"
    if args.threads is not None and not 1 <= args.threads <= 1024:
        return f"--threads must be in [1, 1024], got {args.threads}"
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        return f"--out: {args.out} exists and is not a folder"
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return f"--device cuda: CUDA is not available here (torch {torch.__version__})"
    return None


# ---------------------------------------------------------------------------------------------
# phases


def machine() -> dict:
    import torch

    cpu = cpu_info()
    found = {"cpu": cpu, "isa_flags": cpu["simd_flags"], "python": sys.version.split()[0],
             "torch": torch.__version__, "cuda": torch.version.cuda, "gpu": None}
    if torch.cuda.is_available():
        found["gpu"] = {"name": torch.cuda.get_device_name(0),
                        "capability": ".".join(map(str, torch.cuda.get_device_capability(0)))}
    try:
        import ganpack.backends.c_backend  # noqa: F401

        found["ganpack_c_extension"] = True
    except ImportError as error:
        found["ganpack_c_extension"] = f"absent ({error}); numpy and onnxruntime serve"
    return found


def correctness(device: str, sizes: dict, threads: int, folder: Path, broken_graph: str | None) -> dict:
    """Lock-step comparisons, the graph against its uncaptured step, the broken graphs, resume."""
    import step_check as sc

    steps, per_epoch = sizes["steps"], sizes["steps_per_epoch"]
    config = sc.check_config(device, threads, sizes["batch_size"], steps, per_epoch)
    broken = sc.BROKEN[sc.BREAK_NAMES[broken_graph]] if broken_graph else None

    def trainer(kind: str, on: str = device, broken_class=None):
        return sc.make_trainer(config, kind, on, broken_class)

    found: dict = {"config": {"steps": steps, "steps_per_epoch": per_epoch, "batch_size": sizes["batch_size"],
                              "lr_decay_start": config.optimizer.lr_decay_start, "epochs": config.run.epochs},
                   "step_tolerance": sc.STEP_TOLERANCE, "metric_tolerance": sc.METRIC_TOLERANCE,
                   "lockstep": {}, "broken": {}, "runs": {}, "resume": []}
    start = {n: sc.flat(trainer("fast"), n) for n in sc.NETWORKS}
    finals = {}
    for kind in ("fast", "graphed"):
        name = f"{kind} ({device}) vs reference ({device})"
        say(f"  lock-step: {name}, {steps} steps")
        candidate = trainer(kind, broken_class=broken if kind == "graphed" else None)
        found["lockstep"][name] = sc.lockstep(candidate, trainer("reference"), steps, per_epoch)
        finals[kind] = {n: sc.flat(candidate, n) for n in sc.NETWORKS}  # the candidate trained on its own
    if device == "cuda":
        name = "graphed (cuda) vs reference (cpu), on the CPU's draws"
        say(f"  lock-step: {name}, {steps} steps")
        found["lockstep"][name] = sc.lockstep(trainer("graphed", broken_class=broken), trainer("reference", "cpu"),
                                              steps, per_epoch, cpu_draws=True)
    same = sc.compare_runs(finals["graphed"], finals["fast"], start)
    same.update(hard=device == "cpu", passed=same["identical"] or device != "cpu")
    found["runs"]["graphed vs fast, independent runs, bit for bit"] = same
    say(f"  independent run: reference ({device}), {steps} steps (reported only: a GAN amplifies rounding)")
    reference_final = sc.run_alone(trainer("reference"), steps, per_epoch)
    found["runs"]["fast vs reference, independent runs (reported only)"] = {
        **sc.compare_runs(finals["fast"], reference_final, start), "hard": False, "passed": True}
    for name, broken_class in sc.BROKEN.items():
        say(f"  broken on purpose: graph with {name}")
        result = sc.lockstep(trainer("graphed", broken_class=broken_class), trainer("reference"), steps, per_epoch)
        found["broken"][name] = {**result, "caught": not result["passed"]}
    kinds = ["graphed"] if device == "cuda" else ["fast", "graphed"]
    for kind in kinds:  # on CUDA the trainer's own step is the graph; on the CPU both paths
        say(f"  resume: {kind} ({device}), stopped after {sizes['stop_at']} of {sizes['resume_steps']} steps")
        resume = sc.check_config(device, threads, sizes["batch_size"], sizes["resume_steps"],
                                 sizes["resume_per_epoch"], dry_run=sizes["dry_run"])
        found["resume"].append(sc.resume_exactness(resume, kind, device, folder / "resume", sizes["stop_at"]))
    return found


def failures(found: dict) -> list[str]:
    """The names of the correctness checks that failed."""
    failed = [f"lock-step {name}" for name, r in found["lockstep"].items() if not r["passed"]]
    failed += [f"{name}" for name, r in found["runs"].items() if not r["passed"]]
    failed += [f"broken graph not caught: {name}" for name, r in found["broken"].items() if not r["caught"]]
    failed += [f"resume {r['kind']} ({r['device']}) not bit for bit: {', '.join(r['differing'])}"
               for r in found["resume"] if not r["identical"]]
    return failed


def speed(device: str, threads: int, tiny: bool, skip_compile: bool) -> list[dict]:
    """Steps/s of each step kind at the default settings (the compiled row: reported only)."""
    import torch

    import train_bench
    from training.fast_step import FastStep
    from training.graphed_step import GraphedStep

    def fast(trainer):  # the trainer's step made the plain fast step, built from its state
        if isinstance(trainer._step, GraphedStep):
            trainer._step = FastStep(trainer.step_state)
        return trainer.train_step

    def graphed(trainer):
        if not isinstance(trainer._step, GraphedStep):
            trainer._step = GraphedStep(trainer._step, capture=False)
        return trainer.train_step

    def compiled(trainer):
        step = FastStep(trainer.step_state)
        compute = torch.compile(step.compute, mode="reduce-overhead")

        def run(real, labels=None):
            torch.compiler.cudagraph_mark_step_begin()
            return compute(trainer.step, *step.inputs(trainer.step, real, labels))
        return run

    table = {"reference": ("reference", lambda trainer: trainer.train_step), "fast": ("fast", fast),
             "graphed": ("fast", graphed), "compiled": ("fast", compiled)}
    described = {"reference": "reference (autograd), eager", "fast": "fast, eager",
                 "graphed": "fast, captured in a CUDA graph" if device == "cuda"
                 else "fast through the graph's static inputs, no capture (CPU)",
                 "compiled": 'torch.compile(FastStep.compute, mode="reduce-overhead"), reported only'}
    settings = {**(train_bench.QUICK if tiny else train_bench.FULL), "profile_steps": 0}
    rows = train_bench.measure(device, "default", ["reference", "fast", "graphed"], settings, threads, table)
    if device == "cuda" and not skip_compile:
        started = time.perf_counter()
        try:
            rows += train_bench.measure(device, "default", ["compiled"], settings, threads, table)
            rows[-1]["seconds_with_compilation"] = time.perf_counter() - started
        except Exception as error:  # reported only: a compiler failure never fails the check
            rows.append({"mode": "compiled", "device": device, "error": " ".join(str(error).split())[:300]})
    for row in rows:
        row["train_step"] = described[row["mode"]]
    return rows


def main_job(folder: Path, timeout: float) -> dict:
    """`python -m training.run` with the defaults on CUDA, as a user runs it: wall time, training time
    (the 'done:' line) and the final quality line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "runtime"), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(":")
    command = [sys.executable, "-m", "training.run", "--device", "cuda", "--out_dir", str(folder),
               "--name", "main", "--overwrite", "true", "--progress", "false"]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"command": " ".join(command[1:]), "passed": False, "error": f"did not finish in {timeout:.0f} s"}
    output = done.stdout + done.stderr
    (folder / "main_job.log").write_text(output)
    trained = re.search(r"done: \d+ epochs, (\d+) steps in (\d+) s", output)
    quality = re.findall(r"^epoch \d+: Frechet distance.*$", output, re.M)
    return {"command": "python " + " ".join(command[1:]), "returncode": done.returncode,
            "passed": done.returncode == 0, "wall_s": time.perf_counter() - started,
            "training_s": float(trained.group(2)) if trained else None,
            "steps": int(trained.group(1)) if trained else None,
            "final_quality": quality[-1] if quality else None,
            "train_step": next(iter(re.findall(r"train step: ([^;]*);", output)), None),
            "tail": output[-1500:] if done.returncode else None}


def c_kernel(folder: Path) -> dict | str:
    """make test and make bench in a copy of csrc/ (the checkout's build folder is never touched)."""
    missing = [tool for tool in ("make", os.environ.get("CC", "cc")) if shutil.which(tool) is None]
    if missing:
        return f"skipped: no {' or '.join(missing)} on this machine"
    copy = folder / "csrc"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ROOT / "csrc", copy, ignore=shutil.ignore_patterns("build*"))
    found = {}
    for target in ("test", "bench"):
        started = time.perf_counter()
        try:
            done = subprocess.run(["make", "-C", str(copy), target], capture_output=True, text=True, timeout=300)
            output, code = done.stdout + done.stderr, done.returncode
        except (OSError, subprocess.TimeoutExpired) as error:
            output, code = str(error), None
        (folder / f"make_{target}.log").write_text(output)
        found[target] = {"returncode": code, "seconds": time.perf_counter() - started, "tail": output[-2500:]}
    return found


# ---------------------------------------------------------------------------------------------
# the report


def verdict(passed) -> str:
    return {True: "PASS", False: "FAIL", None: "skipped"}[passed]


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"# gpu_check on {m['gpu']['name'] if m['gpu'] else 'the CPU (no CUDA)'}", "",
             f"CPU: {m['cpu']['model']}, {m['cpu']['cores']} cores; ISA flags: {' '.join(m['isa_flags'])}; "
             f"torch {m['torch']} (CUDA {m['cuda']}); ganpack C extension: {m['ganpack_c_extension']}", ""]
    found = results.get("correctness")
    if found:
        c = found["config"]
        lines += [f"## Correctness ({results['device']}; {c['steps']} steps, batch {c['batch_size']}, "
                  f"{c['steps_per_epoch']} steps an epoch, rates decaying from {c['lr_decay_start']:.0%} of "
                  f"{c['epochs']} epochs)", "",
                  f"Lock-step: each step's error is |candidate - comparator| / |that step's update|, per network; "
                  f"tolerance {found['step_tolerance']:g} (losses: {found['metric_tolerance']:g} absolute).", "",
                  "| comparison | G | D | G moving average | losses | rates seen | verdict |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for name, r in [*found["lockstep"].items(), *((f"broken: {k}", v) for k, v in found["broken"].items())]:
            worst = r["worst_step_error"]
            state = ("caught (at step {})".format(r["first_step_over_tolerance"]) if r["caught"] else "NOT CAUGHT") \
                if "caught" in r else verdict(r["passed"])
            lines.append(f"| {name} | {worst['generator']:.1e} | {worst['discriminator']:.1e} | "
                         f"{worst['generator_ema']:.1e} | {r['worst_metric_error']:.1e} | {r['learning_rates_seen']} "
                         f"| {state} |")
        lines += ["", "| independent runs | identical | distance / movement (G, D, average) | verdict |",
                  "|---|---|---|---|"]
        for name, r in found["runs"].items():
            distance = ", ".join(f"{v:.1e}" for v in r["relative_distance"].values())
            lines.append(f"| {name} | {r['identical']} | {distance} | "
                         f"{verdict(r['passed']) if r['hard'] else 'reported'} |")
        for r in found["resume"]:
            lines.append(f"\nResume, {r['kind']} on {r['device']}: {r['steps']} steps whole against stopped after "
                         f"{r['stopped_after']} and resumed: {'bit for bit' if r['identical'] else 'DIFFERS'} "
                         f"({verdict(r['identical'])})")
    lines += ["", f"## Steps/s at the default settings ({SPEED_NOTE})", "",
              "| step | device | steps/s | ms/step |", "|---|---|---:|---:|"]
    for row in results.get("speed", []):
        figure = (f"{row['steps_per_s']:,.1f} | {row['ms_per_step']:.3f}" if "steps_per_s" in row
                  else f"error: {row['error'][:120]} | –")
        lines.append(f"| {row['train_step']} | {row['device']} | {figure} |")
    lines += ["", "## Targets (PASS/MISS, never a failure)", ""]
    lines += [f"- {name}: {t['verdict']} ({t['detail']})" for name, t in results["targets"].items()]
    job = results.get("main_job")
    lines += ["", "## Main job", "", job if isinstance(job, str) else
              f"`{job['command']}`: exit {job.get('returncode')}, {job.get('wall_s', 0):.0f} s end to end, "
              f"training {job.get('training_s')} s for {job.get('steps')} steps; train step: {job.get('train_step')}; "
              f"final quality: {job.get('final_quality')}" + (f"; {job['error']}" if "error" in job else "")]
    kernel = results.get("c_kernel")
    lines += ["", "## C kernel (a copy of csrc/)", ""]
    if isinstance(kernel, str):
        lines.append(kernel)
    else:
        for target, r in kernel.items():
            lines += [f"make {target}: exit {r['returncode']} in {r['seconds']:.0f} s", "", "```text",
                      r["tail"].rstrip()[-1500:], "```", ""]
    lines += ["", f"Result: {'PASS' if not results['failures'] else 'FAIL: ' + '; '.join(results['failures'])}"]
    return "\n".join(lines) + "\n"


def targets(results: dict) -> dict:
    graphed = next((r for r in results.get("speed", []) if r["mode"] == "graphed" and "steps_per_s" in r), None)
    found = {}
    if results["device"] != "cuda" or graphed is None:
        found["graphed step >= 10,000 steps/s"] = {"verdict": "n/a", "detail": "needs CUDA"}
    else:
        rate = graphed["steps_per_s"]
        found["graphed step >= 10,000 steps/s"] = {
            "verdict": "PASS" if rate >= TARGET_GRAPHED_STEPS_PER_S else "MISS", "detail": f"{rate:,.0f} steps/s"}
    job = results.get("main_job")
    if not isinstance(job, dict) or job.get("training_s") is None:
        found["main job training <= 60 s"] = {"verdict": "n/a", "detail": job if isinstance(job, str) else "no figure"}
    else:
        found["main job training <= 60 s"] = {
            "verdict": "PASS" if job["training_s"] <= TARGET_MAIN_JOB_TRAINING_S else "MISS",
            "detail": f"{job['training_s']:.0f} s"}
    return found


def plot(results: dict, path: Path) -> None:
    """Each lock-step's per-step error (the worst network's), log scale, against the tolerance."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    found = results.get("correctness")
    if not found:
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, r in [*found["lockstep"].items(), *((f"broken: {k}", v) for k, v in found["broken"].items())]:
        worst = [max(values) for values in zip(*r["step_errors"].values())]
        ax.plot(range(1, len(worst) + 1), [max(w, 1e-9) for w in worst], label=name,
                linestyle="--" if name.startswith("broken") else "-")
    ax.axhline(found["step_tolerance"], color="black", linestyle=":", label="tolerance")
    ax.set(yscale="log", xlabel="step", ylabel="|candidate - comparator| / |update| (worst network)",
           title=f"gpu_check lock-step errors ({results['device']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = ArgumentParser(prog="gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None,
                        help="folder for the report (default: a fresh one under runs/gpu_check/)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: cuda when available, else the CPU mode")
    parser.add_argument("--tiny", action="store_true", help="seconds, not minutes: batch 64, 24 steps, quick timing")
    parser.add_argument("--steps", type=int, default=None, help="steps per comparison (304; --tiny 24)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip-main-job", action="store_true", help="leave out python -m training.run")
    parser.add_argument("--skip-c", action="store_true", help="leave out make test / make bench of csrc/")
    parser.add_argument("--skip-compile", action="store_true", help="leave out the torch.compile row")
    parser.add_argument("--break-graph", choices=("lr", "input", "ema"), default=None,
                        help="test the check itself: use a graph broken this way as the real one (must exit 1)")
    args = parser.parse_args(argv)
    problem = usage_error(args)
    if problem:
        print(f"gpu_check.py: error: {problem}", file=sys.stderr)
        return 2
    try:
        out = output_folder(args.out, LOCAL_RESULTS)
    except OSError as error:
        print(f"gpu_check.py: error: --out: cannot create {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2

    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    sizes = dict(TINY if args.tiny else FULL)
    if args.steps is not None:
        sizes["steps"] = args.steps
    threads = args.threads or 0
    results: dict = {"check": "gpu_check", "device": device, "tiny": args.tiny, "failures": [], "seconds": {}}
    started = time.perf_counter()

    def phase(number: int, text: str) -> None:
        say(f"[{number}/5] {text} ({time.perf_counter() - started:.0f} s so far)")

    phase(1, "the machine")
    results["machine"] = machine()
    m = results["machine"]
    say(f"  CPU {m['cpu']['model']}: {' '.join(m['isa_flags'])}; torch {m['torch']}; "
        f"GPU {m['gpu']['name'] if m['gpu'] else 'none'}")
    if device == "cpu":
        say("  CPU mode: no CUDA" + (" requested" if args.device == "cpu" else " here") +
            "; the graph runs without a capture, the CUDA-only parts are skipped")
    phase(2, f"correctness on {device}")
    t0 = time.perf_counter()
    results["correctness"] = correctness(device, sizes, threads, out, args.break_graph)
    results["seconds"]["correctness"] = time.perf_counter() - t0
    results["failures"] += failures(results["correctness"])
    phase(3, f"steps/s on {device}")
    t0 = time.perf_counter()
    results["speed"] = speed(device, threads, args.tiny, args.skip_compile)
    results["seconds"]["speed"] = time.perf_counter() - t0
    phase(4, "the main job")
    if args.skip_main_job:
        results["main_job"] = "skipped: --skip-main-job"
    elif device != "cuda":
        results["main_job"] = "skipped: needs CUDA (on the CPU it trains for 10 minutes; see docs/training.md)"
    else:
        results["main_job"] = main_job(out / "runs", MAIN_JOB_TIMEOUT_S)
        job = results["main_job"]
        if not job["passed"]:
            results["failures"].append(f"main job: {job.get('error') or 'exit status ' + str(job['returncode'])}")
    if isinstance(results["main_job"], str):
        say(f"  {results['main_job']}")
    phase(5, "the C kernel")
    if args.skip_c:
        results["c_kernel"] = "skipped: --skip-c"
        say("  skipped: --skip-c")
    else:
        results["c_kernel"] = kernel = c_kernel(out)
        if isinstance(kernel, str):
            say(f"  {kernel}")
        elif kernel["test"]["returncode"] != 0:
            results["failures"].append(f"C kernel: make test exit status {kernel['test']['returncode']}")
    results["targets"] = targets(results)
    results["seconds"]["total"] = time.perf_counter() - started
    text = markdown(results)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "gpu_check.md").write_text(text)
    plot(results, out / "gpu_check.png")
    print(text)
    if results["failures"]:
        say("gpu_check.py: FAILED: " + "; ".join(results["failures"]))
        return 1
    say(f"gpu_check.py: every correctness check passed ({results['seconds']['total']:.0f} s); report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
