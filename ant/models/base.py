"""The skeleton every architecture shares: token embedding -> blocks -> head, RoPE, the parameter/FLOP counts,
optimizer groups, the weight-constraint hook and the diagnostics. An architecture file subclasses `Transformer`
(`make_block`, `head`, `init_weights`, `constraints`) and `Block` and holds only what differs.

Every block owns the same four bias-free matrices, so all architectures have L * 16 d^2 matmul parameters per
block plus an untied embedding and head (2 V d), as Table F.1 counts them:
    qkv  [3d, d]   fused W_q, W_k, W_v
    proj [d, d]    attention output projection W_p
    fc   [2f, d]   fused SwiGLU up-projection W_uz (u first, gate z second), f = mlp_mult * d = 4 d
    down [d, f]    MLP down-projection W_d
"""

from __future__ import annotations

import torch
from torch import nn

from ant.models.args import ModelArgs
from ant.models.constraints import Constraint
from ant.models.layers import Embedding, Linear, Rotary, Scale, linear


class Block(nn.Module):
    """The four matrices every block has; subclasses add their norms/scales and define forward(h, rope)."""

    def __init__(self, cfg: ModelArgs):
        super().__init__()
        d, f = cfg.d_model, cfg.d_mlp
        self.n_heads = cfg.n_heads
        self.qkv = Linear(d, 3 * d, bias=False)
        self.proj = Linear(d, d, bias=False)
        self.fc = Linear(d, 2 * f, bias=False)
        self.down = Linear(f, d, bias=False)

    def alphas(self) -> dict[str, torch.Tensor]:
        """Effective eigen learning rates (nGPT/anGPT); empty for blocks without them."""
        return {}


class Transformer(nn.Module):
    config_cls: type[ModelArgs] = ModelArgs  # each architecture's own config dataclass (ant.models.make_config)

    def __init__(self, cfg: ModelArgs):
        super().__init__()
        self.cfg = cfg
        self.wte = Embedding(cfg.vocab_size, cfg.d_model)
        self.rope = Rotary(cfg.head_dim, cfg.rope_fraction, cfg.rope_base)
        self.blocks = nn.ModuleList([self.make_block(i) for i in range(cfg.n_layers)])
        self.make_head_params()
        self.lm_head = Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if not self.lm_head.weight.is_meta:  # meta models only count parameters: skip the (slow) init
            self.init_weights()

    # ------------------------------------------------------------------ what an architecture defines
    def make_block(self, layer: int) -> Block:
        raise NotImplementedError

    def make_head_params(self) -> None:
        """Create what the head needs besides lm_head (final norm gain, logit scale)."""

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Final residual stream [B, T, d] -> logits [B, T, V]."""
        raise NotImplementedError

    def init_weights(self) -> None:
        raise NotImplementedError

    def constraints(self) -> list[Constraint]:
        """The matrices project_weights() constrains (none for gpt/gptplus)."""
        return []

    # ------------------------------------------------------------------ forward
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx [B, T] token ids -> fp32 logits [B, T, V] (the caller computes the loss)."""
        h = self.wte(idx)
        rope = self.rope(idx.shape[-1], idx.device)
        for block in self.blocks:
            h = block(h, rope)
        return self.head(h).float()

    @torch.no_grad()
    def residual_norms(self, idx: torch.Tensor) -> torch.Tensor:
        """Mean L2 norm (over batch and positions) of the residual stream entering each block and leaving the
        last one: a Tensor[n_layers + 1] (paper Fig. 1)."""
        h = self.wte(idx)
        rope = self.rope(idx.shape[-1], idx.device)
        norms = [h.float().norm(dim=-1).mean()]
        for block in self.blocks:
            h = block(h, rope)
            norms.append(h.float().norm(dim=-1).mean())
        return torch.stack(norms)

    # ------------------------------------------------------------------ training hooks
    @torch.no_grad()
    def project_weights(self) -> None:
        """The weight constraint; the training loop calls it after every optimizer step."""
        for c in self.constraints():
            c.apply_()

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Optimizer groups. Weight decay (the value the recipe passes: 0.1 for gpt/gptplus, 0 for ngpt/angpt)
        applies to the 2-D matmul weights only; never to the embedding (as OLMo: decaying rows that most steps
        do not touch only shrinks rare tokens), norm gains, logit scales or the nGPT/anGPT scale vectors."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (decay if p.ndim == 2 and not name.startswith("wte.") else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]

    # ------------------------------------------------------------------ counts and diagnostics
    def num_params(self) -> int:
        """All parameters, embedding and head included (as Table F.1 counts them)."""
        return sum(p.numel() for p in self.parameters())

    def matmul_params(self) -> int:
        """Parameters that take part in a matrix multiply: every block matrix and the head; not the embedding
        (a lookup) nor the vectors and scalars (elementwise)."""
        return sum(p.numel() for n, p in self.named_parameters() if p.ndim == 2 and not n.startswith("wte."))

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward) = 6 * N_matmul + 6 * L * d * T.

        6 N_matmul: 2 FLOPs per multiply-add forward, twice that backward, for every matmul weight (embedding
        lookup excluded, head included; see matmul_params). Attention scores and the weighted sum of values cost
        2 * 2 * T * d per token and layer forward, x3 with backward = 12 L d T, halved because the causal mask
        leaves half the score matrix to compute (as FlashAttention does): 6 L d T. Elementwise work (norms,
        scales, SiLU) is not counted, as in Kaplan/Chinchilla-style 6N accounting."""
        c = self.cfg
        return 6.0 * self.matmul_params() + 6.0 * c.n_layers * c.d_model * seq_len

    def alpha_stats(self) -> dict[str, float]:
        """Mean effective eigen learning rate per layer: {"alpha_a/<i>": .., "alpha_m/<i>": ..}; empty for
        gpt/gptplus."""
        out = {}
        with torch.no_grad():
            for i, block in enumerate(self.blocks):
                for key, a in block.alphas().items():
                    out[f"{key}/{i}"] = float(a.float().mean())
        return out

    @staticmethod
    def reset_scales(module: nn.Module) -> None:
        for m in module.modules():
            if isinstance(m, Scale):
                m.reset_parameters()


class ScaledLogitsTransformer(Transformer):
    """The nGPT/anGPT head: no final norm, logits = s_z * (W_h h) with a learnable per-token scale s_z (Table 1).

    Computed as (s_z[:, None] * W_h) h: the same logits and gradients, but the scale touches the [V, d] weight
    instead of the [B, T, V] logits (scaling the logits cost three extra passes over the largest activation:
    forward scale, its backward and the s_z reduction; ant bench, tests/bench/test_fusion.py)."""

    def make_head_params(self) -> None:
        c = self.cfg
        self.sz = Scale(c.vocab_size, c.sz_init, c.sz_scale)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        w = self.lm_head.weight  # [V, d]; s_z [V] scales its rows (a packed model: [K, V, d] and one s_z per run)
        return linear(h, w * self.sz().reshape(*w.shape[:-1], 1)).float()
