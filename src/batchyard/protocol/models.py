"""``GET /v1/models`` objects."""

from __future__ import annotations

import msgspec


class ModelInfo(msgspec.Struct, tag_field="type", tag="model"):
    id: str
    display_name: str
    created_at: str


class ModelPage(msgspec.Struct):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None
