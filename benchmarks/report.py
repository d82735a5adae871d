"""The benchmark report: a markdown table for people, JSON for machines, a PNG plot for both."""

import json
import math
import time
from pathlib import Path

PLAIN = "plain-onnxruntime"
FLOAT_KERNEL_OF = {"sample": "generator", "generate": "generator", "score": "discriminator"}
# The targets: sample on the C backend >= 3x plain onnxruntime at every batch size, and
# >= 0.9x the C float kernel's generator throughput at batch 4096.
TARGET_VS_PLAIN = 3.0
TARGET_VS_FLOAT_KERNEL = 0.9
TARGET_FLOAT_KERNEL_BATCH = "4096"
PRECISION_TABLE = ("c", "c-bf16", "numpy", "numpy-bf16", "onnxruntime", "onnxruntime-int8")  # the rows it shows


def c_kernel_row(results: dict, backend: str) -> str:
    """The C float-kernel row a path row is held to: C at the row's precision where it was measured
    (bf16 rows: "c-bf16"), else C at float32 (the float32 rows, the plain baselines, int8)."""
    precision = results["precisions"].get(backend, "fp32")
    return "c" if precision == "fp32" else f"c-{precision}"


def add_ratios(results: dict) -> None:
    """results["ratios"]: per path, backend and batch, samples/s over plain onnxruntime's (float32)
    on the same path, and over the C float kernel's on the path's network (c_kernel_row);
    results["targets"]: the issue's."""
    vs_plain, vs_float = {}, {}
    for path, by_backend in results["paths"].items():
        plain = by_backend.get(PLAIN, {})
        kernels = results["networks"].get(FLOAT_KERNEL_OF[path], {})
        for backend, by_batch in by_backend.items():
            kernel = kernels.get(c_kernel_row(results, backend)) or kernels.get("c", {})
            for batch, row in by_batch.items():
                if batch in plain:
                    vs_plain.setdefault(path, {}).setdefault(backend, {})[batch] = \
                        row["samples_per_s"] / plain[batch]["samples_per_s"]
                if batch in kernel:
                    vs_float.setdefault(path, {}).setdefault(backend, {})[batch] = \
                        row["samples_per_s"] / kernel[batch]["samples_per_s"]
    results["ratios"] = {"vs_plain_onnxruntime": vs_plain, "vs_c_float_kernel": vs_float}
    sample_vs_plain = vs_plain.get("sample", {}).get("c", {})
    worst_batch = min(sample_vs_plain, key=sample_vs_plain.get, default=None)
    sample_vs_float = vs_float.get("sample", {}).get("c", {}).get(TARGET_FLOAT_KERNEL_BATCH)
    results["targets"] = {  # met: None where the rows it needs were not measured
        "sample_c_vs_plain_onnxruntime": {
            "at_least": TARGET_VS_PLAIN, "worst": sample_vs_plain.get(worst_batch), "worst_batch": worst_batch,
            "met": None if worst_batch is None else sample_vs_plain[worst_batch] >= TARGET_VS_PLAIN},
        "sample_c_vs_c_float_kernel_at_4096": {
            "at_least": TARGET_VS_FLOAT_KERNEL, "ratio": sample_vs_float,
            "met": None if sample_vs_float is None else sample_vs_float >= TARGET_VS_FLOAT_KERNEL}}


def _met(met) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[met]


def _ratio(value) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}x"


def _agreement(row: dict) -> str:
    if "pixels_differing" in row:
        return f"{100 * row['pixels_differing']:.3f}% px, max {row['max_level_diff']} level"
    return f"{row['max_abs_diff']:.1e} abs"


def precision_table(results: dict) -> list[str]:
    """The generator at each precision: samples/s of its float kernel (else of generate(), else of
    sample()), over c at float32's, the float32 distance of its floats and of its uint8 pixels."""
    kernel, paths, precisions = results["networks"].get("generator", {}), results["paths"], results["precisions"]
    pixels = paths.get("generate") or paths.get("sample") or {}
    sources = (("generator float kernel", kernel), ("generate()", paths.get("generate")),
               ("sample()", paths.get("sample")))
    measured = [(name, rows) for name, rows in sources if rows]
    if not measured or set(precisions.values()) <= {"fp32"}:
        return []
    source, speeds = measured[0]
    lines = ["### precision: the generator's weights at fp32, bf16 and int8", "",
             f"| backend | precision | batch | samples/s ({source}) | vs c fp32 | max abs diff | pixels changed |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for backend in filter(lambda name: name in speeds, PRECISION_TABLE):
        for batch, row in speeds[backend].items():
            c_row = speeds.get("c", {}).get(batch)
            ratio = row["samples_per_s"] / c_row["samples_per_s"] if c_row else None
            floats, uint8 = kernel.get(backend, {}).get(batch), pixels.get(backend, {}).get(batch)
            lines.append(f"| {backend} | {precisions[backend]} | {batch} | "
                         f"{row['samples_per_s']:,.0f} | {_ratio(ratio)} | "
                         f"{'–' if floats is None else format(floats['max_abs_diff'], '.1e')} | "
                         f"{'–' if uint8 is None else format(100 * uint8['pixels_differing'], '.2f') + '%'} |")
    lines += ["", "max abs diff: the generator's floats against the float32 reference; pixels changed: the share "
                  "of generate()'s uint8 pixels (else sample()'s) that differ from the float32 reference's. bf16: "
                  "ganpack.load(..., precision=\"bf16\"), weights rounded to bfloat16, float32 math; int8: plain "
                  "onnxruntime on the networks through onnxruntime.quantization.quantize_dynamic (QInt8 weights).",
              ""]
    return lines


def markdown(results: dict) -> str:
    """One table per network (float kernels), then one for what users call, the targets, then the
    precision table (where a row ran below float32)."""
    ceiling = results["machine"]["ceiling"]
    lines = []
    for network, by_backend in results["networks"].items():
        flops = results["flops_per_sample"][network]
        lines += [f"### {network} float kernel ({flops / 1e3:.0f} kFLOP per sample)", "",
                  "| backend | batch | p50 us | p99 us | samples/s | vs onnxruntime | GFLOP/s | % of ceiling | "
                  "max abs diff |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        baseline = by_backend.get("onnxruntime", {})
        for backend, by_batch in by_backend.items():
            for batch, row in by_batch.items():
                ratio = row["samples_per_s"] / baseline[batch]["samples_per_s"] if batch in baseline else None
                gflops = row["samples_per_s"] * flops / 1e9
                lines.append(f"| {backend} | {batch} | {row['p50_us']:.1f} | {row['p99_us']:.1f} | "
                             f"{row['samples_per_s']:,.0f} | {_ratio(ratio)} | {gflops:.1f} | "
                             f"{100 * gflops / ceiling['gflops']:.0f}% | {row['max_abs_diff']:.1e} |")
        lines.append("")
    if results["paths"]:
        ratios = results["ratios"]
        lines += ["### what users call (uint8 pixels)", "",
                  "| path | backend | batch | p50 us | samples/s | vs plain onnxruntime | vs C float kernel | "
                  "vs reference |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for path, by_backend in results["paths"].items():
            for backend, by_batch in by_backend.items():
                for batch, row in by_batch.items():
                    plain = ratios["vs_plain_onnxruntime"].get(path, {}).get(backend, {}).get(batch)
                    kernel = ratios["vs_c_float_kernel"].get(path, {}).get(backend, {}).get(batch)
                    lines.append(f"| {path} | {backend} | {batch} | {row['p50_us']:.1f} | "
                                 f"{row['samples_per_s']:,.0f} | {_ratio(plain)} | {_ratio(kernel)} | "
                                 f"{_agreement(row)} |")
        targets = results["targets"]
        versus_plain, versus_kernel = targets["sample_c_vs_plain_onnxruntime"], \
            targets["sample_c_vs_c_float_kernel_at_4096"]
        lines += ["", f"Targets, sample on c: >= {versus_plain['at_least']}x plain onnxruntime at every batch: "
                      f"{_met(versus_plain['met'])} (worst {_ratio(versus_plain['worst'])} at batch "
                      f"{versus_plain['worst_batch']}); >= {versus_kernel['at_least']}x the C float kernel at batch "
                      f"{TARGET_FLOAT_KERNEL_BATCH}: {_met(versus_kernel['met'])} ({_ratio(versus_kernel['ratio'])}).",
                  "plain onnxruntime: numpy default_rng(seed).standard_normal latents, an InferenceSession with "
                  "default options, np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8); score: "
                  "x.astype(float32) / 127.5 - 1; onnxruntime-int8: the same code on the networks quantized to "
                  "int8. vs C float kernel: samples/s over the c backend's float "
                  "rows of the same network, precision (bf16 rows: c-bf16's; int8: c at fp32) and batch.", ""]
    lines += precision_table(results)
    peak = results["machine"]["isa_peak"]
    lines.append(f"Ceiling: {ceiling['gflops']:.0f} GFLOP/s measured on {ceiling['threads']} threads "
                 f"({ceiling['gflops_one_thread']:.0f} on one; {ceiling['isa']} FMA chains in registers, "
                 f"gp_fma_ceiling); ISA peak on paper {peak['gflops']:.0f} GFLOP/s ({results['machine']['cores']} "
                 f"cores x {results['machine']['clock_ghz']} GHz x {peak['flops_per_cycle']} FLOP/cycle: "
                 f"{peak['basis']}). CPU: {results['machine']['model']}. "
                 f"Differences: against {results['reference']}; uint8 rows against its floats through the "
                 f"same uint8 line (the plain baselines' sample: from their own latents).")
    return "\n".join(lines)


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")


def plot(results: dict, path: Path) -> bool:
    """Throughput against batch size, log-log, one panel per network: the float kernels (solid; below
    float32, dotted in the colour of their backend), sample() per float32 backend on the generator's
    panel (dashed; plain onnxruntime in black), the measured ceiling and the ISA peak."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    precisions = results["precisions"]
    colours: dict[str, str] = {PLAIN: "black"}  # a backend's colour, shared by its rows at every precision

    def colour(backend: str) -> str:
        precision = precisions.get(backend, "fp32")
        base = backend if precision == "fp32" else backend.removesuffix(f"-{precision}")
        return colours.setdefault(base, f"C{len(colours) - 1}")

    panels = {}  # network -> [(label, by_batch, style)]
    for network, by_backend in results["networks"].items():
        for backend, by_batch in by_backend.items():
            style = {"marker": "o"} if precisions.get(backend, "fp32") == "fp32" else {"marker": "^", "linestyle": ":"}
            panels.setdefault(network, []).append((f"{backend} float kernel", by_batch,
                                                   {**style, "color": colour(backend)}))
    for backend, by_batch in results["paths"].get("sample", {}).items():
        if precisions.get(backend, "fp32") == "fp32":  # below float32: the float kernels tell the story
            style = {"marker": "s", "linestyle": "--", "color": colour(backend)}
            panels.setdefault("generator", []).append((f"sample() {backend}", by_batch, style))
    if not panels:
        return False
    figure, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5), squeeze=False)
    machine = results["machine"]
    for axis, (network, curves) in zip(axes[0], panels.items()):
        for label, by_batch, style in curves:
            batches = [int(b) for b in by_batch]
            axis.plot(batches, [by_batch[str(b)]["samples_per_s"] for b in batches], label=label, **style)
        flops = results["flops_per_sample"][network]
        axis.axhline(machine["ceiling"]["gflops"] * 1e9 / flops, color="gray", linestyle="-",
                     label=f"measured FMA ceiling ({machine['ceiling']['gflops']:.0f} GFLOP/s)")
        axis.axhline(machine["isa_peak"]["gflops"] * 1e9 / flops, color="gray", linestyle=":",
                     label=f"ISA peak on paper ({machine['isa_peak']['gflops']:.0f} GFLOP/s)")
        axis.set(xscale="log", yscale="log", xlabel="batch size", ylabel="samples per second", title=network)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="x-small", loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def output_folder(out: str | None, local_results: Path) -> Path:
    """--out, created if need be; by default a fresh folder under local_results named for the time."""
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        return Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        folder = local_results / (f"{stamp}-{attempt}" if attempt else stamp)
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:  # another run started in the same second
            continue
    raise FileExistsError(f"every folder {local_results / stamp}-* is taken")
