"""One optimizer step, top to bottom: the one training step that ant.train's LightningModule and `ant bench` both
take (so the benchmark times what training does, and cannot drift from it).

  1. the LR of this step from the schedule (a pure function of the step, ant.optimizers.set_lr)
  2. forward + fp32 cross-entropy + backward per micro-batch, each loss scaled by 1/k so the gradients add up to
     the batch mean; with `noise`, each micro-batch's own gradient norm (ant.train.noise_scale)
  3. clip to optim.grad_clip, keeping the pre-clip global norm for the metrics
  4. optimizer step, zero_grad, then model.project_weights(): the weight constraint of nGPT/anGPT (a no-op for
     GPT/GPT+), on the module itself, so compile cannot reorder or skip it
It returns device tensors (no host sync). No Lightning here: the module passes its own backward (precision and
DDP aware) and gradient-sync context; the bench takes the defaults.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ant.config import OptimConfig
from ant.optimizers import set_lr


@dataclass
class StepOut:
    loss: torch.Tensor  # mean token loss over the micro-batches (this process's)
    grad_norm: torch.Tensor | None  # pre-clip global gradient norm (None when neither clipping nor asked)
    micro_sq: torch.Tensor | None = None  # with `noise`: mean over micro-batches of |g_micro|²


def train_step(
    model: nn.Module,
    optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optim: OptimConfig,
    step: int,
    steps: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    micro_batches: int = 1,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    sync: Callable[[bool], contextlib.AbstractContextManager] = lambda last: contextlib.nullcontext(),
    noise: bool = False,
    want_norm: bool = False,
    fused_norm: Callable[[], torch.Tensor | None] | None = None,
) -> StepOut:
    """The 0-based optimizer step `step` of a run of `steps` steps on the batch (x, y).

    `optimizer`: a torch optimizer or Lightning's wrapper of one (stepped through the wrapper, which counts steps);
    `loss_fn(x, y)`: forward + fp32 loss (autocast inside it, if any); `sync(last)`: the context of each backward
    (last: gradients must be all-reduced after this one); `want_norm`: compute the norm even without clipping;
    `fused_norm`: the optimizer's step clips, updates and projects in one compiled function (ant.train.compiled)
    and this returns the pre-clip norm it computed."""
    set_lr(getattr(optimizer, "optimizer", optimizer), step, optim, steps)  # a LightningOptimizer wraps one
    k = micro_batches
    losses, micro_sq, before = [], [], None
    for j, (xm, ym) in enumerate(zip(x.chunk(k), y.chunk(k))):
        loss = loss_fn(xm, ym)
        # several devices: one gradient all-reduce a step, after the last micro-batch (after each one with the
        # noise scale, which measures every micro-batch's gradient: then W micro-batches, one per rank)
        with sync(noise or j == k - 1):
            backward(loss / k)
        losses.append(loss.detach())
        if noise:  # after micro-batch j the gradients hold (g_1 + ... + g_j) / k: g_j is k x the increment
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            own = torch._foreach_sub(grads, before) if before is not None else grads
            micro_sq.append(_sq_norm(own) * k**2)
            if len(micro_sq) < k and before is None:  # copies only: the training itself is unchanged
                before = [g.detach().clone() for g in grads]
            elif len(micro_sq) < k:
                torch._foreach_copy_(before, grads)
    # clip_grad_norm_ returns the pre-clip norm for free; without clipping the norm costs a pass over all
    # gradients, so it is computed only when asked (the steps that log it, or every step for the noise scale).
    # The update runs outside any autocast (as Lightning's automatic optimization ran it).
    with torch.autocast(x.device.type, enabled=False):
        params = [p for p in model.parameters() if p.grad is not None]
        grad_norm, clip = None, optim.grad_clip
        if clip and fused_norm is None:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
        elif not clip and (noise or want_norm):
            norms = [torch.linalg.vector_norm(p.grad.float()) for p in params]
            grad_norm = torch.linalg.vector_norm(torch.stack(norms))
        optimizer.step()  # fused: clip, step and projection
        if fused_norm is not None and clip:
            grad_norm = fused_norm()
        optimizer.zero_grad()
        if fused_norm is None:
            model.project_weights()
    loss = losses[0] if k == 1 else torch.stack(losses).mean()
    return StepOut(loss, grad_norm, torch.stack(micro_sq).mean() if noise else None)


def _sq_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Squared global L2 norm of a list of tensors, in fp32."""
    return torch.stack([n.float() for n in torch._foreach_norm(tensors)]).square().sum()
