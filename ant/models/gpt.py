"""GPT and GPT+ (paper-notes §3, Table 1 "GPT+" column).

gpt: pre-norm transformer as the anGPT paper's baseline, without QK-norm:
    h_a = rms(h) * gamma_a ; q, k, v = W_qkv h_a ; RoPE on half of each head's dims ;
    h   = h + W_p softmax(q k^T / sqrt(d_k)) v
    h_m = rms(h) * gamma_m ; u, z = W_uz h_m ; h = h + W_d (u * SiLU(z))        (u, z each 4 d wide)
    logits = W_h (rms(h) * gamma_h)                                            (final RMSNorm, untied W_e / W_h)
No biases, no dropout.

gptplus (the paper's GPT+): gpt + exact L2 QK-norm, q <- norm(q), k <- norm(k), and a learnable logit scale g:
softmax(q k^T * g). g is one scalar per layer (Table 1 writes it as a scalar; the paper gives no shape or init).
Open question, our reading: g starts at sqrt(d_k) (`qk_scale_init`), the scale at which attention on unit vectors
equals standard attention on vectors whose entries have unit variance (||q|| = ||k|| = sqrt(d_k), q.k / sqrt(d_k));
it is also nGPT's effective softmax scale at init (s_qk = 1, scale sqrt(d_k)).

Initialisation (not given by the paper): nanoGPT's, N(0, 0.02) for every matrix and the embedding, the two residual
output projections (W_p, W_d) scaled down by 1/sqrt(2 L); norm gains one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ant.models.args import GPTConfig
from ant.models.base import Block, Transformer
from ant.models.layers import RMSNorm, apply_rotary, attend, l2norm, split_heads, swiglu


class GPTBlock(Block):
    def __init__(self, cfg: GPTConfig):
        super().__init__(cfg)
        self.norm_a = RMSNorm(cfg.d_model)
        self.norm_m = RMSNorm(cfg.d_model)
        self.qk_norm = cfg.qk_norm
        self.softmax_scale = 1.0 if cfg.qk_norm else 1.0 / math.sqrt(cfg.head_dim)
        if cfg.qk_norm:
            self.g = nn.Parameter(torch.tensor(float(cfg.qk_scale_init)))

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        q, k, v = split_heads(self.qkv(self.norm_a(h)), self.n_heads)
        q, k = apply_rotary(q, rope), apply_rotary(k, rope)
        if self.qk_norm:  # the logit scale g multiplies q: one multiply instead of a [T, T] one
            q, k = l2norm(q) * self.g.to(q.dtype), l2norm(k)
        h = h + self.proj(attend(q, k, v, self.softmax_scale))
        return h + self.down(swiglu(self.fc(self.norm_m(h))))


class GPT(Transformer):
    config_cls = GPTConfig

    def make_head_params(self) -> None:
        self.norm_h = RMSNorm(self.cfg.d_model)

    def make_block(self, layer: int) -> Block:
        return GPTBlock(self.cfg)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm_h(h))

    @torch.no_grad()
    def init_weights(self) -> None:
        std = self.cfg.init_std
        out_std = std / math.sqrt(2 * self.cfg.n_layers)
        nn.init.normal_(self.wte.weight, std=std)
        nn.init.normal_(self.lm_head.weight, std=std)
        for b in self.blocks:
            for m in (b.qkv, b.fc):
                nn.init.normal_(m.weight, std=std)
            for m in (b.proj, b.down):
                nn.init.normal_(m.weight, std=out_std)
            b.norm_a.weight.fill_(1.0)
            b.norm_m.weight.fill_(1.0)
            if b.qk_norm:
                b.g.fill_(self.cfg.qk_scale_init)
        self.norm_h.weight.fill_(1.0)
