"""The LightningModule: any ant.models model + next-token cross-entropy + the optimisation recipe.

Per optimizer step, in order:
  on_train_batch_start   set the LR of this step (pure function of the step, ant.train.optim)
  training_step          forward (compiled on GPU), fp32 cross-entropy; once per micro-batch when
                         train.micro_batch_size splits the batch (Lightning's accumulate_grad_batches)
  on_after_backward      with train.noise_scale: the squared norm of this micro-batch's own gradient
  configure_gradient_clipping   clip to optim.grad_clip and keep the pre-clip global norm for the metrics
  optimizer.step, then model.project_weights() (optimizer_step hook): the weight constraint of nGPT/anGPT
                         (a no-op for GPT/GPT+), before any callback sees the step
The projection runs on the uncompiled module, after the step, so compile cannot reorder or skip it.
"""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ant.config import RunConfig
from ant.train.optim import build_optimizer, set_lr


class LMModule(L.LightningModule):
    def __init__(self, cfg: RunConfig, model: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.model = model
        # The forward used for training; compiled in configure_model. Kept out of the module tree so that
        # checkpoints hold `model.*` keys only, whatever the compile setting.
        object.__setattr__(self, "_forward", model)
        self.last_loss: torch.Tensor | None = None  # mean loss of the last optimizer step (over its micro-batches)
        self.last_grad_norm: torch.Tensor | None = None
        self.micro_losses: list[torch.Tensor] = []
        # True in on_train_batch_end when this (micro-)batch completed an optimizer step; callbacks act only then.
        self.stepped = False
        # Gradient noise scale (train.noise_scale): per step, [mean over micro-batches of |g_micro|², |G_batch|²]
        # as a device tensor (read by TrainMonitor, no sync here); the squared norms of this step's micro-batches
        # so far; the accumulated gradients after the previous micro-batch (one buffer per parameter, reused).
        self.last_gns: torch.Tensor | None = None
        self._micro_sq: list[torch.Tensor] = []
        self._grads_before: list[torch.Tensor] | None = None

    def configure_model(self) -> None:
        if self.cfg.train.compile == "true" and self._forward is self.model:
            object.__setattr__(self, "_forward", torch.compile(self.model))

    # ------------------------------------------------------------------ loss
    def loss(self, x: torch.Tensor, y: torch.Tensor, forward=None) -> torch.Tensor:
        logits = (forward or self._forward)(x)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(x, y)
        self.micro_losses.append(loss.detach())
        return loss  # Lightning divides it by the number of micro-batches per step

    @torch.no_grad()
    def evaluate(self, batches) -> float:
        """Mean token loss over `batches` (list of (x, y)), in eval mode, under the trainer's precision."""
        was_training = self.model.training
        self.model.eval()
        total, count = torch.zeros((), dtype=torch.float64, device=self.device), 0
        ctx = self.trainer.precision_plugin.forward_context() if self._trainer is not None else _nullctx()
        with ctx:
            for x, y in batches:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                total += self.loss(x, y, forward=self.model).double() * y.numel()
                count += y.numel()
        self.model.train(was_training)
        return float(total / max(count, 1))

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        fused = self.cfg.train.device == "cuda"
        return build_optimizer(self.model, self.cfg.optim, fused=fused)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        self.stepped = False
        set_lr(self.optimizers().optimizer, self.trainer.global_step, self.cfg.optim, self.cfg.steps)

    def on_after_backward(self) -> None:
        # Lightning scales each micro-batch loss by 1/k and accumulates, so after micro-batch j the gradients hold
        # (g_1 + ... + g_j) / k: micro-batch j's own mean gradient is k x (difference to the previous micro-batch).
        # Only reads the gradients (copies go to separate buffers): training is bit-identical with or without it.
        k = self.trainer.accumulate_grad_batches
        if not self.cfg.train.noise_scale or k < 2:
            return
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        own = grads if not self._micro_sq else torch._foreach_sub(grads, self._grads_before)
        self._micro_sq.append(_sq_norm(own) * k**2)
        if len(self._micro_sq) < k:  # the last micro-batch needs no copy
            if self._grads_before is None or len(self._grads_before) != len(grads):
                self._grads_before = [g.detach().clone() for g in grads]
            else:
                torch._foreach_copy_(self._grads_before, grads)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        # clip_grad_norm_ returns the pre-clip norm for free; without clipping the norm is computed only on the
        # steps that log it (log_interval), as it costs a pass over all gradients, or on every step for the noise
        # scale. The accumulated gradient is the mean over the whole batch: |G_batch|² = (pre-clip norm)².
        params = [p for p in self.model.parameters() if p.grad is not None]
        if gradient_clip_val:
            self.last_grad_norm = torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
        elif (
            self._micro_sq
            or (self.trainer.global_step + 1) % self.cfg.train.log_interval == 0
            or self.trainer.global_step + 1 == self.cfg.steps
        ):
            self.last_grad_norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad.float()) for p in params])
            )
        else:
            self.last_grad_norm = None
        if self._micro_sq:
            micro, self._micro_sq = self._micro_sq, []
            self.last_gns = torch.stack([torch.stack(micro).mean(), self.last_grad_norm.float().square()])

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        # Here, not in on_train_batch_end: callbacks (the checkpoint) run before the module's batch-end hook,
        # and a checkpoint must hold the projected weights.
        self.model.project_weights()
        losses, self.micro_losses = self.micro_losses, []
        self.last_loss = losses[0] if len(losses) == 1 else torch.stack(losses).mean()
        self.stepped = True

    # ------------------------------------------------------------------ exact resume
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


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
