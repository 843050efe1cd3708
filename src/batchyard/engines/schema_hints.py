"""Bounds a schema states only in a description, read back as keywords.

The SDK's ``transform_schema`` (behind ``messages.parse``, LangChain's ``json_schema``
method, pydantic-ai's ``NativeOutput``, ``llm --schema``) moves the keywords Anthropic's
structured outputs do not enforce into the description, as ``{minimum: 1, maximum: 5}``,
for the model to follow; the client then validates the answer against its own model, bounds
included. Engines here follow those hints as a model would: the simulated engine builds
values inside them, the local engine's grammar enforces them. Either way the answer stays
valid against the schema as sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

#: ``{minimum: 1, maximum: 5}`` at the end of a description: what the SDK's
#: ``transform_schema`` (behind ``messages.parse``, LangChain's ``json_schema`` method,
#: pydantic-ai's ``NativeOutput``, ``llm --schema``) leaves of the keywords the API does not
#: enforce, for the model to follow.
_HINT = re.compile(r"\{(\w+: [^{},]+(?:, \w+: [^{},]+)*)\}\s*$")
_HINTED_COUNTS = frozenset({"minLength", "maxLength", "minItems", "maxItems"})
_HINTED_NUMBERS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)


def with_hints(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with the numeric keywords its description hints at (:data:`_HINT`) added.

    A model reads those hints and mostly follows them, so a pydantic model with bounds
    validates its answer; the simulated one follows them always. A hint is no constraint: one
    that does not read as a number, or names a keyword the schema already has, is left out.
    """
    description = schema.get("description")
    match = _HINT.search(description) if isinstance(description, str) else None
    if match is None:
        return schema
    hints: dict[str, float] = {}
    for pair in match.group(1).split(", "):
        key, _, text = pair.partition(": ")
        if key in schema or key not in _HINTED_COUNTS | _HINTED_NUMBERS:
            continue
        try:
            value = float(text)
        except ValueError:
            continue
        if key in _HINTED_COUNTS and value.is_integer() and value >= 0:
            hints[key] = int(value)
        elif key in _HINTED_NUMBERS and math.isfinite(value) and (key != "multipleOf" or value > 0):
            hints[key] = int(value) if value.is_integer() else value
    return {**schema, **hints} if hints else schema
