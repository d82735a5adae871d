"""benchmarks/bench.py --quick runs and writes a complete report (never a check of speed)."""

import functools
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import ganpack
from bounds import AGREEMENT, FLOOR, terms
from ganpack.contract import from_uint8

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"
BACKENDS = ("c", "onnxruntime", "numpy")
BF16 = ("c-bf16", "numpy-bf16")  # --precision's default has them, and onnxruntime-int8
BF16_FLOOR = 1e-4  # ten times the float32 rows' tolerance: a precision silently ignored stays below it
BF16_MAX, BF16_PIXELS = 0.3, 0.12  # bf16 against float32 on the default model (tests/test_precision.py)
INT8 = ("onnxruntime-int8",) if importlib.util.find_spec("onnx") else ()  # onnxruntime.quantization reads onnx
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


@functools.cache
def float_tolerance(network: str, batch: int, path: str = "") -> float:
    """The agreement bound (tests/bounds.py) at the largest S of the bench's own inputs: the default
    model's latents for (batch, seed=batch), and for the discriminator the images made from them
    (score's from their uint8 pixels). Cached: every row of a (network, batch, path) asks for it."""
    model = ganpack.load(backend="numpy")
    z = model.latents(batch, seed=batch)
    if network == "generator":
        return AGREEMENT * float(terms(model._generator.stack, z).max()) + FLOOR
    images = from_uint8(model.generate(z)) if path == "score" else model.generate(z, output="float")
    return AGREEMENT * float(terms(model._discriminator.stack, images.reshape(batch, -1)).max()) + FLOOR


def test_float_kernel_rows_agree_with_the_reference(quick_run):
    _, results, _ = quick_run
    assert results["flops_per_sample"]["generator"] == 2 * (100 * 128 + 128 * 784)
    for network in ("generator", "discriminator"):
        assert set(results["networks"][network]) == {*BACKENDS, *BF16, *INT8}
        for backend, by_batch in results["networks"][network].items():
            assert set(by_batch) == set(BATCHES)
            for batch, row in by_batch.items():
                assert row["p50_us"] > 0 and row["p99_us"] >= row["p50_us"] and row["calls"] >= 5
                if backend in BACKENDS:  # float32 agrees with the reference
                    assert row["max_abs_diff"] <= float_tolerance(network, int(batch)), (network, backend)
                elif backend in BF16:  # bfloat16 weights: close to float32, never equal
                    assert BF16_FLOOR < row["max_abs_diff"] <= BF16_MAX, (network, backend)
                else:  # int8: recorded, whatever it is
                    assert math.isfinite(row["max_abs_diff"]), (network, backend)


def test_what_users_call_rows_agree_with_the_reference(quick_run):
    _, results, _ = quick_run
    for path in PATHS:
        assert set(results["paths"][path]) == {*BACKENDS, "plain-onnxruntime", *BF16, *INT8}
        for backend, by_batch in results["paths"][path].items():
            assert set(by_batch) == set(BATCHES), (path, backend)
            for batch, row in by_batch.items():
                assert row["p50_us"] > 0 and row["p99_us"] >= row["p50_us"] and row["calls"] >= 5
                assert row["samples_per_s"] > 0
                if backend in INT8:  # recorded, whatever it is
                    assert math.isfinite(row.get("max_abs_diff", row.get("pixels_differing"))), (path, backend)
                elif backend in BF16 and path == "score":
                    assert BF16_FLOOR < row["max_abs_diff"] <= BF16_MAX, (path, backend)
                elif backend in BF16:  # a few hundredths apart moves a few percent of the pixels
                    assert 0 < row["pixels_differing"] <= BF16_PIXELS, (path, backend)
                elif path == "score":
                    assert row["max_abs_diff"] <= float_tolerance("discriminator", int(batch), path), (path, backend)
                else:  # uint8 pixels: a float rounding just across a level boundary moves one pixel by 1
                    assert row["max_level_diff"] <= 1, (path, backend)  # measured up to 0.13% of them
                    assert 0 <= row["pixels_differing"] <= 5e-3, (path, backend)


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
        for backend in BF16:  # held to the C float kernel at the same precision
            paths = results["paths"][path]
            kernel = results["networks"]["discriminator" if path == "score" else "generator"]["c-bf16"]
            expected = paths[backend]["64"]["samples_per_s"] / kernel["64"]["samples_per_s"]
            assert ratios["vs_c_float_kernel"][path][backend]["64"] == pytest.approx(expected)
    targets = results["targets"]
    assert targets["sample_c_vs_plain_onnxruntime"]["met"] in (True, False)
    assert targets["sample_c_vs_plain_onnxruntime"]["worst_batch"] in BATCHES
    assert targets["sample_c_vs_c_float_kernel_at_4096"]["met"] is None  # --quick stops at batch 64


def test_every_row_records_its_precision_and_the_report_compares_them(quick_run):
    stdout, results, _ = quick_run
    assert results["precisions"] == {"plain-onnxruntime": "fp32", **{b: "fp32" for b in BACKENDS},
                                     **{b: "bf16" for b in BF16}, **{b: "int8" for b in INT8}}
    table = stdout[stdout.index("### precision"):].split("\n\n")[1].splitlines()
    assert table[0].startswith("| backend | precision | batch | samples/s (generator float kernel) | vs c fp32 |")
    shown = {tuple(cell.strip() for cell in line.split("|")[1:4]) for line in table[2:]}
    expected = {("c", "fp32"), ("numpy", "fp32"), ("onnxruntime", "fp32"), ("c-bf16", "bf16"), ("numpy-bf16", "bf16"),
                *((b, "int8") for b in INT8)}
    assert shown == {(*row, batch) for row in expected for batch in BATCHES}
    assert all(line.split("|")[5].strip() == "1.00x" for line in table[2:] if line.startswith("| c | fp32 |"))


@pytest.mark.slow
def test_precision_fp32_measures_only_the_float32_rows(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--backends", "c,onnxruntime", "--precision", "fp32",
                           "--networks", "generator", "--paths", "", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    assert set(results["networks"]["generator"]) == {"c", "onnxruntime"}
    assert "### precision" not in done.stdout and "skipping" not in done.stderr


@pytest.mark.parametrize("arguments, message", [
    (["--batch-sizes", "1,0"], "--batch-sizes takes positive integers"),
    (["--batch-sizes", "1,x"], "--batch-sizes takes positive integers"),
    (["--batch-sizes", "-8"], "--batch-sizes takes positive integers"),
    (["--backends", "c,tensorrt"], "--backends: unknown 'tensorrt'"),
    (["--networks", "encoder"], "--networks: unknown 'encoder'"),
    (["--paths", "train"], "--paths: unknown 'train'"),
    (["--model", "/no/such/model"], "--model: no such file or folder"),
    (["--seconds", "0"], "--seconds must be positive"),
    (["--precision", "fp32,bogus"], "--precision: unknown 'bogus'; choose from fp32,bf16,int8"),
    (["--precision", ","], "--precision: name at least one of fp32,bf16,int8"),
    (["--backends", "torch", "--precision", "bf16"], "--precision: none of torch runs at bf16"),
    (["--backends", "c-bf16"], "--backends: 'c-bf16' is c at bf16: name c here and bf16 in --precision"),
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
