"""One optimizer step of K packed runs (ant.models.packed): per-run loss, clip, LR, Adam(W) and projection.

The K runs share a shape, a schedule and every optimizer setting but the peak LR; each has its own data, seed and
LR. Everything that mixes numbers across a run's parameters is done per run, so run k's trajectory is the one it
would follow alone (up to float reduction order):
  loss      sum over runs of each run's mean token loss: run k's gradient is its own mean-loss gradient
  clip      each run's global gradient norm over all its parameters, its own clip coefficient
  Adam(W)   elementwise already; the LR (and AdamW's decoupled decay) is a [K] tensor broadcast per parameter
  project   the nGPT/anGPT row norms are per row, hence per run (Constraint.param_dim skips the run dim)
A NaN or inf in one run stays in that run's slices (no op mixes runs), so a diverged member can be dropped while
the others go on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ant.config import OptimConfig
from ant.models.base import Transformer
from ant.models.constraints import project_
from ant.optimizers import ADAM_FAMILY
from ant.schedules import schedule_factor
from ant.train.compiled import compile_once, constraints, with_rope_tables


def run_losses(model: Transformer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[K] mean next-token loss of each run; x, y [K, B, T]."""
    logits = model(x)
    K = x.shape[0]
    tok = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1), reduction="none")
    return tok.view(K, -1).mean(1)


def _per_run(v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """A [K] vector shaped to broadcast over a packed parameter (run dim first)."""
    return v.view(-1, *[1] * (p.ndim - 1))


class PackedAdam:
    """torch.optim.Adam / AdamW (single-tensor form, the CPU default) with one LR per run.

    Groups: the single model's param_groups (decayed matrices, the rest), found by name, so the weight decay
    lands where it would in each run trained alone."""

    def __init__(self, model: Transformer, single: Transformer, optim: OptimConfig, peak_lrs: list[float]):
        if optim.optimizer not in ADAM_FAMILY:
            raise ValueError("PackedAdam needs a resolved OptimConfig (adam or adamw)")
        names = {id(p): n for n, p in single.named_parameters()}
        packed = dict(model.named_parameters())
        self.groups = [
            ([packed[names[id(p)]] for p in g["params"]], float(g["weight_decay"]))
            for g in single.param_groups(optim.weight_decay)
        ]
        self.optim = optim
        self.peak = torch.tensor(peak_lrs, dtype=torch.float32)
        self.peak_lrs = list(peak_lrs)  # the same, as the configs give them: the logged LR (`lr`)
        self.factor = 1.0  # of the last step
        self.step_count = 0
        self.state = {id(p): (torch.zeros_like(p), torch.zeros_like(p)) for g, _ in self.groups for p in g}

    def step(self, factor: float, constraints: list, compiled: bool = False) -> torch.Tensor:
        """Clip each run's gradient, one Adam step at LR peak_k * factor for run k, then the weight constraints
        `constraints` ((param, stored dim, mode), as Constraint.apply_); returns the [K] pre-clip gradient norms.
        `compiled`: through torch.compile (one graph per shape and process, ant.train.compiled); the step count's
        bias corrections are then 0-dim tensors, so that a new step changes a value, not a guard."""
        o = self.optim
        self.step_count += 1
        self.factor = factor
        bc1, bc2 = 1 - o.beta1**self.step_count, 1 - o.beta2**self.step_count
        params, wds = zip(*[(p, wd) for group, wd in self.groups for p in group if p.grad is not None])
        moments = [self.state[id(p)] for p in params]
        args = (list(params), [p.grad for p in params], moments, list(wds), self.peak * factor)
        rest = (o.grad_clip, o.beta1, o.beta2, o.eps, o.optimizer == "adamw", constraints)
        if compiled:
            return compile_once("packed_update", update)(*args, torch.tensor(bc1), torch.tensor(bc2), *rest)
        return update(*args, bc1, bc2, *rest)

    def lr(self, k: int) -> float:
        """Run k's LR in the last step (its peak x the schedule factor the step was given)."""
        return self.peak_lrs[k] * self.factor

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    def params(self) -> list[torch.nn.Parameter]:
        return [p for params, _ in self.groups for p in params]

    def run_state(self, k: int) -> dict:
        """Run k's share of the state: its moments in parameter order (copies), the step count and its peak LR."""
        moments = [(m[k].clone(), v[k].clone()) for m, v in (self.state[id(p)] for p in self.params())]
        return {"step": self.step_count, "peak_lr": float(self.peak[k]), "moments": moments}

    def load_run_state(self, k: int, state: dict) -> None:
        self.step_count = int(state["step"])  # the same in every run of a pack: they step together
        self.peak[k] = state["peak_lr"]
        for p, (m_k, v_k) in zip(self.params(), state["moments"]):
            m, v = self.state[id(p)]
            m[k].copy_(m_k)
            v[k].copy_(v_k)


def select_runs(model: Transformer, opt: PackedAdam, keep: list[int]) -> tuple[Transformer, PackedAdam]:
    """The pack without the runs not in `keep` (a diverged run leaves): parameters and Adam state sliced."""
    idx = torch.tensor(keep)
    old = {id(p): n for n, p in model.named_parameters()}
    moments = {old[i]: (m[idx], v[idx]) for i, (m, v) in opt.state.items()}
    for name, p in list(model.named_parameters()):
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        setattr(owner, attr, torch.nn.Parameter(p.detach()[idx].clone()))
    model.runs = len(keep)
    new = dict(model.named_parameters())
    opt.groups = [([new[old[id(p)]] for p in params], wd) for params, wd in opt.groups]
    opt.state = {id(new[n]): mv for n, mv in moments.items()}
    opt.peak = opt.peak[idx].clone()
    opt.peak_lrs = [opt.peak_lrs[k] for k in keep]
    return model, opt


@torch.no_grad()
def update(params, grads, moments, wds, lr, bc1, bc2, clip, beta1, beta2, eps, adamw, constraints) -> torch.Tensor:
    """The optimizer step of K packed runs, as tensors (no optimizer object, so torch.compile sees only inputs):
    each run's gradient clipped to global norm `clip` (as clip_grad_norm_ per run; 0: norms only), Adam(W) at
    the [K] LRs `lr` (bias corrections bc1, bc2: floats eager, 0-dim tensors compiled), then the weight
    constraints. Returns the [K] pre-clip gradient norms. Every step is elementwise or per run: no op mixes runs."""
    per_tensor = torch.stack([torch.linalg.vector_norm(g.float().flatten(1), dim=1) for g in grads])  # [n, K]
    total = torch.linalg.vector_norm(per_tensor, dim=0)
    if clip:
        coef = (clip / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(_per_run(coef, g).to(g.dtype))
    for p, g, (m, v), wd in zip(params, grads, moments, wds):
        lr_p = _per_run(lr, p)
        if wd and adamw:
            p.mul_(1 - lr_p * wd)
        elif wd:
            g = g.add(p, alpha=wd)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (v.sqrt() / bc2**0.5).add_(eps)
        p.sub_(m / denom * (lr_p / bc1))
    for p, dim, mode in constraints:  # Constraint.apply_, per row, hence per run
        project_(p, dim, mode)
    return total


def train_step(
    model: Transformer, opt: PackedAdam, x: torch.Tensor, y: torch.Tensor, step: int, steps: int,
    compiled: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """One optimizer step of all K runs (ant.train.module.LMModule.training_step's order: LR, forward/backward,
    clip, Adam, projection). Returns ([K] losses, [K] pre-clip gradient norms), detached. `compiled`: the loss
    and the update through torch.compile, one graph each per shape and process (ant.train.compiled.compile_once;
    use_compile_packed decides)."""
    losses = (with_rope_tables(compile_once("packed_loss", run_losses)) if compiled else run_losses)(model, x, y)
    losses.sum().backward()
    norms = opt.step(schedule_factor(step, opt.optim, steps), constraints(model), compiled)
    opt.zero_grad()
    return losses.detach(), norms
