"""Time one backend on one path over several batch sizes, through the public API.

Run in its own process by bench.py (`python measure.py '<json spec>'`), so that one backend's
threads (onnxruntime's spinning pool) never share the machine with another's measurement.
Prints one JSON object: per batch size, latency percentiles and how far the outputs are from
the reference outputs bench.py passed in.

Paths: "generator" and "discriminator" time the float kernels (float32 in, float32 out, into a
preallocated buffer); "sample", "generate" and "score" time what users call (uint8 pixels out
of the generator, uint8 pixels into the discriminator). Backend "plain-onnxruntime" is the
baseline without ganpack: the code a user writes with numpy and onnxruntime alone.

Reduced precision: "c-bf16" and "numpy-bf16" are ganpack.load(..., precision="bf16") (weights
rounded to bfloat16, math in float32), called exactly like the float32 rows. "onnxruntime-int8"
is the plain baseline on the package's networks quantized on the fly (int8 weights, activations
quantized per call: onnxruntime.quantization.quantize_dynamic) into a temporary folder that is
gone before the first timed call; its float-kernel rows return a new array, like "torch".
Every row is compared with the float32 reference.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ganpack.contract import IDENTITY, IMAGE_SHAPE, LEAKY_RELU, RELU, SIGMOID, TANH

BACKEND_SETTINGS = {  # bench name -> (ganpack backend, threads, precision)
    "c": ("c", None, "fp32"),
    "c-bf16": ("c", None, "bf16"),
    "onnxruntime": ("onnxruntime", None, "fp32"),
    "onnxruntime-tuned": ("onnxruntime", 1, "fp32"),  # one thread, spinning off
    "numpy": ("numpy", None, "fp32"),
    "numpy-bf16": ("numpy", None, "bf16"),
}
PLAIN_BASELINES = ("plain-onnxruntime", "onnxruntime-int8")  # numpy + onnxruntime, no ganpack
FLOAT_KERNELS = ("generator", "discriminator")
END_TO_END = ("sample", "generate", "score")


def timed_calls(call, min_seconds: float, min_calls: int) -> np.ndarray:
    """Per-call seconds after a warm-up, until both minimums are met."""
    warm_until = time.perf_counter() + min_seconds / 5
    while time.perf_counter() < warm_until:
        call()
    times, started = [], time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - started < min_seconds:
        begin = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - begin)
    return np.array(times) / 1e9


def torch_caller(model, network: str):
    """PyTorch eager on the package's own weights (nn.Linear layers rebuilt from the graph)."""
    import torch

    from ganpack.dense_stack import load_dense_stack

    file = model.manifest.generator.file if network == "generator" else model.manifest.discriminator.file
    stack = load_dense_stack(model.folder / file)
    modules = []
    for layer in stack.layers:
        linear = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        linear.weight.data, linear.bias.data = torch.from_numpy(layer.weight), torch.from_numpy(layer.bias)
        modules.append(linear)
        modules.append({LEAKY_RELU: torch.nn.LeakyReLU(layer.alpha), RELU: torch.nn.ReLU(),
                        TANH: torch.nn.Tanh(), SIGMOID: torch.nn.Sigmoid(),
                        IDENTITY: torch.nn.Identity()}[layer.activation])
    net = torch.nn.Sequential(*modules).eval()

    def run(inputs):
        with torch.no_grad():
            result = net(torch.from_numpy(inputs)).numpy()
        return result if network == "generator" else result[:, 0]

    return run


# ---------------------------------------------------------------------------------------------
# the baseline: what a user writes without ganpack (numpy + onnxruntime, default options)

def plain_to_uint8(images: np.ndarray) -> np.ndarray:
    """The uint8 mapping as a user writes it: ganpack.contract.to_uint8, spelled out on purpose
    (tests/test_contract.py holds the two equal)."""
    return np.clip(np.rint((images + 1) * 127.5), 0, 255).astype(np.uint8)


def plain_from_uint8(pixels: np.ndarray) -> np.ndarray:
    """ganpack.contract.from_uint8 as a user writes it (tests/test_contract.py holds the two equal)."""
    return pixels.astype(np.float32) / np.float32(127.5) - 1


def network_file(model, network: str) -> Path:
    """The package's ONNX file of `network` ("generator" or "discriminator")."""
    return model.folder / getattr(model.manifest, network).file


def int8_model(source: Path, folder: Path) -> Path:
    """`source` with int8 weights (per-call int8 activations: MatMulInteger), written into `folder`.
    Pre-processed first (ONNX shape inference; the symbolic pass, which needs sympy, is of no use
    on fixed-width dense layers), as quantize_dynamic asks, else it logs a warning on every run."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, quantized = folder / f"{source.stem}.prepared.onnx", folder / f"{source.stem}.int8.onnx"
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(prepared, quantized, weight_type=QuantType.QInt8)
    return quantized


def plain_float_kernel(file: Path, network: str):
    """The float kernel as plain onnxruntime code: float32 in, a new float32 array out."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(file))
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    if network == "generator":
        return lambda z: session.run([output_name], {input_name: z})[0]  # (batch, 784)
    return lambda images: session.run([output_name], {input_name: images})[0][:, 0]  # (batch,)


def plain_onnxruntime(model, path: str, file: Path | None = None):
    """One call of `path` as plain numpy + onnxruntime code, (batch, seed, inputs) -> output.
    file: the ONNX file of the path's network (default: the package's)."""
    import onnxruntime

    latent_dim = model.latent_dim
    if path in ("sample", "generate"):
        session = onnxruntime.InferenceSession(str(file or network_file(model, "generator")))
        z_name = session.get_inputs()[0].name

        def generate(z):
            images = session.run(None, {z_name: z})[0]
            return plain_to_uint8(images).reshape(-1, 28, 28)

        if path == "generate":
            return lambda batch, seed, inputs: generate(inputs)
        return lambda batch, seed, inputs: generate(
            np.random.default_rng(seed).standard_normal((batch, latent_dim), dtype=np.float32))
    session = onnxruntime.InferenceSession(str(file or network_file(model, "discriminator")))
    image_name, probability_name = session.get_inputs()[0].name, next(iter(model.manifest.discriminator.outputs))

    def score(images):
        rows = plain_from_uint8(images).reshape(len(images), -1)
        return session.run([probability_name], {image_name: rows})[0][:, 0]

    return lambda batch, seed, inputs: score(inputs)


# ---------------------------------------------------------------------------------------------

def difference(produced: np.ndarray, reference: np.ndarray) -> dict:
    """Floats: the worst absolute difference. uint8 pixels: the share that differ, the worst level."""
    produced = produced.reshape(reference.shape)
    if reference.dtype == np.uint8:
        levels = np.abs(produced.astype(np.int16) - reference.astype(np.int16))
        return {"pixels_differing": float((levels != 0).mean()), "max_level_diff": int(levels.max())}
    return {"max_abs_diff": float(np.abs(produced - reference).max())}


def calls_for(path: str, backend: str, model, runner, batch: int, references: dict):
    """(call, produce) for one batch size: `call` is what is timed, `produce` gives its output.
    runner: the PyTorch network (backend "torch"), or a plain baseline's float kernel or call."""
    seed = batch
    if backend in PLAIN_BASELINES and path in END_TO_END:
        inputs = {"sample": None, "generate": references.get(f"latents_{batch}"),
                  "score": references.get(f"uint8_{batch}")}[path]
        call = lambda: runner(batch, seed, inputs)  # noqa: E731
        return call, call
    if path == "generator":
        z = references[f"latents_{batch}"]
        if runner:
            return (lambda: runner(z)), (lambda: runner(z))
        out = np.empty((batch, *IMAGE_SHAPE), np.float32)
        return (lambda: model.generate(z, output="float", out=out)), (lambda: model.generate(z, output="float"))
    if path == "discriminator":
        images = references[f"images_float_{batch}"]
        call = (lambda: runner(images)) if runner else (lambda: model.score(images))
        return call, call
    if path == "sample":
        call = lambda: model.sample(batch, seed=seed)  # noqa: E731
    elif path == "generate":
        z = references[f"latents_{batch}"]
        call = lambda: model.generate(z)  # noqa: E731
    else:
        pixels = references[f"uint8_{batch}"]
        call = lambda: model.score(pixels)  # noqa: E731
    return call, call


def reference_key(path: str, backend: str, batch: int) -> str:
    """Which reference array a row is compared with (see bench.references): always float32; the
    plain baselines' sample draws its own latents, so its pixels are held to those latents'."""
    if path in FLOAT_KERNELS:
        return f"{path}_{batch}"
    if path == "score":
        return f"score_{batch}"
    return f"plain_uint8_{batch}" if backend in PLAIN_BASELINES and path == "sample" else f"uint8_{batch}"


def measure(spec: dict) -> dict:
    import ganpack

    path, backend = spec["path"], spec["backend"]
    model = ganpack.load(spec["model"], backend="numpy")  # the package's folder, for torch and the baseline
    runner = None
    if backend == "torch":
        runner = torch_caller(model, path)
    elif backend in PLAIN_BASELINES:
        network = "discriminator" if path in ("discriminator", "score") else "generator"
        with tempfile.TemporaryDirectory() as scratch:  # the sessions hold the int8 model in memory
            file = network_file(model, network)
            if backend == "onnxruntime-int8":
                file = int8_model(file, Path(scratch))
            runner = (plain_float_kernel(file, network) if path in FLOAT_KERNELS
                      else plain_onnxruntime(model, path, file))
    else:
        name, threads, precision = BACKEND_SETTINGS[backend]
        model = ganpack.load(spec["model"], backend=name, threads=threads, precision=precision)
    references = dict(np.load(spec["references"]))
    results = {}
    for batch in spec["batch_sizes"]:
        call, produce = calls_for(path, backend, model, runner, batch, references)
        reference = references[reference_key(path, backend, batch)]
        agreement = difference(np.asarray(produce()), reference)
        seconds = timed_calls(call, spec["min_seconds"], spec["min_calls"])
        results[str(batch)] = {"calls": len(seconds), "p50_us": float(np.percentile(seconds, 50) * 1e6),
                               "p99_us": float(np.percentile(seconds, 99) * 1e6),
                               "samples_per_s": float(batch / np.percentile(seconds, 50)), **agreement}
    return results


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
