"""``GET /v1/models`` objects, one shape for both SDKs.

Anthropic's SDKs and OpenAI's both call ``GET /v1/models`` and both read their fields
leniently (unknown keys are kept, not refused), so each object carries both APIs' fields:
Anthropic's (``type``, ``display_name``, ``created_at`` as RFC 3339, limits) and OpenAI's
(``object``, ``created`` as unix seconds, ``owned_by``), and the page both ``has_more`` /
``first_id`` / ``last_id`` and ``object: "list"``. The same answer parses as either SDK's
type, so the route need not guess who is asking. That leniency also carries batchyard's own
extension, ``pricing`` (:class:`ModelPricing`): both SDKs keep it as an extra attribute.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class CapabilitySupport(msgspec.Struct):
    supported: bool


class ThinkingTypes(msgspec.Struct):
    adaptive: CapabilitySupport
    between_tools: CapabilitySupport
    disabled: CapabilitySupport
    enabled: CapabilitySupport


class ThinkingCapability(msgspec.Struct):
    supported: bool
    types: ThinkingTypes


class EffortCapability(msgspec.Struct):
    supported: bool
    low: CapabilitySupport
    medium: CapabilitySupport
    high: CapabilitySupport
    max: CapabilitySupport


class ContextManagementCapability(msgspec.Struct):
    supported: bool


class ServerToolsCapability(msgspec.Struct):
    supported: bool
    code_execution: CapabilitySupport
    web_search: CapabilitySupport


class ModelCapabilities(msgspec.Struct):
    """Every key the SDK's ``ModelCapabilities`` requires ("keys are always present")."""

    batch: CapabilitySupport
    citations: CapabilitySupport
    code_execution: CapabilitySupport
    context_management: ContextManagementCapability
    effort: EffortCapability
    image_input: CapabilitySupport
    pdf_input: CapabilitySupport
    server_tools: ServerToolsCapability
    structured_outputs: CapabilitySupport
    thinking: ThinkingCapability


class ModelPricing(msgspec.Struct):
    """What this server's operator says the model costs, in USD per million tokens at the
    standard price; a batch result costs ``batch_discount`` of it (0.5: half, as at Anthropic).
    A batchyard extension: Anthropic's API reports no prices, so ``batchyard run`` reads these
    where a server sends them and falls back to its own table of Anthropic's prices where not.
    """

    input_per_mtok: float
    output_per_mtok: float
    batch_discount: float


class ModelInfo(msgspec.Struct, tag_field="type", tag="model"):
    """SDK 2.x validates ``lifecycle`` as required; the optional fields are sent as null."""

    id: str
    display_name: str
    created_at: str
    max_tokens: int | None
    lifecycle: Literal["active", "deprecated", "retired"] = "active"
    max_input_tokens: int | None = None
    #: A relay's is its upstream's, passed on verbatim; ``None`` where unknown (a relay
    #: whose upstream could not be asked).
    capabilities: ModelCapabilities | msgspec.Raw | None = None
    deprecated_at: str | None = None
    retires_at: str | None = None
    line: str | None = None
    #: batchyard's extension; ``None`` where this server does not know the price (a model
    #: answered by another server with no price configured here).
    pricing: ModelPricing | None = None
    #: OpenAI's ``Model`` fields (``created`` is ``created_at`` in unix seconds).
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "batchyard"


class UpstreamModel(msgspec.Struct):
    """What a relay reads from its upstream's ``GET /v1/models/{id}``: the limits, and the
    ``capabilities`` object verbatim (``null`` when absent), so keys newer than
    :class:`ModelCapabilities` reach our clients too."""

    max_input_tokens: int | None = None
    max_tokens: int | None = None
    capabilities: msgspec.Raw = msgspec.Raw(b"null")


class ModelPage(msgspec.Struct):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None
    #: OpenAI's list page.
    object: Literal["list"] = "list"
