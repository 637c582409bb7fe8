"""The model ladder: the paper's Table F.1 rungs plus tiny rungs that train on a 2-core CPU.

Paper rungs use head dim 64, d_MLP = 4 d_model (u and z each 4 d_model wide) and the padded GPT-NeoX vocabulary
50304. Tiny rungs keep the same shape rules but use head dim 16 so that a 2-core CPU finishes a run in seconds to
a minute; their vocabulary comes from the run's tokenizer. Every rung is a `SizeSpec`; `build_model` accepts any
of its fields as an override (e.g. `n_layers=3`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ant.errors import ConfigError

PAPER_VOCAB = 50304


@dataclass(frozen=True)
class SizeSpec:
    name: str
    d_model: int
    n_layers: int
    n_heads: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


# name -> spec. Order matters: it is the ladder from small to large.
SIZES: dict[str, SizeSpec] = {
    s.name: s
    for s in [
        # CPU rungs (head dim 16). Roughly 0.1M-2M parameters with a 2k-4k BPE vocabulary; with the byte
        # tokenizer (vocab 256, as the CPU study uses) tiny0-tiny4 are 16.6k, 49k, 136k, 295k, 935k parameters.
        # One rung below and one above the head-dim-8 family (2026-12-08, part v2-isoflop-scan-sizes): 12.5k and
        # 230k parameters with bytes, where the LR-scanned IsoFLOP profiles left that family's sizes
        # (docs/study.md, "Sizes that bracket the optimum").
        SizeSpec("d16L1", 16, 1, 2),
        SizeSpec("tiny0", 16, 2, 1),
        # The head-dim-8 twins of tiny0-tiny2 (same width and depth, so the same N; 2026-12-07): the v2 ladder
        # alternates head dim 16 (tiny*) and 8 (d*L*), and the C3 losses put every head-dim-8 rung ~0.08 above the
        # head-dim-16 rungs' line, the size of the IsoFLOP profiles' lack of fit. Part v2-headdim trains these
        # twins to test that the offset is the head dim's (docs/study.md, "The head-dim offset").
        SizeSpec("tiny0h8", 16, 2, 2),
        # Intermediate rungs for the study v2 (issue 24: >= 5 sizes over >= a decade of N, ~1.3-2x apart): 31k,
        # 98k and 180k parameters with bytes (d56L3 closes the decade from tiny0 at ~40 % of tiny3's cost a run).
        # Head dim 8: d 24, 40 and 56 have no head dim 16, and half the head dim (RoPE's rotated dims) must stay
        # even when the head count doubles (tests/models/test_counts.py).
        SizeSpec("d24L2", 24, 2, 3),
        SizeSpec("tiny1", 32, 2, 2),
        SizeSpec("tiny1h8", 32, 2, 4),
        SizeSpec("d40L3", 40, 3, 5),
        SizeSpec("tiny2", 48, 3, 3),
        SizeSpec("tiny2h8", 48, 3, 6),
        SizeSpec("d56L3", 56, 3, 7),
        SizeSpec("d64L3", 64, 3, 8),
        SizeSpec("tiny3", 64, 4, 4),
        SizeSpec("tiny4", 96, 6, 6),
        SizeSpec("tiny5", 128, 8, 8),
        # Paper Table F.1 (head dim 64).
        SizeSpec("32M", 256, 6, 4),
        SizeSpec("62M", 384, 10, 6),
        SizeSpec("125M", 512, 18, 8),
        SizeSpec("250M", 768, 18, 12),
        SizeSpec("0.5B", 1024, 24, 16),
        SizeSpec("1B", 1280, 36, 20),
    ]
}

PAPER_SIZES = ("32M", "62M", "125M", "250M", "0.5B", "1B")


def get_size(name: str) -> SizeSpec:
    if name not in SIZES:
        raise ConfigError("model.size", f"unknown size {name!r}", list(SIZES))
    return SIZES[name]
