"""The LightningModule: any ant.models model + next-token cross-entropy, and one optimizer step read top to bottom.

`training_step` is one optimizer step (manual optimization; the loader yields whole batches): ant.train.step's
`train_step` (LR, micro-batches (train.micro_batch_size), clip, step, projection, read top to bottom there, and
shared with `ant bench`), given this module's backward, DDP gradient sync and, on CPU, the compiled update.
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
from ant.optimizers import build_optimizer
from ant.train import compiled, distributed
from ant.train.compiled import token_loss
from ant.train.step import train_step


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
        k = distributed.micro_batches(t)  # of this rank's share of the global batch (ant.train.distributed)
        noise = t.noise_scale and k > 1
        # `is None`, not `or`: a compiled module's truth value calls len() on the model, which raises
        forward = self.model if self.train_forward is None else self.train_forward
        if self.compiled:
            loss_fn = lambda x, y: compiled.loss_fn()(self.model, x, y)  # noqa: E731
        else:
            loss_fn = lambda x, y: token_loss(forward, x, y)  # noqa: E731
        out = train_step(
            self.model, opt, *batch, optim=self.cfg.optim, step=step, steps=self.cfg.steps, loss_fn=loss_fn,
            micro_batches=k, backward=self.manual_backward, noise=noise,
            sync=lambda last: distributed.backward_sync(self, sync=last),
            want_norm=(step + 1) % t.log_interval == 0 or step + 1 == self.cfg.steps,
            fused_norm=(lambda: self._norm) if self.compiled else None,
        )  # fmt: skip
        res = {"loss": distributed.global_mean(self, out.loss), "grad_norm": out.grad_norm}  # grads synced: norm too
        if noise:  # [mean over micro-batches of |g_micro|², |G_batch|²]; |G_batch| is the pre-clip norm
            res["gns"] = torch.stack([out.micro_sq, out.grad_norm.float().square()])
        return res

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


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (list, tuple)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x
