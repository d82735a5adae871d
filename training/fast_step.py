"""The training step written out by hand: forward and backward of both dense stacks without autograd.

training/reference_step.py is the same GAN update through autograd, and stays the reference: this
step works on the same StepState, draws the same latents and shifts from the same per-step seed,
computes the same losses and gradients, and ends within float rounding of it (tests/test_fast_step.py
and tests/test_steps.py state how close). On a network this small much of the time is not in the
matrix multiplies; what this step saves:
- no autograd graph and no double backward: the R1 penalty and its gradient in closed form (below),
  through the Gram matrix of D's first layer, less than half the multiply work of the plain chain;
- D scores the real and the generated batch in one (2B, 784) pass, not two; the shifts are windows
  of one padded buffer, with no (B, 784) index tensors;
- gradients are written straight into one flat buffer per network (one all-reduce under DDP);
  Adam is torch's fused kernel called directly, the moving average one foreach lerp;
- no work autograd would do for nothing: the real images need no gradient.

Notation (shapes for the default widths): D has layers W_i (width_i, width_{i-1}), b_i, i = 0..L-1,
with h_i = a_i W_i^T + b_i, a_{i+1} = leaky(h_i), a_0 = x (N, 784), logit = h_{L-1} (N, 1).

R1 in closed form (training/losses.py derives it): d logit / d x is
    v_{L-2} = w_{L-1},   u_i = leaky'(h_i) * v_i,   v_{i-1} = u_i W_i,   d logit / d x = v_{-1} = u_0 W_0,
so the penalty 0.5 gamma mean_n |u_0,n W_0|^2 = 0.5 gamma mean_n u_0,n K u_0,n^T with K = W_0 W_0^T
(width_0, width_0): 34 MFLOP for K and u_0 K, not 51 for u_0 W_0 (default widths, B 256), and 68
with the gradient, not 154. The gradient, back along the chain:
    dW_0 += gamma/B (u_0^T u_0) W_0,   du_0 = gamma/B u_0 K,   dv_i = leaky'(h_i) * du_i,
    dW_{i+1} += u_{i+1}^T dv_i,   du_{i+1} = dv_i W_{i+1}^T,   dw_{L-1} += sum_n dv_{L-2}
(leaky' is piecewise constant: its own derivative is zero, as in autograd's double backward).
"""

import struct

import torch
import torch.nn.functional as F
from torch import nn

from training.augment import BACKGROUND, SIDE, draw_shifts
from training.distributed import sum_over_ranks
from training.model import sample_labels, sample_latent
from training.reference_step import StepState

leaky_relu_backward = torch.ops.aten.leaky_relu_backward  # (grad, h, alpha, False): grad * leaky'(h)
tanh_backward = torch.ops.aten.tanh_backward  # (grad, y = tanh(x)): grad * (1 - y^2)


class Gradients:
    """One flat buffer holding the gradient of every parameter of `network`, each .grad a view of it:
    the step writes into the views, Adam reads them, DDP averages the buffer in one all-reduce."""

    def __init__(self, network: nn.Module):
        self.parameters = list(network.parameters())
        self.flat = torch.zeros(sum(p.numel() for p in self.parameters), device=self.parameters[0].device)
        self.views, offset = [], 0
        for p in self.parameters:
            self.views.append(self.flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()

    def attach(self) -> None:
        """Point every .grad at its view (an optimizer's zero_grad(set_to_none) may have dropped it)."""
        for p, view in zip(self.parameters, self.views, strict=True):
            if p.grad is not view:
                p.grad = view

    def average_over_ranks(self, world) -> None:
        if world.distributed:
            sum_over_ranks(self.flat, world).div_(world.size)


def kernel_rate(rate: float, device: torch.device) -> float:
    """The learning rate as the fused Adam kernel should get it as a Python float, so that the plain
    fast step and its CUDA graph (training/graphed_step.py) update the weights bit for bit alike.
    CUDA's kernel reads a tensor rate as float32 and widens it to double, but takes a float rate as
    the double it is: 6e-4 and float32(6e-4) differ by 1e-8 of the rate, enough to round a step size
    apart now and then, after which the two runs drift apart. So on CUDA the float is rounded to
    float32 first. The CPU's kernel reads a float64 tensor, the float's own value: nothing to do."""
    return struct.unpack("f", struct.pack("f", rate))[0] if device.type == "cuda" else rate


def adam_step(optimizer: torch.optim.Adam, lr: torch.Tensor | None = None) -> None:
    """optimizer.step() for a torch.optim.Adam with fused=True and one parameter group, straight
    through torch's fused kernel: the same two calls and the same bits as its step(), without its
    per-call grouping of tensors by device (a tenth of a millisecond a call here). `lr`, a 0-dim
    tensor holding the group's rate, is read by the kernel when it runs (a CUDA graph replays
    it), not when it is queued; without it, the group's rate as kernel_rate() gives it. Any other
    Adam goes through its own step()."""
    (group,) = optimizer.param_groups
    params, state = group["params"], optimizer.state
    # .get: torch releases before decoupled_weight_decay existed have no such key (it is False here)
    if not group["fused"] or group["amsgrad"] or group["maximize"] or group.get("decoupled_weight_decay") \
            or any(p not in state for p in params):
        optimizer.step()  # also creates the state on the first step
        return
    steps = [state[p]["step"] for p in params]
    torch._foreach_add_(steps, 1)
    torch._fused_adam_(params, [p.grad for p in params], [state[p]["exp_avg"] for p in params],
                       [state[p]["exp_avg_sq"] for p in params], [], steps, amsgrad=False,
                       lr=kernel_rate(group["lr"], params[0].device) if lr is None else lr,
                       beta1=group["betas"][0], beta2=group["betas"][1], weight_decay=group["weight_decay"],
                       eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)


# ---------------------------------------------------------------------------------------------
# the dense stacks by hand


def dense_layers(network: nn.Module) -> list[nn.Linear]:
    """The Linear layers of a training.model Generator or Discriminator, input to output."""
    return list(network.stack.layers)


def forward(layers: list[nn.Linear], x: torch.Tensor, alpha: float
            ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """x (N, fan_in) -> (inputs a_0..a_{L-1}, the same a_1..a_{L-1}, output h_{L-1} (N, fan_out)).
    The second list stands for the pre-activations h_i wherever leaky'(h_i) is needed: a_{i+1} =
    leaky(h_i) is positive exactly where h_i is (alpha >= 0), so the activation runs in place."""
    inputs = [x]
    for layer in layers[:-1]:
        inputs.append(F.leaky_relu_(F.linear(inputs[-1], layer.weight, layer.bias), alpha))  # addmm, as nn.Linear
    return inputs, inputs[1:], F.linear(inputs[-1], layers[-1].weight, layers[-1].bias)


def backward(layers: list[nn.Linear], inputs: list[torch.Tensor], hidden: list[torch.Tensor],
             delta: torch.Tensor, alpha: float, grads: "Gradients | None", input_grad: bool
             ) -> torch.Tensor | None:
    """Back from delta = d loss / d output (N, fan_out). With `grads`, writes each layer's weight and
    bias gradient into it (layer i's are views 2i and 2i + 1). Returns d loss / d x when input_grad."""
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        if grads is not None:
            torch.mm(delta.t(), inputs[index], out=grads.views[2 * index])  # (out, N) @ (N, in)
            torch.sum(delta, 0, out=grads.views[2 * index + 1])
        if index == 0 and not input_grad:
            return None
        delta = delta @ layer.weight  # (N, out) @ (out, in)
        if index > 0:
            delta = leaky_relu_backward(delta, hidden[index - 1], alpha, False)
    return delta


def r1_penalty_and_gradient(layers: list[nn.Linear], hidden: list[torch.Tensor], batch: int, alpha: float,
                            gamma: float, grads: Gradients, image_width: int) -> torch.Tensor:
    """R1 on the first `batch` rows of `hidden` (the real images); adds the weight gradients of
    0.5 gamma R1 into grads (the module docstring has the chain) and returns R1 itself. The gradient
    is taken in the first `image_width` inputs of D, the image: a conditional D's label columns
    after them are not part of it (W_0 below is their first image_width columns)."""
    top = layers[-1].weight  # w_{L-1} (1, width_{L-2})
    if not hidden:  # no hidden layer: d logit / d x = w_0 for every image, R1 = |w_0|^2
        grads.views[0][:, :image_width].add_(top[:, :image_width], alpha=gamma)
        return top[:, :image_width].pow(2).sum()
    hidden = [h[:batch] for h in hidden]  # h_0..h_{L-2} of the real images: (B, width_i), views
    chain = []  # u_{L-2}, ..., u_0, each (B, width_i)
    v = top  # v_{L-2}, broadcast over the batch
    for index in range(len(hidden) - 1, -1, -1):
        chain.append(leaky_relu_backward(v.expand_as(hidden[index]), hidden[index], alpha, False))
        if index:
            v = chain[-1] @ layers[index].weight  # (B, width_i) @ (width_i, width_{i-1})
    u0, w0 = chain[-1], layers[0].weight[:, :image_width]
    gram = w0 @ w0.t()  # K (width_0, width_0)
    u0_gram = u0 @ gram  # (B, width_0)
    penalty = (u0 * u0_gram).sum(dim=1).mean()
    grads.views[0][:, :image_width].addmm_(u0.t() @ u0, w0, alpha=gamma / batch)  # dW_0 += gamma/B (u_0^T u_0) W_0
    du = u0_gram.mul_(gamma / batch)  # du_0 (B, width_0)
    for index in range(len(hidden)):  # bottom to top
        dv = leaky_relu_backward(du, hidden[index], alpha, False)  # dv_i
        if index + 1 < len(hidden):
            grads.views[2 * (index + 1)].addmm_(chain[-2 - index].t(), dv)  # dW_{i+1} += u_{i+1}^T dv_i
            du = dv @ layers[index + 1].weight.t()  # du_{i+1} (B, width_{i+1})
        else:
            grads.views[2 * index + 2].add_(dv.sum(dim=0, keepdim=True))  # dw_{L-1} += sum_n dv_{L-2}
    return penalty


# ---------------------------------------------------------------------------------------------
# the shifts of training/augment.py as windows of a padded buffer


class Shifter:
    """translate()'s shifts without its (N, 784) int64 index. A batch sits in the middle of a padded
    buffer (N, W, W), W = 28 + 2 max_shift, whose border holds the fill and is never written; image
    n's output is the 28 x 28 window whose top-left corner is its (dy, dx) + max_shift. Every window
    of the flattened buffer is one strided view (window p starts at float p), so one index_select of
    a window per image copies the batch out, 2.5x faster here than translate's index and gather."""

    def __init__(self, max_shift: int, device: torch.device):
        self.max_shift, self.device = max_shift, device
        self.width = SIDE + 2 * max_shift
        self.window = (SIDE - 1) * self.width + SIDE  # a crop's span in the flattened padded image
        self.buffers: dict[tuple[int, float], torch.Tensor] = {}
        self.starts: dict[int, torch.Tensor] = {}  # rows -> (rows,) offset of each image's buffer

    def padded(self, rows: int, fill: float) -> torch.Tensor:
        """A (rows, W, W) buffer with `fill` on its border, the same one each call."""
        key = (rows, fill)
        if key not in self.buffers:
            self.buffers[key] = torch.full((rows, self.width, self.width), fill, device=self.device)
        return self.buffers[key]

    def middle(self, padded: torch.Tensor) -> torch.Tensor:
        """The (rows, 28, 28) view of a padded buffer where the images go."""
        s = self.max_shift
        return padded[:, s:s + SIDE, s:s + SIDE]

    def corners(self, shifts: torch.Tensor) -> torch.Tensor:
        """(2, N) shifts from draw_shifts -> (N,) offsets of each window in its flattened padded image."""
        return shifts[0] * self.width + shifts[1]

    def windows(self, padded: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
        """(rows, 784): the window of each image at its corner, of a contiguous padded buffer (or a
        slice of one from padded())."""
        rows = padded.shape[0]
        # every window of the buffer as a view: window p is flat[p + r W + c], r, c < 28
        windows = padded.view(-1).as_strided((padded.numel() - self.window + 1, SIDE, SIDE), (1, self.width, 1))
        if rows not in self.starts:
            self.starts[rows] = torch.arange(rows, device=self.device) * self.width * self.width
        return torch.index_select(windows, 0, self.starts[rows] + corners).view(rows, SIDE * SIDE)

    def backward(self, grad: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
        """The gradient of windows() with respect to the images in the middle: the opposite move with
        zero fill (pixel (i, j) went to (i - dy, j - dx)), so the window at 2 max_shift (W + 1) - corner."""
        padded = self.padded(grad.shape[0], 0.0)
        self.middle(padded).copy_(grad.view(-1, SIDE, SIDE))
        return self.windows(padded, 2 * self.max_shift * (self.width + 1) - corners)


# ---------------------------------------------------------------------------------------------
# the step


class FastStep:
    """The step when the config's train_step is "fast": call it as step(t, real, labels), with the
    step's number, a real batch (B, 784) and its labels (B,) for a conditional model. inputs() takes
    every random number of the step (the latents, a conditional model's fake labels, then the three
    shifts, in the order ReferenceStep draws them); compute() is the rest, free of randomness and
    host syncs. A conditional model's one-hot labels are concatenated to z and to D's images (2B, 784
    + classes). Under torchrun it averages the gradients itself, one all-reduce per network."""

    def __init__(self, state: StepState):
        self.state = state
        self.generator_layers = dense_layers(state.generator)
        self.discriminator_layers = dense_layers(state.discriminator)
        self.generator_grads = Gradients(state.generator)
        self.classes = state.classes
        self.discriminator_grads = Gradients(state.discriminator)
        self.shifter = Shifter(state.augment_shift, state.device) if state.augment_shift else None
        self._targets: torch.Tensor | None = None
        self.ema_pairs: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        if state.generator_ema is not None:
            self.ema_pairs = (list(state.generator_ema.parameters()), list(state.generator.parameters()))
        # None: the learning rates and the moving average's weight are Python floats, read as each
        # op is queued. training/graphed_step.py sets 0-dim tensors instead ("lr_d", "lr_g", "ema"),
        # which it refreshes before each step, so that a captured graph sees the current values.
        self.scalars: dict[str, torch.Tensor] | None = None

    def __call__(self, step: int, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.compute(step, *self.inputs(step, real, labels))

    def inputs(self, step: int, real: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """compute()'s arguments after the step number: (real, z (B, latent_dim)), then for a
        conditional model the one-hot labels (2B, classes) of the reals and of the fakes, then with
        augment_shift the window corners (B,) of the reals, of the fakes D scores and of the fakes G
        is scored on."""
        state, batch = self.state, real.shape[0]
        noise = state.noise.at(step)
        z = sample_latent(batch, state.model, noise, state.device)
        draws: tuple[torch.Tensor, ...] = (real, z)
        if self.classes:
            assert labels is not None, "a conditional model's step needs the real images' labels"
            fake_labels = sample_labels(batch, self.classes, noise, state.device)
            draws += (F.one_hot(torch.cat([labels, fake_labels]), self.classes).to(real.dtype),)
        if self.shifter is None:
            return draws
        shifter = self.shifter
        return (*draws,
                *(shifter.corners(draw_shifts(batch, shifter.max_shift, noise, state.device)) for _ in range(3)))

    @torch.no_grad()
    def compute(self, step: int, real: torch.Tensor, z: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        """One D update then one G update; returns [loss_d, loss_g, mean D(x), mean D(G(z))] (4,).
        `step` sets the moving average's weight in its warm-up, unless `scalars` holds the weight."""
        state = self.state
        alpha, batch, gamma = state.model.leaky_relu_alpha, real.shape[0], state.r1_gamma
        gl, dl, shifter = self.generator_layers, self.discriminator_layers, self.shifter
        onehot, corners = (rest[0], rest[1:]) if self.classes else (None, rest)  # onehot (2B, classes)

        def labeled(x: torch.Tensor, rows: slice) -> torch.Tensor:  # [x ; one-hot] for a conditional network
            return x if onehot is None else torch.cat([x, onehot[rows]], dim=1)

        g_inputs, g_hidden, g_logits = forward(gl, labeled(z, slice(batch, None)), alpha)
        fake = g_logits.tanh_()  # (B, 784); the logits are not needed again
        if shifter:  # the reals, then G's images, into the middle of one padded buffer
            padded = shifter.padded(2 * batch, BACKGROUND)  # (2B, W, W)
            middle = shifter.middle(padded)  # (2B, 28, 28), a view
            middle[:batch].copy_(real.view(batch, SIDE, SIDE))
            middle[batch:].copy_(fake.view(batch, SIDE, SIDE))  # (tanh with out= the strided middle: 1.4x slower)

        # Update D: maximize log D(x) + log(1 - D(G(z))), real targets smoothed to 1 - label_smoothing;
        # the reals and the fakes (each shifted) through D in one (2B, 784) pass.
        x = shifter.windows(padded, torch.cat(corners[:2])) if shifter else torch.cat([real, fake])
        d_inputs, d_hidden, logits = forward(dl, labeled(x, slice(None)), alpha)  # logits (2B, 1)
        prob = torch.sigmoid(logits)
        self.discriminator_grads.attach()
        target = self.targets(batch)  # (3B, 1): 1 - label_smoothing, 0 for D's update; 1 for G's
        d_logits = (prob - target[:2 * batch]).div_(batch)  # d loss_d / d logits (2B, 1)
        backward(dl, d_inputs, d_hidden, d_logits, alpha, self.discriminator_grads, False)
        penalty = None
        if gamma:
            penalty = r1_penalty_and_gradient(dl, d_hidden, batch, alpha, gamma, self.discriminator_grads,
                                              real.shape[1])
        self.discriminator_grads.average_over_ranks(state.world)
        adam_step(state.optimizer_d, None if self.scalars is None else self.scalars["lr_d"])

        # Update G: maximize log D(G(z)) (non-saturating), through the updated D, which is not trained here.
        x = shifter.windows(padded[batch:], corners[2]) if shifter else fake
        d_inputs, d_hidden, logits_g = forward(dl, labeled(x, slice(batch, None)), alpha)
        d_fake = backward(dl, d_inputs, d_hidden, torch.sigmoid(logits_g).sub_(1.0).div_(batch), alpha, None, True)
        d_fake = d_fake[:, :real.shape[1]]  # d loss / d image (B, 784); a conditional D's label columns dropped
        if shifter:
            d_fake = shifter.backward(d_fake, corners[2])
        self.generator_grads.attach()
        backward(gl, g_inputs, g_hidden, tanh_backward(d_fake, fake), alpha, self.generator_grads, False)
        self.generator_grads.average_over_ranks(state.world)
        adam_step(state.optimizer_g, None if self.scalars is None else self.scalars["lr_g"])
        if self.ema_pairs is not None:  # Update the moving average: ema <- decay ema + (1 - decay) G
            averages, currents = self.ema_pairs
            if self.scalars is None:
                torch._foreach_lerp_(averages, currents, 1.0 - state.ema_decay_at(step))
            else:  # the same lerp with the weight in a tensor (a view of it per parameter)
                torch._foreach_lerp_(averages, currents, [self.scalars["ema"].expand_as(a) for a in averages])
        # The losses, for the log only: binary cross-entropy on logits, softplus(l) - t l, a mean per
        # batch: of D(x) and D(G(z)) in D's update, of D(G(z)) in G's; then D's outputs.
        logits = torch.cat([logits, logits_g])  # (3B, 1)
        bce = F.softplus(logits).sub_(target * logits).view(3, batch).mean(dim=1)
        stats = torch.cat([bce, prob.view(2, batch).mean(dim=1)])  # (5,)
        out = stats[1:]  # [loss_d without the real term and R1, loss_g, mean D(x), mean D(G(z))]
        out[0] += stats[0] if penalty is None else stats[0] + 0.5 * gamma * penalty
        return out

    def targets(self, batch: int) -> torch.Tensor:
        if self._targets is None or len(self._targets) != 3 * batch:
            self._targets = torch.zeros(3 * batch, 1, device=self.state.device)
            self._targets[:batch] = 1.0 - self.state.label_smoothing
            self._targets[2 * batch:] = 1.0
        return self._targets
