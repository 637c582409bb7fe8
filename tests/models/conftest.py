"""Shared fixtures: real English text as byte tokens (ids < 256), so the norm tests see realistic token statistics
without depending on ant.data."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

GPL = Path("/usr/share/common-licenses/GPL-3")
VOCAB = 256  # byte ids


def _real_text() -> bytes:
    if GPL.is_file():
        return GPL.read_bytes()
    import email  # fallback: a stdlib module's source, docstrings and comments are English prose

    return Path(email.__file__).with_name("message.py").read_bytes()


@pytest.fixture(scope="session")
def text_tokens() -> torch.Tensor:
    data = torch.tensor(list(_real_text()), dtype=torch.long)
    assert len(data) > 20_000 and int(data.max()) < VOCAB
    return data


@pytest.fixture(scope="session")
def real_batch(text_tokens):
    """batch(B, T, offset=0) -> LongTensor[B, T] of consecutive windows of real text."""

    def batch(B: int, T: int, offset: int = 0) -> torch.Tensor:
        starts = offset + torch.arange(B) * (len(text_tokens) - T - offset) // B
        return torch.stack([text_tokens[s : s + T] for s in starts.tolist()])

    return batch


def adam_steps(model, x: torch.Tensor, steps: int, lr: float = 0.05, project: bool = True) -> None:
    """`steps` Adam steps (a deliberately large LR) of next-token loss on x, projecting after each if asked."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if project:
            model.project_weights()


def row_norms(model, dims: dict[str, int]) -> dict[str, torch.Tensor]:
    """name -> norms of every 2-D parameter along the dim the docs state for its matrix."""
    return {n: p.detach().norm(dim=dims[n.split(".")[-2]]) for n, p in model.named_parameters() if p.ndim == 2}


def model_pair(arch: str, size: str = "tiny3", train_on: torch.Tensor | None = None, steps: int = 3, **switch):
    """(default model, model with `switch`) from the same initial weights; with `train_on`, both after `steps`
    Adam steps on it (for switches that act only through training)."""
    from ant.models import build_model

    torch.manual_seed(0)
    base = build_model(arch, size, vocab_size=VOCAB)
    variant = build_model(arch, size, vocab_size=VOCAB, **switch)
    variant.load_state_dict(copy.deepcopy(base.state_dict()))
    if train_on is not None:
        for m in (base, variant):
            adam_steps(m, train_on, steps=steps)
    return base, variant
