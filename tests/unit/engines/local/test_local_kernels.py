"""The CPU kernels the local engine swaps in compute what transformers' own layers compute."""

from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from batchyard.engines.local.attention import decode_attention
from batchyard.engines.local.packed import PackedLinear, pack_linear_layers


class GroupedModule(torch.nn.Module):
    """What SDPA's path reads off an attention module: 9 query heads over 3 key/value heads."""

    num_key_value_groups = 3
    is_causal = True


def attention_inputs(
    rows: int, tokens: int, columns: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(3)
    query = torch.randn(rows, 9, tokens, 64, generator=rng)
    key = torch.randn(rows, 3, columns, 64, generator=rng)
    value = torch.randn(rows, 3, columns, 64, generator=rng)
    mask = torch.ones(rows, 1, tokens, columns, dtype=torch.bool)
    for row in range(rows):
        mask[row, :, :, : row % 7] = False  # left padding of varying width
    return query, key, value, mask


@pytest.mark.parametrize("with_mask", [True, False])
def test_decode_attention_matches_sdpa_for_one_query_token(with_mask: bool) -> None:
    query, key, value, mask = attention_inputs(rows=12, tokens=1, columns=40)
    attention_mask = mask if with_mask else None
    ours, _ = decode_attention(GroupedModule(), query, key, value, attention_mask, scaling=0.125)
    theirs, _ = sdpa_attention_forward(
        GroupedModule(), query, key, value, attention_mask, scaling=0.125
    )
    assert ours.shape == theirs.shape == (12, 1, 9, 64)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_prefill_goes_to_sdpa_unchanged() -> None:
    query, key, value, mask = attention_inputs(rows=3, tokens=5, columns=5)
    ours, _ = decode_attention(GroupedModule(), query, key, value, mask, scaling=0.125)
    theirs, _ = sdpa_attention_forward(GroupedModule(), query, key, value, mask, scaling=0.125)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(64, 96), (2, 7, 96)])
def test_a_packed_linear_is_the_linear(bias: bool, shape: tuple[int, ...]) -> None:
    linear = torch.nn.Linear(96, 40, bias=bias)
    inputs = torch.randn(*shape)
    with torch.inference_mode():
        torch.testing.assert_close(PackedLinear(linear)(inputs), linear(inputs))


def test_packing_a_model_keeps_its_outputs() -> None:
    """Whether it packs depends on what is faster on this CPU; either way the output holds."""
    model = torch.nn.Sequential(torch.nn.Linear(96, 192), torch.nn.SiLU(), torch.nn.Linear(192, 96))
    inputs = torch.randn(64, 96)
    with torch.inference_mode():
        before = model(inputs)
        packed = pack_linear_layers(model)
        assert packed in (0, 2)
        assert sum(isinstance(layer, PackedLinear) for layer in model) == packed
        torch.testing.assert_close(model(inputs), before)
