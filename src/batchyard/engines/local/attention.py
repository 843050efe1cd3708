"""Attention for decode steps on CPU: one query token per row, grouped key/value heads.

PyTorch's CPU ``scaled_dot_product_attention`` runs its flash kernel even for a single query
token, and with grouped-query attention transformers first repeats every key/value head for
each query head it serves. For a 64-row decode step of SmolLM2 (9 query heads sharing 3
key/value heads, ~120 cached tokens) that took 0.89 ms per layer, 17% of the step; two
batched matmuls that fold the query heads of a group into one matrix take 0.42 ms, with the
same answers (64/64 greedy answers identical, BENCHMARKS.md). Prefill (several query tokens)
and anything this function does not handle (sliding windows, soft-capping, dropout) go to
transformers' SDPA path unchanged.

:func:`use_decode_attention` registers it with transformers' attention interface under
:data:`NAME` (with SDPA's mask format) and switches a model to it.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "batchyard_decode"


def use_decode_attention(model: Any) -> bool:
    """Switch ``model`` to :func:`decode_attention` when it runs transformers' SDPA path;
    ``False`` (and nothing changed) otherwise."""
    if model.config._attn_implementation != "sdpa":
        return False
    AttentionInterface.register(NAME, decode_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return True


def decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """``query`` ``[rows, heads, tokens, dim]``, ``key``/``value`` ``[rows, kv_heads, columns,
    dim]``, ``attention_mask`` boolean ``[rows, 1, tokens, columns]`` (True = attend) or
    ``None``; returns ``[rows, tokens, heads, dim]`` as transformers expects."""
    rows, heads, tokens, dim = query.shape
    kv_heads = key.shape[1]
    if (
        tokens != 1
        or dropout
        or kwargs.get("sliding_window")
        or kwargs.get("softcap")
        or heads % kv_heads
        or (attention_mask is not None and attention_mask.dtype != torch.bool)
    ):
        output: tuple[torch.Tensor, None] = sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
        return output
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(grouped, key.transpose(-1, -2))
    scores.mul_(dim**-0.5 if scaling is None else scaling)
    if attention_mask is not None:
        allowed = attention_mask.reshape(attention_mask.shape[0], 1, 1, -1)
        scores.masked_fill_(~allowed, float("-inf"))
    attended = torch.matmul(scores.softmax(dim=-1), value)
    return attended.reshape(rows, 1, heads, dim), None
