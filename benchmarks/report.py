"""The benchmark report: a markdown table for people, JSON for machines, a PNG plot for both."""

import json
from pathlib import Path


def markdown(results: dict) -> str:
    """One table per network: a row per backend and batch size."""
    lines = []
    for network, by_backend in results["networks"].items():
        flops = results["flops_per_sample"][network]
        lines += [f"### {network} ({flops / 1e3:.0f} kFLOP per sample)", "",
                  "| backend | batch | p50 us | p99 us | samples/s | vs onnxruntime | GFLOP/s | % of peak | max abs diff |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        baseline = by_backend.get("onnxruntime", {})
        for backend, by_batch in by_backend.items():
            for batch, row in by_batch.items():
                ratio = row["samples_per_s"] / baseline[batch]["samples_per_s"] if batch in baseline else float("nan")
                gflops = row["samples_per_s"] * flops / 1e9
                lines.append(f"| {backend} | {batch} | {row['p50_us']:.1f} | {row['p99_us']:.1f} | "
                             f"{row['samples_per_s']:,.0f} | {ratio:.2f}x | {gflops:.1f} | "
                             f"{100 * gflops / results['machine']['peak_gflops']:.0f}% | {row['max_abs_diff']:.1e} |")
        lines.append("")
    machine = results["machine"]
    lines.append(f"Peak: {machine['cores']} cores x {machine['clock_ghz']} GHz x {machine['flops_per_cycle']} "
                 f"FLOP/cycle ({machine['peak_basis']}) = {machine['peak_gflops']:.0f} GFLOP/s. "
                 f"max abs diff: against {results['reference']}.")
    return "\n".join(lines)


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")


def plot(results: dict, path: Path) -> bool:
    """Throughput against batch size per backend, log-log, one panel per network."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    networks = results["networks"]
    figure, axes = plt.subplots(1, len(networks), figsize=(6 * len(networks), 4.5), squeeze=False)
    for axis, (network, by_backend) in zip(axes[0], networks.items()):
        for backend, by_batch in by_backend.items():
            batches = [int(b) for b in by_batch]
            axis.plot(batches, [by_batch[str(b)]["samples_per_s"] for b in batches], marker="o", label=backend)
        peak = results["machine"]["peak_gflops"] * 1e9 / results["flops_per_sample"][network]
        axis.axhline(peak, color="gray", linestyle="--", label="fp32 peak")
        axis.set(xscale="log", yscale="log", xlabel="batch size", ylabel="samples per second", title=network)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
