"""Time one backend on one network over several batch sizes, through the public API.

Run in its own process by bench.py (`python measure.py '<json spec>'`), so that one backend's
threads (onnxruntime's spinning pool) never share the machine with another's measurement.
Prints one JSON object: per batch size, latency percentiles and the worst difference from the
reference outputs bench.py passed in.
"""

import json
import sys
import time

import numpy as np

BACKEND_SETTINGS = {  # bench name -> (ganpack backend, threads)
    "c": ("c", None),
    "onnxruntime": ("onnxruntime", None),
    "onnxruntime-tuned": ("onnxruntime", 1),  # one thread, spinning off
    "numpy": ("numpy", None),
}


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
        modules.append({"leaky_relu": torch.nn.LeakyReLU(layer.alpha), "relu": torch.nn.ReLU(),
                        "tanh": torch.nn.Tanh(), "sigmoid": torch.nn.Sigmoid(),
                        "identity": torch.nn.Identity()}[layer.activation])
    net = torch.nn.Sequential(*modules).eval()

    def run(inputs):
        with torch.no_grad():
            result = net(torch.from_numpy(inputs)).numpy()
        return result if network == "generator" else result[:, 0]

    return run


def measure(spec: dict) -> dict:
    import ganpack

    model = ganpack.load(spec["model"], backend="numpy")  # for latents and the torch weights
    results = {}
    if spec["backend"] == "torch":
        run = torch_caller(model, spec["network"])
    else:
        backend, threads = BACKEND_SETTINGS[spec["backend"]]
        model = ganpack.load(spec["model"], backend=backend, threads=threads)
        run = None
    for batch in spec["batch_sizes"]:
        z = model.latents(batch, seed=batch)
        if spec["network"] == "generator":
            inputs = z
            out = np.empty((batch, 28, 28), np.float32)
            call = (lambda: run(inputs)) if run else (lambda: model.generate(inputs, output="float", out=out))
            produce = (lambda: run(inputs)) if run else (lambda: model.generate(inputs, output="float").reshape(batch, -1))
        else:
            inputs = np.ascontiguousarray(ganpack.load(spec["model"], backend="numpy").generate(z, output="float")
                                          .reshape(batch, -1))
            call = (lambda: run(inputs)) if run else (lambda: model.score(inputs))
            produce = call
        reference = np.load(spec["references"])[f"{spec['network']}_{batch}"]
        difference = float(np.abs(produce().reshape(reference.shape) - reference).max())
        seconds = timed_calls(call, spec["min_seconds"], spec["min_calls"])
        results[str(batch)] = {"calls": len(seconds), "p50_us": float(np.percentile(seconds, 50) * 1e6),
                               "p99_us": float(np.percentile(seconds, 99) * 1e6),
                               "samples_per_s": float(batch / np.percentile(seconds, 50)),
                               "max_abs_diff": difference}
    return results


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
