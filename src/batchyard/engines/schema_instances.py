"""A value valid against a JSON Schema, built from a ``random.Random``: what the simulated
engine answers for ``output_config.format`` and forced tool calls.

Deterministic for a given schema and generator state, and pure Python. The schema is first
checked whole (:func:`batchyard.engines.schema_rules.check_schema`): a keyword generation
cannot honour is refused by its path before anything is drawn, so a request is refused on
every attempt rather than on unlucky draws. Problems found while building (``minimum`` above
``maximum``, a required property whose schema is ``false``, a ``oneOf`` whose branches all
overlap) are :class:`ParamsError` naming the schema's path as well.

Covered: ``type`` (one or a list, as in ``["string", "null"]``), ``enum``, ``const``,
``anyOf`` / ``oneOf`` (one branch drawn; for ``oneOf`` one that no other branch accepts),
``allOf`` (merged into one schema), local ``$ref`` (``#/$defs/...``, ``#/definitions/...``,
recursive ones too), ``properties`` / ``required`` / ``additionalProperties`` /
``propertyNames`` / ``minProperties`` / ``maxProperties``, ``items`` / ``prefixItems`` /
``minItems`` / ``maxItems`` / ``uniqueItems``, ``minLength`` / ``maxLength`` / ``format``,
``minimum`` / ``maximum`` / ``exclusiveMinimum`` / ``exclusiveMaximum`` / ``multipleOf``.
Annotations (``title``, ``description``, ``default``, ``examples``, pydantic's
``discriminator``) change nothing, but for one thing a model would read in a description:
the bounds the SDK's ``transform_schema`` moves there (``{minimum: 1, maximum: 5}``), which
are followed as a model would (:func:`~batchyard.engines.schema_hints.with_hints`).

The values look like data rather than noise (words, round numbers, a few items, optional
properties about half the time), so a demo's output reads sensibly. Past a few levels of
nesting everything is kept minimal (no optional property, the fewest items, a branch that does
not recurse where one exists), so a recursive schema such as a tree ends.
"""

from __future__ import annotations

import datetime
import math
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from batchyard.engines import schema_rules
from batchyard.engines.schema_hints import with_hints
from batchyard.engines.schema_rules import Schema, array_parts, json_equal, matches
from batchyard.errors import ParamsError

WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
)
#: Nesting past which instances are kept minimal, and past which a schema is taken to have
#: no finite instance (a required property that recurses forever).
_MINIMAL_DEPTH = 4
_GIVE_UP_DEPTH = 48
#: ``$ref`` / ``allOf`` steps taken for one value before a cycle (``{"$ref": "#"}``) is refused.
_MAX_STEPS = 64
#: Redraws of one item before ``uniqueItems`` or ``oneOf`` gives up.
_REDRAWS = 24
#: Keywords that constrain nothing.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$anchor",
        "$comment",
        "$defs",
        "definitions",
        "deprecated",
        "readOnly",
        "writeOnly",
        "discriminator",
        "nullable",
        "contentEncoding",
        "contentMediaType",
    }
)
_EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def schema_instance(
    schema: Mapping[str, Any], rng: random.Random, where: str, model: str, *, lenient: bool = False
) -> Any:
    """A value valid against ``schema``; ``where`` is the schema's path in the request
    (``output_config.format.schema``, ``tools.0.input_schema``), named by every error, and
    ``model`` the model a keyword generation cannot honour is refused for.

    ``lenient`` lets such keywords through (and ignores them).
    """
    schema_rules.check_schema(schema, where, model, lenient=lenient)
    return _Builder(schema, rng, where).build(schema, where, 0)


class _Builder:
    def __init__(self, root: Mapping[str, Any], rng: random.Random, where: str) -> None:
        self._root = root
        self._rng = rng
        self._where = where

    def build(self, schema: Schema, path: str, depth: int) -> Any:
        if depth > _GIVE_UP_DEPTH:
            raise ParamsError(f"{path}: the schema has no finite instance (it nests forever)")
        schema, path = self._flatten(schema, path)
        if schema is True:
            return self._words(1, 3)
        if schema is False:
            raise ParamsError(f"{path}: no value satisfies this schema (false)")
        for union in ("oneOf", "anyOf"):
            if union in schema:
                return self._union(schema, union, path, depth)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._enum(schema, path)
        schema = with_hints(schema)
        kind = self._kind(schema, depth)
        if kind == "object":
            return self._object(schema, path, depth)
        if kind == "array":
            return self._array(schema, path, depth)
        if kind == "string":
            return self._string(schema, path)
        if kind == "integer":
            return self._integer(schema, path)
        if kind == "number":
            return self._number(schema, path)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return self._words(1, 3)  # no type and none implied: any value; a few words read best

    # ----------------------------------------------------------------- references, allOf

    def _flatten(self, schema: Schema, path: str) -> tuple[Schema, str]:
        """``schema`` with its ``$ref`` followed and its ``allOf`` merged in, until neither is
        left at the top."""
        for _ in range(_MAX_STEPS):
            if isinstance(schema, bool):
                return schema, path
            if "$ref" in schema:
                target, target_path = schema_rules.resolve(
                    self._root, schema["$ref"], self._where, f"{path}.$ref"
                )
                rest = _constraints(schema, drop=("$ref",))
                if rest:  # keywords beside the reference constrain the value too
                    schema = self._merge([target, rest], path)
                else:
                    schema, path = target, target_path
            elif "allOf" in schema:
                schema = self._merge(
                    [_constraints(schema, drop=("allOf",)), *schema["allOf"]], path
                )
            else:
                return schema, path
        raise ParamsError(f"{path}.$ref: the references go round in a cycle")

    def _merge(self, schemas: list[Schema], path: str) -> Schema:
        """One schema that asks what all of ``schemas`` ask (``allOf``)."""
        flat: list[Mapping[str, Any]] = []
        for schema in schemas:
            schema, _ = self._flatten(schema, path)
            if schema is False:
                return False
            if schema is not True:
                flat.append(schema)
        merged: dict[str, Any] = {}
        for schema in flat:
            for key, value in schema.items():
                if key in _ANNOTATIONS or key in _OBJECT_PARTS:
                    continue
                merged[key] = _combine(key, merged[key], value, path) if key in merged else value
        objects = [s for s in flat if _OBJECT_PARTS & s.keys()]
        if objects:
            merged.update(_merge_objects(objects))
        return merged

    # ----------------------------------------------------------------- choices

    def _union(self, schema: Mapping[str, Any], union: str, path: str, depth: int) -> Any:
        """One branch of ``anyOf`` / ``oneOf``, merged with the keywords beside it; for
        ``oneOf``, a value no other branch accepts."""
        branches: list[Schema] = schema[union]
        rest = _constraints(schema, drop=(union,))
        order = self._branch_order(branches, depth)
        for attempt in range(_REDRAWS):
            index = order[attempt % len(order)]
            branch = branches[index]
            here = f"{path}.{union}.{index}"
            target = self._merge([branch, rest], here) if rest else branch
            value = self.build(target, here, depth)
            if union == "anyOf":
                return value
            others = (b for i, b in enumerate(branches) if i != index)
            if not any(matches(value, other, self._root) for other in others):
                return value
        raise ParamsError(
            f"{path}.oneOf: cannot produce a value that exactly one branch accepts "
            "(the branches overlap)"
        )

    def _branch_order(self, branches: list[Schema], depth: int) -> list[int]:
        indexes = list(range(len(branches)))
        self._rng.shuffle(indexes)
        if depth >= _MINIMAL_DEPTH:  # the branches that end first: null, then no reference
            indexes.sort(key=lambda i: (not _is_null(branches[i]), _refers(branches[i])))
        return indexes

    def _enum(self, schema: Mapping[str, Any], path: str) -> Any:
        rest = _constraints(schema, drop=("enum",))
        allowed = [value for value in schema["enum"] if matches(value, rest, self._root)]
        if not allowed:
            raise ParamsError(f"{path}.enum: no value of the enum satisfies the schema")
        return self._rng.choice(allowed)

    def _kind(self, schema: Mapping[str, Any], depth: int) -> str:
        kind = schema.get("type")
        if isinstance(kind, str):
            return kind
        if isinstance(kind, list):
            if depth >= _MINIMAL_DEPTH and "null" in kind:
                return "null"
            return str(self._rng.choice(kind))
        for guess, keywords in _IMPLIED:
            if keywords & schema.keys():
                return guess
        return "any"

    # ----------------------------------------------------------------- kinds

    def _object(self, schema: Mapping[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties: Mapping[str, Schema] = schema.get("properties", {})
        required: list[str] = list(dict.fromkeys(schema.get("required", ())))
        extra: Schema = schema.get("additionalProperties", True)
        names: Schema = schema.get("propertyNames", True)
        fewest, most = schema.get("minProperties", 0), schema.get("maxProperties", math.inf)
        if len(required) > most:
            raise ParamsError(f"{path}.maxProperties: fewer than the required properties")
        for name in required:
            if not matches(name, names, self._root):
                raise ParamsError(f"{path}.required: {name!r} does not satisfy propertyNames")
        optional = [
            name
            for name in properties
            if name not in required
            and matches(name, names, self._root)
            and self._flatten(properties[name], path)[0] is not False  # allowed at all
        ]
        minimal = depth >= _MINIMAL_DEPTH
        chosen = list(required)
        for name in optional:
            wanted = len(chosen) < fewest or (not minimal and self._rng.random() < 0.5)
            if wanted and len(chosen) < most:
                chosen.append(name)
        extra_count = 0 if minimal or not isinstance(extra, Mapping) else self._rng.randint(1, 2)
        extra_count = min(max(extra_count, fewest - len(chosen)), most - len(chosen))
        keys = [
            *chosen,
            *self._extra_names(extra, names, set(chosen) | set(properties), extra_count, path),
        ]
        if len(keys) < fewest:
            raise ParamsError(f"{path}.minProperties: more properties than the schema allows")
        value: dict[str, Any] = {}
        for name in [k for k in properties if k in keys] + [k for k in keys if k not in properties]:
            sub = properties.get(name, extra)
            value[name] = self.build(sub, f"{path}.properties.{name}", depth + 1)
        return value

    def _extra_names(
        self, extra: Schema, names: Schema, taken: set[str], count: int, path: str
    ) -> list[str]:
        """Names for properties beyond ``properties``, from ``propertyNames`` when given."""
        if count <= 0 or extra is False:
            return []
        found: list[str] = []
        for _ in range(count * _REDRAWS):
            if len(found) == count:
                break
            if names is True:
                name = self._rng.choice(WORDS)
            else:
                name = self.build(names, f"{path}.propertyNames", _MINIMAL_DEPTH)
            if isinstance(name, str) and name not in taken:
                taken.add(name)
                found.append(name)
        return found

    def _array(self, schema: Mapping[str, Any], path: str, depth: int) -> list[Any]:
        prefix, rest = array_parts(schema)
        fewest = schema.get("minItems", 0)
        most = schema.get("maxItems", math.inf)
        if rest is False:
            most = min(most, len(prefix))
        if fewest > most:
            raise ParamsError(f"{path}.minItems: more items than the schema allows")
        if depth >= _MINIMAL_DEPTH:
            count = fewest
        else:
            low = max(fewest, min(1, most))
            count = self._rng.randint(low, int(min(most, low + 2)))
        unique = bool(schema.get("uniqueItems"))
        items: list[Any] = []
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else rest
            here = f"{path}.prefixItems.{index}" if index < len(prefix) else f"{path}.items"
            item = self._item(sub, here, depth, items if unique else None)
            if item is _NONE_LEFT:
                if len(items) >= fewest:
                    break
                raise ParamsError(f"{path}.uniqueItems: cannot find {fewest} distinct items")
            items.append(item)
        return items

    def _item(self, schema: Schema, path: str, depth: int, distinct_from: list[Any] | None) -> Any:
        for _ in range(_REDRAWS if distinct_from is not None else 1):
            item = self.build(schema, path, depth + 1)
            if distinct_from is None or not any(json_equal(item, x) for x in distinct_from):
                return item
        return _NONE_LEFT

    def _string(self, schema: Mapping[str, Any], path: str) -> str:
        fewest, most = schema.get("minLength", 0), schema.get("maxLength", math.inf)
        if fewest > most:
            raise ParamsError(f"{path}.minLength: greater than maxLength")
        form = schema.get("format")
        make = _FORMATS.get(form) if isinstance(form, str) else None
        if make is not None:
            text = make(self._rng)
            if not fewest <= len(text) <= most:
                raise ParamsError(
                    f"{path}.format: a {form} does not fit minLength / maxLength "
                    f"({len(text)} characters)"
                )
            return text
        text = self._words(1, 4)
        while len(text) < fewest:
            text += " " + self._words(1, 4)
        if len(text) <= most:
            return text
        text = text[: int(most)]  # cut within a word rather than end on a space
        return text[:-1] + "x" if text.endswith(" ") else text

    def _words(self, fewest: int, most: int) -> str:
        count = self._rng.randint(fewest, most)
        return " ".join(self._rng.choice(WORDS) for _ in range(count))

    def _integer(self, schema: Mapping[str, Any], path: str) -> int:
        low, high, low_open, high_open = _bounds(schema)
        first, last = _span(
            None if low is None else math.floor(low) + 1 if low_open else math.ceil(low),
            None if high is None else math.ceil(high) - 1 if high_open else math.floor(high),
        )
        step = schema.get("multipleOf")
        if step is None:
            if first > last:
                raise ParamsError(f"{path}: no integer lies between its minimum and maximum")
            return self._rng.randint(int(first), int(last))
        found = self._multiple(step, first, last, lambda value: float(value).is_integer())
        if found is None:
            raise ParamsError(f"{path}.multipleOf: no multiple lies between minimum and maximum")
        return int(found)

    def _number(self, schema: Mapping[str, Any], path: str) -> float:
        low, high, low_open, high_open = _bounds(schema)
        low, high = _span(low, high)

        def inside(value: float) -> bool:
            above = value > low if low_open else value >= low
            below = value < high if high_open else value <= high
            return above and below

        step = schema.get("multipleOf")
        if step is not None:
            found = self._multiple(step, low, high, inside)
            if found is None:
                raise ParamsError(f"{path}.multipleOf: no multiple lies between the bounds")
            return found
        for _ in range(_REDRAWS):
            value = round(low + (high - low) * self._rng.uniform(0.05, 0.95), 2)
            if inside(value):
                return value
        middle = low + (high - low) / 2
        if not inside(middle):
            raise ParamsError(f"{path}: no number lies between its minimum and maximum")
        return middle

    def _multiple(
        self, step: float, low: float, high: float, accept: Callable[[float], bool]
    ) -> float | None:
        """A multiple of ``step`` in ``[low, high]`` that ``accept`` takes (and that a validator
        dividing in floating point accepts too): a drawn one, else the first from ``low``."""
        first, last = math.ceil(low / step), math.floor(high / step)
        if first > last:
            return None
        drawn = [self._rng.randint(first, last) for _ in range(_REDRAWS)]
        scanned = range(first, min(last, first + 10 * _REDRAWS) + 1)
        for factor in [*drawn, *scanned]:
            value: float = factor * step
            if isinstance(step, float):
                value = round(value, 12)
            if low <= value <= high and accept(value) and schema_rules.is_multiple(value, step):
                return value
        return None


class _NoneLeft:
    """No distinct item could be drawn."""


_NONE_LEFT = _NoneLeft()

#: The type a schema without ``type`` implies by its keywords.
_IMPLIED: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "object",
        frozenset(
            {"properties", "required", "additionalProperties", "propertyNames", "minProperties"}
        ),
    ),
    ("array", frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems"})),
    ("string", frozenset({"minLength", "maxLength", "format"})),
    (
        "number",
        frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}),
    ),
)

#: The keywords merged per property rather than one by one (:func:`_merge_objects`).
_OBJECT_PARTS = frozenset({"properties", "required", "additionalProperties"})


def _constraints(schema: Mapping[str, Any], drop: tuple[str, ...]) -> dict[str, Any]:
    """The keywords of ``schema`` that constrain a value, less ``drop``."""
    return {k: v for k, v in schema.items() if k not in drop and k not in _ANNOTATIONS}


def _combine(key: str, left: Any, right: Any, path: str) -> Any:
    """Two values of one keyword in an ``allOf``, as one that asks what both ask."""
    if key == "type":
        both = _type_set(left) & _type_set(right)
        if not both:
            raise ParamsError(f"{path}.allOf: types {left!r} and {right!r} share no value")
        return sorted(both - {"integer"} if "number" in both else both)
    if key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"):
        return max(left, right)
    if key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"):
        return min(left, right)
    if key == "enum":
        return [value for value in left if any(json_equal(value, other) for other in right)]
    if key == "uniqueItems":
        return left or right
    if key in ("items", "propertyNames", "additionalItems"):
        return {"allOf": [left, right]}
    if key == "prefixItems":
        longer, shorter = (left, right) if len(left) >= len(right) else (right, left)
        return [
            {"allOf": [item, shorter[i]]} if i < len(shorter) else item
            for i, item in enumerate(longer)
        ]
    if json_equal(left, right):  # const, format, multipleOf ... when they agree
        return left
    raise ParamsError(
        f"{path}.allOf: two different {key!r} values cannot be satisfied at once here"
    )


def _type_set(kind: str | list[str]) -> set[str]:
    """The types a ``type`` allows, an integer being a number."""
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return kinds | {"integer"} if "number" in kinds else kinds


def _merge_objects(schemas: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``properties`` / ``required`` / ``additionalProperties`` of an ``allOf``: a property
    must satisfy, in each part, that part's schema for it or else that part's
    ``additionalProperties``."""
    names = list(dict.fromkeys(name for s in schemas for name in s.get("properties", {})))
    properties: dict[str, Any] = {}
    for name in names:
        parts = [
            s["properties"][name] if name in s.get("properties", {}) else s["additionalProperties"]
            for s in schemas
            if name in s.get("properties", {}) or "additionalProperties" in s
        ]
        properties[name] = parts[0] if len(parts) == 1 else {"allOf": parts}
    merged: dict[str, Any] = {"properties": properties}
    required = list(dict.fromkeys(name for s in schemas for name in s.get("required", ())))
    if required:
        merged["required"] = required
    extras = [s["additionalProperties"] for s in schemas if "additionalProperties" in s]
    if extras:
        merged["additionalProperties"] = extras[0] if len(extras) == 1 else {"allOf": extras}
    return merged


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    """The lower and upper bounds, each with whether it is exclusive."""
    low, high = schema.get("minimum"), schema.get("maximum")
    low_open = high_open = False
    low_x, high_x = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(low_x, bool):  # draft 4: a flag on minimum
        low_open = low_x and low is not None
    elif low_x is not None and (low is None or low_x >= low):
        low, low_open = low_x, True
    if isinstance(high_x, bool):
        high_open = high_x and high is not None
    elif high_x is not None and (high is None or high_x <= high):
        high, high_open = high_x, True
    return low, high, low_open, high_open


def _span(low: float | None, high: float | None) -> tuple[float, float]:
    """Bounds made finite: 100 beyond the one given, or ``[0, 100]``."""
    if low is None:
        return (0, 100) if high is None else (high - 100, high)
    return (low, low + 100) if high is None else (low, high)


def _is_null(schema: Schema) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "null"


def _refers(schema: Schema) -> bool:
    """Whether ``schema`` holds a ``$ref`` anywhere (and so may recurse)."""
    if isinstance(schema, Mapping):
        return "$ref" in schema or any(_refers(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_refers(v) for v in schema)
    return False


def _datetime(rng: random.Random) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(seconds=rng.randrange(3 * 365 * 86400))


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS)


#: One value of each string format generation produces (``schema_rules.FORMATS``).
_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "date-time": lambda rng: _datetime(rng).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "date": lambda rng: _datetime(rng).strftime("%Y-%m-%d"),
    "time": lambda rng: _datetime(rng).strftime("%H:%M:%SZ"),
    "duration": lambda rng: f"P{rng.randint(0, 9)}DT{rng.randint(0, 23)}H{rng.randint(0, 59)}M",
    "email": lambda rng: f"{_word(rng)}.{_word(rng)}@example.com",
    "hostname": lambda rng: f"{_word(rng)}.example.com",
    "ipv4": lambda rng: f"192.0.2.{rng.randint(1, 254)}",
    "ipv6": lambda rng: f"2001:db8::{rng.randint(1, 0xFFFF):x}",
    "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "uri": lambda rng: f"https://example.com/{_word(rng)}",
    "uri-reference": lambda rng: f"/{_word(rng)}/{_word(rng)}",
    "iri": lambda rng: f"https://example.com/{_word(rng)}",
    "iri-reference": lambda rng: f"/{_word(rng)}",
    "path": lambda rng: f"/tmp/{_word(rng)}.txt",
    "password": lambda rng: f"{_word(rng)}-{rng.randint(1000, 9999)}",
    "binary": lambda rng: _word(rng),
}
