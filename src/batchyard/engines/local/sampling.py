"""Choosing the next token for every row of a batch, each row with its own sampling params.

Rows at temperature 0 take the argmax of the raw logits, exactly as a batch of one would, so
greedy answers do not depend on what else shares the batch. Other rows follow the usual
order: temperature, then top-k, then top-p (nucleus) over what top-k kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Anthropic's default when a request leaves ``temperature`` out.
DEFAULT_TEMPERATURE = 1.0


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = 1.0
    #: 0 = no top-k cut.
    top_k: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1


class RowSampling:
    """Per-row sampling params as tensors that follow the rows through evictions and merges."""

    def __init__(self, params: list[SamplingParams], device: torch.device) -> None:
        self.greedy = torch.tensor([p.greedy for p in params], dtype=torch.bool, device=device)
        self.temperature = torch.tensor(
            [p.temperature or 1.0 for p in params], dtype=torch.float32, device=device
        )
        self.top_p = torch.tensor([p.top_p for p in params], dtype=torch.float32, device=device)
        self.top_k = torch.tensor([p.top_k for p in params], dtype=torch.long, device=device)
        self.all_greedy = all(p.greedy for p in params)

    def select(self, rows: torch.Tensor) -> None:
        self.greedy = self.greedy[rows]
        self.temperature = self.temperature[rows]
        self.top_p = self.top_p[rows]
        self.top_k = self.top_k[rows]
        self.all_greedy = bool(self.greedy.all())

    def extend(self, other: RowSampling) -> None:
        self.greedy = torch.cat([self.greedy, other.greedy])
        self.temperature = torch.cat([self.temperature, other.temperature])
        self.top_p = torch.cat([self.top_p, other.top_p])
        self.top_k = torch.cat([self.top_k, other.top_k])
        self.all_greedy = self.all_greedy and other.all_greedy


def next_tokens(
    logits: torch.Tensor, sampling: RowSampling, generator: torch.Generator
) -> torch.Tensor:
    """One token id per row of ``logits`` (``[rows, vocab]``)."""
    chosen = logits.argmax(dim=-1)
    if sampling.all_greedy:
        return chosen
    rows = (~sampling.greedy).nonzero().squeeze(1)
    scores = logits[rows].float() / sampling.temperature[rows, None]
    top_k, top_p = sampling.top_k[rows], sampling.top_p[rows]
    if bool((top_k > 0).any()) or bool((top_p < 1.0).any()):
        sorted_scores, order = scores.sort(dim=-1, descending=True)
        rank = torch.arange(scores.shape[-1], device=scores.device)
        outside_k = (top_k[:, None] > 0) & (rank[None, :] >= top_k[:, None])
        sorted_scores = sorted_scores.masked_fill(outside_k, float("-inf"))
        probs = sorted_scores.softmax(dim=-1)
        # Keep the smallest prefix whose mass reaches top_p; the first token always stays.
        outside_p = (probs.cumsum(dim=-1) - probs) >= top_p[:, None]
        outside_p[:, 0] = False
        sorted_scores = sorted_scores.masked_fill(outside_p, float("-inf"))
        picks = torch.multinomial(sorted_scores.softmax(dim=-1), 1, generator=generator)
        sampled = order.gather(1, picks).squeeze(1)
    else:
        sampled = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
    chosen[rows] = sampled
    return chosen
