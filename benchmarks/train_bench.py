"""Training steps per second, per device, config and step mode, side by side, through the real Trainer.

    python benchmarks/train_bench.py [--devices cpu,cuda] [--preset default,wide] [--modes eager]
                                     [--threads N] [--steps 200] [--repeats 5] [--warmup 20]
                                     [--profile-steps 20] [--quick] [--out DIR]

Each (device, config, mode) gets a fresh Trainer (training.trainer.Trainer, no run folder, the
config's batch size, the bundled digits on the device) and a step callable built from it by the
mode (MODES). "eager" is the autograd step (training/reference_step.py): the reference every fast
path is set against; "fast" is the hand-written step training.run uses by default (training/fast_step.py).
Timed: `--steps` calls of the step on batches of real digits sliced beforehand (as Trainer.train
slices them), the step counter advanced after each; not timed: batch slicing, logging, the
progress bar. After `--warmup` steps of each mode, each of `--repeats` repeats reads the clock
around `--steps` steps of every mode in turn (on CUDA after torch.cuda.synchronize), so that a
shared machine's changing load falls on all modes alike; the figures are the median repeat. Then
torch.profiler runs `--profile-steps` more steps: the share of self time spent in matrix
multiplies (MATMUL_OPS; on CUDA also the share of GPU kernel time they launched).

Prints a markdown table; writes train_bench.json and train_bench.png into --out (by default a
fresh folder under runs/train_bench/, which git ignores). A mistake on the command line is one
line on stderr and status 2.
"""

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # machine.py, and training/ without installing it

# training.config imports no torch: the command line is checked before torch loads
from ganpack.errors import ArgumentParser  # noqa: E402  one line per mistake, status 2
from machine import cpu_info  # noqa: E402
from report import output_folder  # noqa: E402
from training.config import PRESETS, TrainConfig, apply_values, validate  # noqa: E402

DEVICES = ("cpu", "cuda")
CONFIGS = ("default", *PRESETS)  # "default": TrainConfig() as it stands
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::matmul")
MAX_THREADS = 1024  # training.config's limit for --threads
LOCAL_RESULTS = ROOT / "runs" / "train_bench"  # git-ignored: a fresh folder per run
FULL = {"steps": 200, "repeats": 5, "warmup": 20, "profile_steps": 20}
QUICK = {"steps": 5, "repeats": 1, "warmup": 2, "profile_steps": 2}  # seconds on a CPU: checks it runs


# ---------------------------------------------------------------------------------------------
# modes: name -> (the config's train_step, function(trainer) -> step(real (B, 784)) -> metrics (4,))
# A fast path is one more entry; it may prepare anything (compile, capture a graph) before it
# returns, and that time is warm-up, reported separately by whoever adds it.


MODES: dict[str, tuple[str, Callable]] = {
    "eager": ("reference", lambda trainer: trainer.train_step),  # autograd: training/reference_step.py
    "fast": ("fast", lambda trainer: trainer.train_step),  # training/fast_step.py
}


# ---------------------------------------------------------------------------------------------
# command line


def names(given: str) -> list[str]:
    """'a, b,,a' -> ['a', 'b']: comma-separated names, blanks dropped, first occurrence kept."""
    return list(dict.fromkeys(name.strip() for name in given.split(",") if name.strip()))


def usage_error(args) -> str | None:
    """What is wrong with the command line, in one line; None when nothing is."""
    for option, given, known in (("--devices", args.devices, DEVICES), ("--preset", args.preset, CONFIGS),
                                 ("--modes", args.modes, tuple(MODES))):
        if given is None:
            continue
        if not names(given):
            return f"{option}: name at least one of {','.join(known)}, got {given!r}"
        for name in names(given):
            if name not in known:
                return f"{option}: unknown {name!r}; choose from {','.join(known)}"
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        return f"--threads must be in [1, {MAX_THREADS}], got {args.threads}"
    for option, value, least in (("--steps", args.steps, 1), ("--repeats", args.repeats, 1),
                                 ("--warmup", args.warmup, 0), ("--profile-steps", args.profile_steps, 0)):
        if value is not None and not least <= value <= 1_000_000:
            return f"{option} must be in [{least}, 1000000], got {value}"
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        return f"--out: {args.out} exists and is not a folder"
    if args.devices is not None and "cuda" in names(args.devices):
        import torch

        if not torch.cuda.is_available():
            return (f"--devices: cuda requested but CUDA is not available here "
                    f"(torch {torch.__version__}, {torch.cuda.device_count()} CUDA device(s))")
    return None


# ---------------------------------------------------------------------------------------------
# measuring


def build_trainer(config_name: str, device: str, threads: int, mode: str = "eager", table: dict | None = None):
    """The Trainer training.run would build for `--preset config_name --device device` and the
    mode's train_step (of `table`, by default MODES), without a run folder, the evaluator or a progress bar."""
    from training.distributed import World
    from training.trainer import Trainer

    config = TrainConfig()
    if config_name != "default":
        apply_values(config, {**PRESETS[config_name], "preset": config_name}, source=f"preset '{config_name}'")
    config.run.device, config.run.threads, config.run.train_step = device, threads, (table or MODES)[mode][0]
    config.run.eval_every, config.run.progress = 0, False
    return Trainer(validate(config), None, World())


def real_batches(trainer) -> list:
    """One epoch of batches of the bundled digits, each (batch_size, 784) on the trainer's device."""
    import torch

    batch = trainer.config.data.batch_size
    order = torch.randperm(len(trainer.data), generator=torch.Generator().manual_seed(0)).to(trainer.device)
    return [trainer.data[order[i * batch:(i + 1) * batch]] for i in range(trainer.steps_per_epoch)]


def run_steps(trainer, step: Callable, batches: list, count: int):
    """`count` steps; returns the last step's output (on the device, no host sync)."""
    out = None
    for _ in range(count):
        out = step(batches[trainer.step % len(batches)])
        trainer.step += 1
    return out


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile(trainer, step: Callable, batches: list, count: int) -> dict:
    """Share of profiled time in MATMUL_OPS over `count` steps: their self CPU time over the self
    CPU time of every op, and on CUDA the GPU time of the kernels they launched over all GPU time."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity

    on_gpu = trainer.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    synchronize(trainer.device)
    started = time.perf_counter()
    with torch.profiler.profile(activities=activities) as prof:
        run_steps(trainer, step, batches, count)
        synchronize(trainer.device)
    seconds = time.perf_counter() - started
    host = [e for e in prof.events() if e.device_type == DeviceType.CPU and not e.is_async]
    self_cpu: dict[str, float] = {}
    for event in host:
        self_cpu[event.name] = self_cpu.get(event.name, 0.0) + event.self_cpu_time_total
    total_cpu = sum(self_cpu.values())
    top = sorted(self_cpu.items(), key=lambda item: -item[1])[:8]
    found = {"steps": count, "ms_per_step_profiled": 1e3 * seconds / count,
             "counted": f"self time of {', '.join(MATMUL_OPS)} / self time of every op recorded",
             "matmul_share_cpu": sum(self_cpu.get(op, 0.0) for op in MATMUL_OPS) / total_cpu if total_cpu else None,
             "top_ops_cpu": [{"op": name, "share": us / total_cpu} for name, us in top] if total_cpu else []}
    if on_gpu:  # kernels are linked to the innermost op that launched them (aten::mm, not aten::matmul)
        kernels = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == DeviceType.CUDA)
        matmul = sum(e.self_device_time_total for e in host if e.name in MATMUL_OPS)
        found["matmul_share_gpu"] = matmul / kernels if kernels else None
        found["gpu_busy_share"] = kernels / (1e6 * seconds)  # kernel time over wall time: launch-bound if low
    return found


def measure(device: str, config_name: str, modes: list[str], settings: dict, threads: int,
            table: dict | None = None) -> list[dict]:
    """One row per mode (of `table`, by default MODES): a fresh Trainer each, warm-up, then the timed
    repeats taken in turns (mode a, b, a, b, ...), so that a change in the machine's load falls on
    every mode alike; a profile. benchmarks/gpu_check.py measures its own step kinds through it."""
    import torch

    table = table or MODES
    trainers = {mode: build_trainer(config_name, device, threads, mode, table) for mode in modes}
    steps = {mode: table[mode][1](trainer) for mode, trainer in trainers.items()}
    batches = real_batches(next(iter(trainers.values())))
    for mode, trainer in trainers.items():
        run_steps(trainer, steps[mode], batches, settings["warmup"])
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    last = {}
    for repeat in range(settings["repeats"]):
        for mode, trainer in trainers.items():
            synchronize(trainer.device)
            started = time.perf_counter()
            last[mode] = run_steps(trainer, steps[mode], batches, settings["steps"])
            synchronize(trainer.device)
            rates[mode].append(settings["steps"] / (time.perf_counter() - started))
        print(f"  repeat {repeat + 1}/{settings['repeats']}: "
              + ", ".join(f"{mode} {rates[mode][-1]:.1f}" for mode in modes) + " steps/s", file=sys.stderr)
    rows = []
    for mode, trainer in trainers.items():
        per_repeat = rates[mode]
        model, batch = trainer.config.model, trainer.config.data.batch_size
        row = {"device": device, "config": config_name, "mode": mode,
               "train_step": trainer.step_description,
               "device_name": (torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda"
                               else cpu_info()["model"]),
               "threads": torch.get_num_threads(), "batch_size": batch,
               "generator_hidden": list(model.generator_hidden),
               "discriminator_hidden": list(model.discriminator_hidden),
               "r1_gamma": trainer.config.optimizer.r1_gamma, "augment_shift": trainer.config.optimizer.augment_shift,
               "ema_decay": trainer.config.optimizer.ema_decay,
               "steps_per_s": statistics.median(per_repeat),
               "ms_per_step": statistics.median(1e3 / rate for rate in per_repeat),
               "steps_per_s_repeats": per_repeat, "images_per_s": batch * statistics.median(per_repeat),
               "finite": bool(torch.isfinite(last[mode]).all())}  # one host sync, after the clock stopped
        row["profile"] = (profile(trainer, steps[mode], batches, settings["profile_steps"])
                          if settings["profile_steps"] else None)
        rows.append(row)
    return rows


def add_ratios(rows: list[dict]) -> None:
    """vs_eager: steps/s over the eager row's of the same device and config (None without one)."""
    eager = {(r["device"], r["config"]): r["steps_per_s"] for r in rows if r["mode"] == "eager"}
    for row in rows:
        reference = eager.get((row["device"], row["config"]))
        row["vs_eager"] = row["steps_per_s"] / reference if reference else None


def machine() -> dict:
    import torch

    found = {"cpu": cpu_info(), "platform": platform.platform(), "python": platform.python_version(),
             "torch": torch.__version__, "cuda": torch.version.cuda, "gpu": None,
             "load_average_1min": os.getloadavg()[0]}  # another busy process slows every CPU row
    if torch.cuda.is_available():
        found["gpu"] = {"name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count(),
                        "capability": ".".join(map(str, torch.cuda.get_device_capability(0)))}
    return found


# ---------------------------------------------------------------------------------------------
# the report


def _share(value) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def markdown(results: dict) -> str:
    cpu, gpu = results["machine"]["cpu"], results["machine"]["gpu"]
    lines = [f"CPU: {cpu['model']} ({cpu['cores']} cores usable)" + (f"; GPU: {gpu['name']}" if gpu else "")
             + f"; torch {results['machine']['torch']}",
             "", "| device | config | mode | threads | batch | steps/s | ms/step | vs eager | matmul share |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in results["rows"]:
        prof = row["profile"] or {}
        share = _share(prof.get("matmul_share_cpu"))
        if "matmul_share_gpu" in prof:
            share += f" (GPU {_share(prof['matmul_share_gpu'])})"
        vs = "–" if row["vs_eager"] is None else f"{row['vs_eager']:.2f}x"
        lines.append(f"| {row['device']} | {row['config']} | {row['mode']} | {row['threads']} | {row['batch_size']} "
                     f"| {row['steps_per_s']:.1f} | {row['ms_per_step']:.2f} | {vs} | {share} |")
    s = results["settings"]
    lines += ["", f"Median of {s['repeats']} repeat(s) of {s['steps']} steps after {s['warmup']} warm-up steps. "
              f"matmul share: {results['matmul_share_counts']}, over {s['profile_steps']} profiled steps"
              " (GPU: the kernel time those ops launched over all kernel time)."]
    load = results["machine"]["load_average_1min"]  # before: afterwards it counts this benchmark too
    if load > 0.5 * cpu["cores"]:
        lines.append(f"Note: load average {load:.1f} on {cpu['cores']} cores before the run: other processes "
                     "may have shared the CPU.")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    groups = list(dict.fromkeys((r["device"], r["config"]) for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    width, labelled = 0.8 / len(modes), set()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(groups) + 2), 4.2))
    for m, mode in enumerate(modes):
        for g, group in enumerate(groups):
            found = [r for r in rows if (r["device"], r["config"]) == group and r["mode"] == mode]
            if not found:
                continue
            x, value = g + (m - (len(modes) - 1) / 2) * width, found[0]["steps_per_s"]
            ax.bar(x, value, width, color=f"C{m}", label=None if mode in labelled else mode)
            labelled.add(mode)
            ax.annotate(f"{value:.0f}", (x, value), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(groups)), [f"{device}\n{config}" for device, config in groups])
    ax.set_ylabel("training steps / s")
    values = [r["steps_per_s"] for r in rows]
    if max(values) > 20 * min(values):
        ax.set_yscale("log")
    cpu, gpu = results["machine"]["cpu"]["model"], results["machine"]["gpu"]
    ax.set_title(f"{cpu}" + (f" / {gpu['name']}" if gpu else "") + f", torch {results['machine']['torch']}",
                 fontsize=8)
    ax.legend(title="mode", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = ArgumentParser(prog="train_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default=None, help="cpu, cuda or both (default: cpu, and cuda when available)")
    parser.add_argument("--preset", default=None, help=f"configs, of {','.join(CONFIGS)} (default: default,wide)")
    parser.add_argument("--modes", default=None, help=f"step modes, of {','.join(MODES)} (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--steps", type=int, default=None, help=f"timed steps per repeat ({FULL['steps']})")
    parser.add_argument("--repeats", type=int, default=None, help=f"timed repeats, median reported ({FULL['repeats']})")
    parser.add_argument("--warmup", type=int, default=None, help=f"untimed steps first ({FULL['warmup']})")
    parser.add_argument("--profile-steps", type=int, default=None,
                        help=f"steps under torch.profiler, 0 for none ({FULL['profile_steps']})")
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: checks the script runs")
    parser.add_argument("--out", default=None, help="folder for train_bench.json and train_bench.png "
                        "(default: a fresh folder under runs/train_bench/, ignored by git)")
    args = parser.parse_args(argv)
    problem = usage_error(args)
    if problem:
        print(f"train_bench.py: error: {problem}", file=sys.stderr)
        return 2

    import torch

    from ganpack import GanpackError  # the base of training's errors (ConfigError, DataError, ...)

    devices = names(args.devices) if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    configs = names(args.preset) if args.preset else ["default", "wide"]
    modes = names(args.modes) if args.modes else list(MODES)
    settings = {key: getattr(args, key) if getattr(args, key) is not None else (QUICK if args.quick else FULL)[key]
                for key in FULL}
    try:  # last of the checks: a mistake above leaves no empty folder behind
        out_dir = output_folder(args.out, LOCAL_RESULTS)
    except OSError as error:
        print(f"train_bench.py: error: --out: cannot create {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    results = {"benchmark": "train_bench", "machine": machine(), "settings": {**settings, "quick": args.quick},
               "timed": "each mode's step on pre-sliced real batches, step counter advanced; modes in turns; median",
               "matmul_share_counts": f"self time of {', '.join(MATMUL_OPS)} / self time of every op",
               "rows": []}
    for device in devices:
        for config_name in configs:
            print(f"measuring {device} / {config_name} / {', '.join(modes)}: {settings['warmup']} warm-up, "
                  f"{settings['repeats']} x {settings['steps']} timed (modes in turns), {settings['profile_steps']} "
                  "profiled steps ...", file=sys.stderr, flush=True)
            try:
                results["rows"] += measure(device, config_name, modes, settings, args.threads or 0)
            except (GanpackError, RuntimeError) as error:  # no data, out of memory, a failing fast path
                print(f"train_bench.py: error: {device} / {config_name}: {error}", file=sys.stderr)
                return 1
    results["machine"]["load_average_1min_after"] = os.getloadavg()[0]
    add_ratios(results["rows"])
    print(markdown(results))
    (out_dir / "train_bench.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, out_dir / "train_bench.png")
    print(f"\nwrote {out_dir / 'train_bench.json'} and {out_dir / 'train_bench.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
