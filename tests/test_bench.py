"""benchmarks/bench.py --quick runs and writes a complete report (never a check of speed)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"
BACKENDS = ("c", "onnxruntime", "numpy")
BATCHES = ("1", "64")  # --quick's batch sizes
PATHS = ("sample", "generate", "score")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--backends", ",".join(BACKENDS),
                           "--out-dir", str(out_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads((out_dir / "bench.json").read_text()), out_dir


@pytest.mark.slow
def test_quick_benchmark_writes_the_tables_and_a_plot(quick_run):
    stdout, _, out_dir = quick_run
    assert "| backend | batch | p50 us |" in stdout and "% of ceiling" in stdout
    assert "| path | backend | batch | p50 us | samples/s | vs plain onnxruntime | vs C float kernel |" in stdout
    assert (out_dir / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_machine_ceiling_and_isa_peak(quick_run):
    _, results, _ = quick_run
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["model"]
    ceiling = machine["ceiling"]
    assert math.isfinite(ceiling["gflops"]) and ceiling["gflops"] > 0
    assert math.isfinite(ceiling["gflops_one_thread"]) and ceiling["gflops_one_thread"] > 0
    assert ceiling["threads"] >= 1 and ceiling["isa"] in ("avx512", "avx2_fma", "portable")
    assert machine["isa_peak"]["gflops"] > 0 and machine["isa_peak"]["flops_per_cycle"] > 0
    assert {"numpy", "onnxruntime"} <= set(results["versions"])


def test_float_kernel_rows_agree_with_the_reference(quick_run):
    _, results, _ = quick_run
    assert results["flops_per_sample"]["generator"] == 2 * (100 * 128 + 128 * 784)
    for network in ("generator", "discriminator"):
        assert set(results["networks"][network]) == set(BACKENDS)
        for backend in BACKENDS:
            assert set(results["networks"][network][backend]) == set(BATCHES)
            for row in results["networks"][network][backend].values():
                assert row["p50_us"] > 0 and row["p99_us"] >= row["p50_us"] and row["calls"] >= 5
                assert row["max_abs_diff"] <= 1e-5  # every backend agrees with the reference


def test_what_users_call_rows_agree_with_the_reference(quick_run):
    _, results, _ = quick_run
    for path in PATHS:
        assert set(results["paths"][path]) == {*BACKENDS, "plain-onnxruntime"}
        for backend, by_batch in results["paths"][path].items():
            assert set(by_batch) == set(BATCHES), (path, backend)
            for row in by_batch.values():
                assert row["p50_us"] > 0 and row["p99_us"] >= row["p50_us"] and row["calls"] >= 5
                assert row["samples_per_s"] > 0
                if path == "score":
                    assert row["max_abs_diff"] <= 1e-5, (path, backend)
                else:  # uint8 pixels: a float rounding just across a level boundary moves one pixel by 1
                    assert row["max_level_diff"] <= 1, (path, backend)
                    assert 0 <= row["pixels_differing"] <= 1e-3, (path, backend)


def test_ratios_and_targets_are_recorded(quick_run):
    _, results, _ = quick_run
    ratios = results["ratios"]
    for path in PATHS:
        for backend in (*BACKENDS, "plain-onnxruntime"):
            for batch in BATCHES:
                paths = results["paths"][path]
                kernel = results["networks"]["discriminator" if path == "score" else "generator"]["c"]
                expected = paths[backend][batch]["samples_per_s"] / paths["plain-onnxruntime"][batch]["samples_per_s"]
                assert ratios["vs_plain_onnxruntime"][path][backend][batch] == pytest.approx(expected)
                expected = paths[backend][batch]["samples_per_s"] / kernel[batch]["samples_per_s"]
                assert ratios["vs_c_float_kernel"][path][backend][batch] == pytest.approx(expected)
        assert ratios["vs_plain_onnxruntime"][path]["plain-onnxruntime"]["1"] == pytest.approx(1.0)
    targets = results["targets"]
    assert targets["sample_c_vs_plain_onnxruntime"]["met"] in (True, False)
    assert targets["sample_c_vs_plain_onnxruntime"]["worst_batch"] in BATCHES
    assert targets["sample_c_vs_c_float_kernel_at_4096"]["met"] is None  # --quick stops at batch 64


@pytest.mark.parametrize("arguments, message", [
    (["--batch-sizes", "1,0"], "--batch-sizes takes positive integers"),
    (["--batch-sizes", "1,x"], "--batch-sizes takes positive integers"),
    (["--batch-sizes", "-8"], "--batch-sizes takes positive integers"),
    (["--backends", "c,tensorrt"], "--backends: unknown 'tensorrt'"),
    (["--networks", "encoder"], "--networks: unknown 'encoder'"),
    (["--paths", "train"], "--paths: unknown 'train'"),
    (["--model", "/no/such/model"], "--model: no such file or folder"),
    (["--seconds", "0"], "--seconds must be positive"),
])
def test_bad_arguments_give_one_line_and_status_2(arguments, message, tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), *arguments, "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("bench.py: error: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_folder_that_is_not_a_model_package_is_refused(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), "--model", str(tmp_path), "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("bench.py: error: --model: ")
    assert len(done.stderr.strip().splitlines()) == 1
