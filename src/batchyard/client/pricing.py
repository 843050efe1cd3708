"""Where ``batchyard run`` gets a model's price, to show what a batch costs before and after.

In order: the ``--price-input`` / ``--price-output`` flags, then what the server reports
(batchyard's ``pricing`` extension on ``GET /v1/models/{id}``, which decodes straight into
:class:`Price`), then :data:`ANTHROPIC_PRICES` by model id, since Anthropic's own API reports no
prices. A model none of them knows has no price, and the cost is shown as unknown rather than
guessed.

Only input and output tokens are priced. Prompt-cache writes and reads and the long-context
premium some older models charge past 200K input tokens are not, so a cost is an estimate
(a low one where those apply).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Final

import msgspec
from msgspec import Meta


class Price(msgspec.Struct, frozen=True):
    """Standard prices in USD per million tokens; a batch costs ``batch_discount`` of them.

    The fields are those of the ``pricing`` object batchyard reports, so
    ``msgspec.convert(info["pricing"], Price)`` reads a server's answer (and refuses a
    negative price or a discount outside [0, 1]).
    """

    input_per_mtok: Annotated[float, Meta(ge=0)]
    output_per_mtok: Annotated[float, Meta(ge=0)]
    #: The fraction of the standard price a batch request costs (not the fraction saved);
    #: Anthropic's is 0.5 for every model.
    batch_discount: Annotated[float, Meta(ge=0, le=1)] = 0.5

    def cost(self, input_tokens: int, output_tokens: int, *, batch: bool) -> float:
        """USD for these tokens, at the batch price or the standard one."""
        standard = (
            input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok
        ) / 1_000_000
        return standard * self.batch_discount if batch else standard


# Anthropic's published standard prices, read on 2026-12-02 from
# https://platform.claude.com/docs/en/about-claude/pricing and the model pages under
# https://platform.claude.com/docs/en/models/ (batch: 50% off input and output, every model).
# The copy of the pricing page found predates Claude Fable 5.2 (released 2026-11-09): its
# price is the list price two independent reports quoted at release ($8 / $40, batch half).
# Left out, so shown as unknown unless given with --price-input/--price-output:
# - Claude Haiku 5.5 (claude-haiku-5-5): priced by each request's prompt length ($0.10 / $0.50
#   up to 100K tokens, $0.50 / $2.50 above), which one price per model cannot state;
# - Claude Mythos 5.2: no published price found.
_FABLE_MYTHOS = Price(10.0, 50.0)
_OPUS_4_5_TO_5 = Price(5.0, 25.0)
_OPUS_3_TO_4_1 = Price(15.0, 75.0)
_SONNET_5 = Price(2.0, 10.0)
_SONNET_3_5_TO_4_6 = Price(3.0, 15.0)

#: Standard prices by model id prefix (see :func:`price_for` for how an id matches).
ANTHROPIC_PRICES: Final[Mapping[str, Price]] = {
    "claude-fable-5-2": Price(8.0, 40.0),
    "claude-fable-5-1": _FABLE_MYTHOS,
    "claude-mythos-5-1": _FABLE_MYTHOS,
    "claude-fable-5": _FABLE_MYTHOS,
    "claude-mythos-5": _FABLE_MYTHOS,
    "claude-opus-5-5": Price(4.0, 20.0),
    "claude-opus-5": _OPUS_4_5_TO_5,
    "claude-opus-4-8": _OPUS_4_5_TO_5,
    "claude-opus-4-7": _OPUS_4_5_TO_5,
    "claude-opus-4-6": _OPUS_4_5_TO_5,
    "claude-opus-4-5": _OPUS_4_5_TO_5,
    "claude-opus-4-1": _OPUS_3_TO_4_1,
    "claude-opus-4-0": _OPUS_3_TO_4_1,
    "claude-opus-4": _OPUS_3_TO_4_1,
    "claude-3-opus": _OPUS_3_TO_4_1,
    "claude-sonnet-5-5": _SONNET_5,
    "claude-sonnet-5": _SONNET_5,
    "claude-sonnet-4-6": _SONNET_3_5_TO_4_6,
    "claude-sonnet-4-5": _SONNET_3_5_TO_4_6,
    "claude-sonnet-4-0": _SONNET_3_5_TO_4_6,
    "claude-sonnet-4": _SONNET_3_5_TO_4_6,
    "claude-3-7-sonnet": _SONNET_3_5_TO_4_6,
    "claude-3-5-sonnet": _SONNET_3_5_TO_4_6,
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
    "claude-3-haiku": Price(0.25, 1.25),
}

_LONGEST_FIRST: Final = sorted(ANTHROPIC_PRICES.items(), key=lambda item: -len(item[0]))

#: What may follow a listed prefix: nothing, or a separator and then anything but a version
#: number (``-20250929``, ``-latest``, ``@20251001`` but not ``-9``), so that a version not
#: listed (``claude-opus-4-9``) is unknown rather than priced as ``claude-opus-4``.
_SNAPSHOT_SUFFIX: Final = re.compile(r"(?:[-@](?!\d{1,2}(?:\D|$)).*)?$")


def listed_price(model: str) -> Price | None:
    """Anthropic's price for ``model``: the longest listed prefix it starts with, followed by
    nothing or by a snapshot suffix (a date, ``latest``), so dated ids
    (``claude-sonnet-4-5-20250929``), aliases (``claude-sonnet-4-5``) and old-style ids
    (``claude-3-5-haiku-latest``) all match."""
    for prefix, price in _LONGEST_FIRST:
        if model.startswith(prefix) and _SNAPSHOT_SUFFIX.match(model, len(prefix)):
            return price
    return None


def price_for(
    model: str,
    reported: Price | None,
    *,
    input_override: float | None = None,
    output_override: float | None = None,
) -> Price | None:
    """The price to estimate ``model``'s cost with, or ``None`` where it is unknown.

    Each override replaces its own field of the price the server ``reported`` or, where it
    reported none, of :func:`listed_price`'s. The server comes before the table because it
    knows what it charges: a batchyard model reports 0 when it runs on the operator's own
    hardware even if it shares a Claude model's name. With neither, both overrides are
    needed (a cost with one side unknown is unknown), and a batch costs Anthropic's half.
    """
    base = reported if reported is not None else listed_price(model)
    if base is None:
        if input_override is None or output_override is None:
            return None
        return Price(input_override, output_override)
    return Price(
        base.input_per_mtok if input_override is None else input_override,
        base.output_per_mtok if output_override is None else output_override,
        base.batch_discount,
    )


__all__ = ["ANTHROPIC_PRICES", "Price", "listed_price", "price_for"]
