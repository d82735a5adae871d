"""benchmarks/bench.py --quick runs and writes a complete report (never a check of speed)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_writes_valid_json_and_a_plot(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick",
                           "--backends", "c,onnxruntime,numpy", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| backend | batch | p50 us |" in done.stdout
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["machine"]["cores"] >= 1 and results["machine"]["peak_gflops"] > 0
    assert {"numpy", "onnxruntime"} <= set(results["versions"])
    assert results["flops_per_sample"]["generator"] == 2 * (100 * 128 + 128 * 784)
    for network in ("generator", "discriminator"):
        for backend in ("c", "onnxruntime", "numpy"):
            for batch in ("1", "64"):
                row = results["networks"][network][backend][batch]
                assert row["p50_us"] > 0 and row["p99_us"] >= row["p50_us"] and row["calls"] >= 5
                assert row["max_abs_diff"] <= 1e-5  # every backend agrees with the reference
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
