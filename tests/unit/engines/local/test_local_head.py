"""The output head's exact greedy shortcut, on random weights built to have near-ties."""

from __future__ import annotations

import pytest
import torch

from batchyard.engines.local.head import CANDIDATES, OutputHead


def weights_with_near_ties(
    twins: int = 1, rows: int = 48, vocab: int = 4096, width: int = 96
) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight matrix and hidden states whose best logits differ by less than bfloat16 can
    tell apart: a row's best token has ``twins`` whose weights differ in the last bits."""
    rng = torch.Generator().manual_seed(7)
    weight = torch.randn(vocab, width, generator=rng) * 0.1
    hidden = torch.randn(rows, width, generator=rng) * 3
    best = (hidden @ weight.T).argmax(dim=-1)
    for row, token in enumerate(best.tolist()):
        for twin in range(1, twins + 1):
            weight[(token + twin * 61 + row) % vocab] = weight[token] * (1 + 1e-5 * twin)
    return weight, hidden


def test_the_shortcut_finds_the_float32_argmax_even_at_near_ties() -> None:
    weight, hidden = weights_with_near_ties()
    exact = (hidden @ weight.T).argmax(dim=-1)
    rough = (hidden.bfloat16() @ weight.bfloat16().T).float().argmax(dim=-1)
    assert (rough != exact).any(), "the case must be one where bfloat16 alone gets it wrong"
    head = OutputHead(weight, approximate=torch.bfloat16)
    assert torch.equal(head.argmax(hidden), exact)


def test_rows_the_error_bound_cannot_settle_get_their_full_logits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More near-equal tokens than candidates: the bound cannot rule out the ones left out,
    so every row is settled by its full float32 logits."""
    weight, hidden = weights_with_near_ties(twins=CANDIDATES + 4, rows=4)
    head = OutputHead(weight, approximate=torch.bfloat16)
    full_rows: list[int] = []
    logits = head.logits

    def counted(rows: torch.Tensor) -> torch.Tensor:
        full_rows.append(rows.shape[0])
        return logits(rows)

    monkeypatch.setattr(head, "logits", counted)
    chosen = head.argmax(hidden)
    assert full_rows == [hidden.shape[0]]
    assert torch.equal(chosen, logits(hidden).argmax(dim=-1))


def test_without_a_shortcut_it_is_the_plain_projection() -> None:
    weight, hidden = weights_with_near_ties()
    head = OutputHead(weight, approximate=None)
    assert torch.equal(head.logits(hidden), hidden @ weight.T)
    assert torch.equal(head.argmax(hidden), (hidden @ weight.T).argmax(dim=-1))
