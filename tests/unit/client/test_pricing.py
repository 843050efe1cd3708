"""Prices for ``batchyard run``: flags over the server's ``pricing`` over Anthropic's list."""

from __future__ import annotations

import msgspec
import pytest

from batchyard.client.pricing import Price, listed_price, price_for
from batchyard.protocol.models import ModelPricing


def test_cost_is_per_million_tokens_and_a_batch_pays_its_discount() -> None:
    price = Price(input_per_mtok=3.0, output_per_mtok=15.0)
    assert price.cost(1_000_000, 200_000, batch=False) == 6.0
    assert price.cost(1_000_000, 200_000, batch=True) == 3.0
    assert Price(1.0, 5.0, batch_discount=0.25).cost(2_000_000, 0, batch=True) == 0.5
    assert price.cost(0, 0, batch=False) == 0.0


def test_the_servers_pricing_object_decodes_into_a_price() -> None:
    """The wire shape batchyard reports is read as it is; a nonsense price is refused."""
    wire = msgspec.json.encode(
        ModelPricing(input_per_mtok=1.5, output_per_mtok=7.5, batch_discount=0.5)
    )
    assert msgspec.json.decode(wire, type=Price) == Price(1.5, 7.5, 0.5)
    with pytest.raises(msgspec.ValidationError, match="input_per_mtok"):
        msgspec.convert({"input_per_mtok": -1, "output_per_mtok": 1, "batch_discount": 0.5}, Price)


@pytest.mark.parametrize(
    ("model", "standard"),
    [
        ("claude-opus-4-5-20251101", (5.0, 25.0)),
        ("claude-opus-4-5", (5.0, 25.0)),
        ("claude-opus-4-1-20250805", (15.0, 75.0)),
        ("claude-opus-4-20250514", (15.0, 75.0)),
        ("claude-opus-4-0", (15.0, 75.0)),
        ("claude-sonnet-4-5-20250929", (3.0, 15.0)),
        ("claude-sonnet-4-5", (3.0, 15.0)),
        ("claude-sonnet-4-0", (3.0, 15.0)),
        ("claude-3-7-sonnet-latest", (3.0, 15.0)),
        ("claude-haiku-4-5-20251001", (1.0, 5.0)),
        ("claude-haiku-4-5@20251001", (1.0, 5.0)),
        ("claude-3-5-haiku-latest", (0.8, 4.0)),
        ("claude-3-5-haiku-20241022", (0.8, 4.0)),
        ("claude-3-haiku-20240307", (0.25, 1.25)),
        ("claude-opus-5-5", (4.0, 20.0)),
        ("claude-sonnet-5", (2.0, 10.0)),
        ("claude-fable-5-2", (8.0, 40.0)),
        ("claude-fable-5-1", (10.0, 50.0)),
    ],
)
def test_anthropic_ids_match_by_prefix_dated_aliased_or_old_style(
    model: str, standard: tuple[float, float]
) -> None:
    price = listed_price(model)
    assert price is not None
    assert (price.input_per_mtok, price.output_per_mtok, price.batch_discount) == (*standard, 0.5)


@pytest.mark.parametrize(
    "model",
    [
        # A version not listed is not priced as an older one of its family (Opus 4.1 cost
        # three times what Opus 4.5 does).
        "claude-opus-4-9",
        "claude-mythos-5-2",
        # Priced by each prompt's length: one price per model cannot say.
        "claude-haiku-5-5",
        "claude-opus-4x",
        "smollm2-135m",
        "gpt-4o",
    ],
)
def test_a_model_not_listed_has_no_price(model: str) -> None:
    assert listed_price(model) is None
    assert price_for(model, None) is None


def test_the_servers_price_comes_before_the_list() -> None:
    """A batchyard model may share a Claude name yet run on the operator's own hardware."""
    free = Price(0.0, 0.0, 0.5)
    assert price_for("claude-haiku-4-5", free) == free
    assert price_for("claude-haiku-4-5", None) == Price(1.0, 5.0, 0.5)


def test_each_flag_overrides_its_own_side() -> None:
    reported = Price(2.0, 8.0, 0.4)
    assert price_for("sim", reported, input_override=1.0) == Price(1.0, 8.0, 0.4)
    assert price_for("claude-sonnet-4-5", None, output_override=10.0) == Price(3.0, 10.0, 0.5)
    both = price_for("claude-sonnet-4-5", reported, input_override=0.5, output_override=2.5)
    assert both == Price(0.5, 2.5, 0.4)


def test_an_unknown_model_needs_both_flags_and_then_pays_anthropics_batch_half() -> None:
    assert price_for("my-vllm-model", None, input_override=1.0) is None
    assert price_for("my-vllm-model", None, output_override=1.0) is None
    assert price_for("my-vllm-model", None, input_override=1.0, output_override=4.0) == Price(
        1.0, 4.0, 0.5
    )
