"""The LightningModule: any ant.models model + next-token cross-entropy, and one optimizer step read top to bottom.

`training_step` is one optimizer step (manual optimization; the loader yields whole batches):
  1. the LR of this step from the schedule (a pure function of the step, ant.train.optim)
  2. forward + fp32 cross-entropy + backward per micro-batch (train.micro_batch_size), each loss scaled by 1/k so
     the gradients add up to the batch mean; with train.noise_scale, each micro-batch's own gradient norm
  3. clip to optim.grad_clip, keeping the pre-clip global norm for the metrics
  4. optimizer step, then model.project_weights(): the weight constraint of nGPT/anGPT (a no-op for GPT/GPT+), on
     the module itself, so compile cannot reorder or skip it
It returns the step's numbers as device tensors (no host sync); the callbacks read them from `outputs`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import lightning as L
import numpy as np
import torch
from torch import nn

from ant.config import RunConfig
from ant.train import compiled, distributed
from ant.train.compiled import token_loss
from ant.train.optim import build_optimizer, set_lr


@torch.no_grad()
def evaluate(model: nn.Module, batches, device, autocast=contextlib.nullcontext) -> float:
    """Mean token loss of `model` over `batches` (list of (x, y)), in eval mode; the run's val_loss column."""
    was_training = model.training
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    with autocast():
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            # model.forward, not model(...): evaluation stays eager when training compiled the model in place
            total += token_loss(model.forward, x, y).double() * y.numel()
            count += y.numel()
    model.train(was_training)
    return float(total / max(count, 1))


class LMModule(L.LightningModule):
    def __init__(self, cfg: RunConfig, model: nn.Module, forward: Callable | None = None):
        """`forward`: a function to train through instead of the model (the bench passes its compiled one)."""
        super().__init__()
        self.automatic_optimization = False
        self.cfg = cfg
        self.model = model
        self.train_forward = forward
        self.compiled = False  # CPU: the compiled loss and update of ant.train.compiled (configure_model)
        self._raw_opt, self._norm = None, None

    def configure_model(self) -> None:
        t = self.cfg.train
        if self.train_forward is not None:
            return
        if t.compile == "true":  # in place: the state dict keeps its `model.*` keys whatever the compile setting
            self.model.compile()
        elif t.device == "cpu" and distributed.world_size(t) == 1:  # the CPU study's rule (train.cpu_compile)
            self.compiled = compiled.use_compile(self.cfg)

    def configure_optimizers(self):
        opt = build_optimizer(self.model, self.cfg.optim, fused=self.cfg.train.device == "cuda")
        if self.compiled:
            # Lightning's opt.step() (it counts the steps) reaches this optimizer's step, which runs the compiled
            # update: clip + Adam + projection in one graph, shared by the runs of this process
            compiled.tensor_lr(opt)
            self._raw_opt, opt.step = opt, self._compiled_step
        return opt

    def _compiled_step(self, closure=None):
        if closure is not None:  # Lightning's (hooks only, under manual optimization): eager, outside the graph
            closure()
        groups = compiled.adam_groups(self._raw_opt)
        self._norm = compiled.update_fn()(groups, compiled.constraints(self.model), self.cfg.optim.grad_clip)

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        t, step = self.cfg.train, self.trainer.global_step
        opt = self.optimizers()
        if self.compiled:  # a resumed optimizer state brings its LRs back as floats
            compiled.tensor_lr(opt.optimizer)
        set_lr(opt.optimizer, step, self.cfg.optim, self.cfg.steps)
        x, y = batch
        k = distributed.micro_batches(t)  # of this rank's share of the global batch (ant.train.distributed)
        noise = t.noise_scale and k > 1
        losses, micro_sq, before = [], [], None
        # `is None`, not `or`: a compiled module's truth value calls len() on the model, which raises
        forward = self.model if self.train_forward is None else self.train_forward
        for j, (xm, ym) in enumerate(zip(x.chunk(k), y.chunk(k))):
            loss = compiled.loss_fn()(self.model, xm, ym) if self.compiled else token_loss(forward, xm, ym)
            # several devices: one gradient all-reduce a step, after the last micro-batch (after each one with the
            # noise scale, which measures every micro-batch's gradient: then W micro-batches, one per rank)
            with distributed.backward_sync(self, sync=noise or j == k - 1):
                self.manual_backward(loss / k)
            losses.append(loss.detach())
            if noise:  # after micro-batch j the gradients hold (g_1 + ... + g_j) / k: g_j is k x the increment
                grads = [p.grad for p in self.model.parameters() if p.grad is not None]
                own = torch._foreach_sub(grads, before) if before is not None else grads
                micro_sq.append(_sq_norm(own) * k**2)
                if len(micro_sq) < k and before is None:  # copies only: the training itself is unchanged
                    before = [g.detach().clone() for g in grads]
                elif len(micro_sq) < k:
                    torch._foreach_copy_(before, grads)
        # clip_grad_norm_ returns the pre-clip norm for free; without clipping the norm costs a pass over all
        # gradients, so it is computed only on the steps that log it (or every step for the noise scale).
        # The update runs outside the precision plugin's autocast (as Lightning's automatic optimization ran it).
        with torch.autocast(self.device.type, enabled=False):
            params = [p for p in self.model.parameters() if p.grad is not None]
            grad_norm, clip = None, self.cfg.optim.grad_clip
            if clip and not self.compiled:
                grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
            elif not clip and (noise or (step + 1) % t.log_interval == 0 or step + 1 == self.cfg.steps):
                norms = [torch.linalg.vector_norm(p.grad.float()) for p in params]
                grad_norm = torch.linalg.vector_norm(torch.stack(norms))
            opt.step()  # compiled: clip, step and projection (_compiled_step)
            if self.compiled and clip:
                grad_norm = self._norm
            opt.zero_grad()
            if not self.compiled:
                self.model.project_weights()
        loss = losses[0] if k == 1 else torch.stack(losses).mean()
        out = {"loss": distributed.global_mean(self, loss), "grad_norm": grad_norm}  # grads are synced: norm too
        if noise:  # [mean over micro-batches of |g_micro|², |G_batch|²]; |G_batch| is the pre-clip norm
            out["gns"] = torch.stack([torch.stack(micro_sq).mean(), grad_norm.float().square()])
        return out

    def evaluate(self, batches) -> float:
        autocast = self.trainer.precision_plugin.forward_context if self._trainer is not None else None
        return evaluate(self.model, batches, self.device, autocast or contextlib.nullcontext)

    # ------------------------------------------------------------------ exact resume
    # Lightning saves model, optimizer and loop state; the RNG states (torch, CUDA, python, numpy) are ours.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Plain tensors / lists only: Lightning may load checkpoints with torch.load(weights_only=True).
        np_state = np.random.get_state()
        checkpoint["ant_rng"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": _to_lists(random.getstate()),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        rng = checkpoint.get("ant_rng")
        if not rng:
            return
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        random.setstate(_to_tuples(rng["python"]))
        n = rng["numpy"]
        np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))


def _sq_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Squared global L2 norm of a list of tensors, in fp32."""
    return torch.stack([n.float() for n in torch._foreach_norm(tensors)]).square().sum()


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (list, tuple)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x
