"""Request bodies built from the official SDK's own ``TypedDict`` types, valid and invalid.

Independent of ``scripts/generate_sdk_params.py`` on purpose: the generator translates the
types into msgspec structs, and this module reads the same types another way, as examples
(one per union member and per field, the rest minimal), so the test that feeds one to the
other checks the translation instead of repeating it.

Runs under any SDK release (it imports nothing from batchyard): ``python tests/sdk_examples.py``
prints the valid examples of the installed SDK as JSON lines, which is how the test drives
the oldest supported SDK, installed apart from the latest.

What the types cannot say is left out: JSON ``null`` for an optional key (taken by
batchyard, as by the API), string patterns, number ranges, non-empty text.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import importlib
import json
import os
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import typing_extensions as te

#: (root name, module, TypedDict name): create and count_tokens, stable and beta.
ROOTS = [
    ("MessageCreate", "anthropic.types.message_create_params", "MessageCreateParamsBase"),
    (
        "MessageCountTokens",
        "anthropic.types.message_count_tokens_params",
        "MessageCountTokensParams",
    ),
    ("BetaMessageCreate", "anthropic.types.beta.message_create_params", "MessageCreateParamsBase"),
    (
        "BetaMessageCountTokens",
        "anthropic.types.beta.message_count_tokens_params",
        "MessageCountTokensParams",
    ),
]
#: A root key that is a header, not a body key (the beta SDK sends it as ``anthropic-beta``).
HEADER_KEYS = {"betas"}
#: How deep examples vary; below it, only the smallest example of each type is built.
MAX_DEPTH = 7
#: Variants kept per type: a bound against a runaway walk, not a sample.
MAX_VARIANTS = 100_000


#: The origins of the SDK's sequence types (``Iterable``, ``Sequence``, ``List``).
_LISTS = {list, collections.abc.Iterable, collections.abc.Sequence}


@dataclass(frozen=True)
class Invalid:
    """A body the SDK's types refuse, and why (for the failure message)."""

    body: Any
    why: str
    #: The key removed, when the variant is a missing required key of ``typed_dict``.
    missing: str | None = None
    typed_dict: Any = None
    #: Whether the object sat where only its own type fits (not one member of a union).
    standalone: bool = False


def _unwrap(hint: Any) -> Any:
    while te.get_origin(hint) in (te.Required, te.NotRequired, te.Annotated):
        hint = te.get_args(hint)[0]
    return hint


def _required(typed_dict: Any, hint: Any) -> bool:
    while te.get_origin(hint) is te.Annotated:
        hint = te.get_args(hint)[0]
    if te.get_origin(hint) is te.Required:
        return True
    if te.get_origin(hint) is te.NotRequired:
        return False
    return bool(getattr(typed_dict, "__total__", True))


def _members(hint: Any) -> list[Any]:
    hint = _unwrap(hint)
    if te.get_origin(hint) in (typing.Union, types.UnionType):
        return [m for arg in te.get_args(hint) for m in _members(arg)]
    return [hint]


def _is_json_param(hint: Any) -> bool:
    """False for what has no JSON form of its own: file objects, paths, and the SDK's
    response models (pydantic), which a param union admits to echo a reply back."""
    origin = te.get_origin(hint) or hint
    if not isinstance(origin, type):
        return True
    if issubclass(origin, os.PathLike) or origin is typing.IO or issubclass(origin, typing.IO):
        return False
    return not hasattr(origin, "model_fields")


class Examples:
    """Valid and invalid JSON values of an SDK type, cached per type."""

    def __init__(self) -> None:
        self._valid: dict[tuple[Any, int], list[Any]] = {}

    def valid(self, hint: Any, depth: int = 0) -> list[Any]:
        hint = _unwrap(hint)
        key = (hint, min(depth, MAX_DEPTH + 1))
        if key not in self._valid:
            self._valid[key] = [(None,)]  # a recursive type's own smallest form, below
            self._valid[key] = self._build(hint, depth)[:MAX_VARIANTS]
        return self._valid[key]

    def smallest(self, hint: Any) -> Any:
        return self.valid(hint, MAX_DEPTH + 1)[0]

    def _build(self, hint: Any, depth: int) -> list[Any]:
        origin = te.get_origin(hint)
        if hint is str:
            return ["x"]
        if hint is bool:
            return [True]
        if hint is int:
            return [1]
        if hint is float:
            return [0.5]
        if hint is type(None):
            return [None]
        if hint is object or hint is Any:
            return [{"any": [1, "two"]}]
        if origin in (te.Literal, typing.Literal):
            return list(te.get_args(hint))
        if origin in _LISTS or getattr(origin, "__name__", "") == "SequenceNotStr":
            (item,) = te.get_args(hint)
            return [[value] for value in self.valid(item, depth + 1)]
        if origin is dict:
            return [{"key": value} for value in self.valid(te.get_args(hint)[1], depth + 1)[:1]]
        if origin in (typing.Union, types.UnionType):
            values: list[Any] = []
            for member in _members(hint):
                if _is_json_param(member) and member is not type(None):
                    values.extend(self.valid(member, depth))
            return values or [None]
        if te.is_typeddict(hint):
            return self._objects(hint, depth)
        raise TypeError(f"no example for {hint!r}")

    def _objects(self, typed_dict: Any, depth: int) -> list[Any]:
        hints = te.get_type_hints(typed_dict, include_extras=True)
        base = {
            key: self.smallest(hint)
            for key, hint in hints.items()
            if _required(typed_dict, hint) and key not in HEADER_KEYS
        }
        variants = [base]
        if depth > MAX_DEPTH:
            return variants
        for key, hint in hints.items():
            if key in HEADER_KEYS:
                continue
            for value in self.valid(hint, depth + 1):
                if base.get(key, ...) != value:
                    variants.append({**base, key: value})
        return variants

    def invalid(self, hint: Any, depth: int = 0, *, standalone: bool = True) -> Iterator[Invalid]:
        """Values the type refuses: an unknown key in an object, a required key left out,
        a tag no member has; each placed in the smallest valid body around it."""
        hint = _unwrap(hint)
        origin = te.get_origin(hint)
        if depth > MAX_DEPTH:
            return
        if origin in (typing.Union, types.UnionType):
            members = [m for m in _members(hint) if _is_json_param(m)]
            if any(te.get_origin(m) is dict for m in members):
                return  # an open dict admits every object
            objects = [m for m in members if te.is_typeddict(m)]
            for member in members:
                if te.is_typeddict(member) or te.get_origin(member) is not None:
                    alone = len(objects) < 2  # ``X | None`` leaves X on its own
                    yield from self.invalid(member, depth, standalone=alone)
            return
        if origin in _LISTS or getattr(origin, "__name__", "") == "SequenceNotStr":
            item = te.get_args(hint)[0]
            for bad in self.invalid(item, depth + 1):
                yield dataclasses.replace(bad, body=[bad.body])
            return
        if not te.is_typeddict(hint):
            return
        hints = te.get_type_hints(hint, include_extras=True)
        base = {k: self.smallest(h) for k, h in hints.items() if _required(hint, h)}
        base = {k: v for k, v in base.items() if k not in HEADER_KEYS}
        name = hint.__name__
        yield Invalid({**base, "zz_unknown": 1}, f"unknown key in {name}")
        for key in base:
            rest = {k: v for k, v in base.items() if k != key}
            yield Invalid(rest, f"{name} without {key}", key, hint, standalone)
        for key, field_hint in hints.items():
            if key in HEADER_KEYS:
                continue
            for bad in self.invalid(field_hint, depth + 1):
                yield dataclasses.replace(bad, body={**base, key: bad.body})
        type_hint = hints.get("type")
        if type_hint is not None and _required(hint, type_hint):
            yield Invalid({**base, "type": "zz_no_such_type"}, f"{name} with an unknown type")


def roots() -> Iterator[tuple[str, Any]]:
    for name, module, typed_dict in ROOTS:
        yield name, getattr(importlib.import_module(module), typed_dict)


def main() -> int:
    """Print ``{"root": …, "body": …}`` lines: the valid examples of the installed SDK."""
    examples = Examples()
    for name, typed_dict in roots():
        for body in examples.valid(typed_dict):
            sys.stdout.write(json.dumps({"root": name, "body": body}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
