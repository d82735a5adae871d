"""The fast step captured in a CUDA graph: one launch for the kernels of a step's ~140 operations.

On a GPU a network this small is bound by launching kernels, not by running them (the eager step
kept an H200 busy 6% of the time). FastStep.compute has no host syncs, no randomness and fixed
shapes, so it is captured once and replayed each step:
- FastStep.inputs() still runs outside the graph, from the per-step seeded generator (resume stays exact);
  the batch and the draws are copied into the graph's static inputs before each replay;
- the learning rates and the moving average's weight live in 0-dim tensors, refreshed before a
  replay when they change (the learning-rate decay, the moving average's warm-up);
- the first WARMUP steps run uncaptured on a side stream (the libraries set up their workspaces),
  then the next step is captured and replayed.
It wraps a FastStep and works on that step's StepState. The trainer uses it on CUDA outside DDP
(the all-reduce stays outside any graph; DDP runs the plain fast step). GraphedStep(capture=False)
runs the same static-input code without a graph, on any device: tests/test_fast_step.py and
tests/test_steps.py check it on the CPU against the plain fast step bit for bit.
A capture that fails falls back to the plain fast step, saying why.
"""

import sys

import torch

from training.fast_step import FastStep

WARMUP = 3  # uncaptured steps before the capture


class GraphedStep:
    """Called as the fast step is: step(t, real, labels)."""

    def __init__(self, fast: FastStep, capture: bool):
        self.fast, self.capture = fast, capture
        state = self.state = fast.state
        self.optimizers = {"lr_d": state.optimizer_d, "lr_g": state.optimizer_g}
        # Adam's kernel reads a tensor rate as float32 on CUDA and as a double on the CPU (where the
        # float it takes otherwise is a double too, so the two agree bit for bit there)
        rate = torch.float32 if state.device.type == "cuda" else torch.float64
        fast.scalars = {name: torch.zeros((), dtype=rate, device=state.device) for name in self.optimizers}
        fast.scalars["ema"] = torch.zeros((), device=state.device)  # the parameters' dtype, as lerp takes it
        self.values: dict[str, float | None] = dict.fromkeys(fast.scalars)  # what each tensor holds now
        self.static: tuple[torch.Tensor, ...] | None = None  # the graph's inputs: FastStep.inputs()
        self.graph, self.output, self.calls = None, None, 0

    def _refresh_scalars(self, step: int) -> None:
        """Write the current learning rates and step `step`'s EMA weight into their tensors, where they changed."""
        state = self.state
        wanted = {name: float(optimizer.param_groups[0]["lr"]) for name, optimizer in self.optimizers.items()}
        wanted["ema"] = 1.0 - state.ema_decay_at(step) if state.generator_ema is not None else 0.0
        for name, value in wanted.items():
            if self.values[name] != value:
                self.fast.scalars[name].fill_(value)
                self.values[name] = value

    def __call__(self, step: int, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.compute(step, *self.fast.inputs(step, real, labels))

    def compute(self, step: int, *inputs: torch.Tensor) -> torch.Tensor:
        """FastStep.compute of step `step` on `inputs` (FastStep.inputs()' tuple), through the graph:
        they are copied into its static inputs, and the rates refreshed, before a replay (the graph
        reads the step's number only through them). benchmarks/gpu_check.py calls it with draws made
        on another device, to hold the graph to the CPU's steps."""
        self._refresh_scalars(step)
        self.calls += 1
        if self.static is None or self.static[0].shape != inputs[0].shape:
            self.static = tuple(torch.empty_like(x) for x in inputs)
            self.graph = None
        self._load(inputs)
        if not self.capture:
            return self.fast.compute(step, *self.static)
        if self.calls <= WARMUP:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.fast.compute(step, *self.static)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None and not self._capture(step):
            return self.fast.compute(step, *self.static)
        self.graph.replay()
        return self.output

    def _load(self, inputs: tuple[torch.Tensor, ...]) -> None:
        """Copy this step's inputs into the graph's static inputs (a replay reads only those)."""
        assert self.static is not None
        for static, value in zip(self.static, inputs, strict=True):
            static.copy_(value)

    def _capture(self, step: int) -> bool:
        """Record compute() on the static inputs (recording runs nothing); False, after saying why,
        when CUDA refuses, and every later step runs uncaptured."""
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.output = self.fast.compute(step, *self.static)
        except RuntimeError as error:
            print(f"warning: the training step could not be captured in a CUDA graph ({error}); "
                  "training goes on with the uncaptured fast step", file=sys.stderr)
            self.capture = False
            return False
        self.graph = graph
        return True
