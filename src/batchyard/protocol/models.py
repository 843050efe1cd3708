"""``GET /v1/models`` objects."""

from __future__ import annotations

from typing import Literal

import msgspec


class ModelInfo(msgspec.Struct, tag_field="type", tag="model"):
    """SDK 2.x validates ``lifecycle`` as required; the optional fields are sent as null."""

    id: str
    display_name: str
    created_at: str
    max_tokens: int | None
    lifecycle: Literal["active", "deprecated", "retired"] = "active"
    max_input_tokens: int | None = None
    capabilities: dict[str, object] | None = None
    deprecated_at: str | None = None
    retires_at: str | None = None
    line: str | None = None


class ModelPage(msgspec.Struct):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None
