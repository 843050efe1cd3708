"""Which JSON Schema keywords the simulated engine's instance generator honours, and a small
matcher for them.

:mod:`batchyard.engines.schema_instances` builds a value valid against a client's schema
(``output_config.format.schema``, a tool's ``input_schema``). A keyword it cannot satisfy
(``pattern``, ``not``, ``if`` ...) would make it answer something the client's validator then
rejects, so :func:`check_schema` walks the whole schema first, every branch and definition
whether or not a draw would reach it, and refuses such a keyword by its path: the same
request is refused every time, never answered on a lucky draw. Keywords that constrain
nothing (``title``, ``description``, ``default``, pydantic's ``discriminator``, unknown
keywords, which JSON Schema reads as annotations) are ignored.

:func:`matches` decides whether a value satisfies a schema, for the few places generation
must test a candidate rather than build it: ``oneOf`` (exactly one branch), ``enum`` values
against their siblings, ``propertyNames``. It knows the keywords :func:`check_schema` lets
through and nothing more.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from batchyard.errors import ParamsError

Schema = Mapping[str, Any] | bool

TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})

#: Keywords that constrain an instance and that generation honours, by the kind of value
#: each takes.
_SCHEMA_VALUED = frozenset({"additionalProperties", "propertyNames", "additionalItems"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})
_COUNTS = frozenset(
    {"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"}
)
_NUMBERS = frozenset({"minimum", "maximum"})
_EXCLUSIVE = frozenset({"exclusiveMinimum", "exclusiveMaximum"})

#: Keywords that constrain an instance in ways generation cannot honour: refused by path.
UNSUPPORTED = frozenset(
    {
        "pattern",
        "patternProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "minContains",
        "maxContains",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "unevaluatedProperties",
        "unevaluatedItems",
        "$dynamicRef",
        "$recursiveRef",
    }
)


_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
_TIME = re.compile(
    r"^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")
_NO_SPACE = re.compile(r"^[^\s]*$")


def _is_time(text: str) -> bool:
    return bool(_TIME.match(text))


def _is_datetime(text: str) -> bool:
    return bool(_DATE.match(text[:10])) and text[10:11] in ("T", "t") and _is_time(text[11:])


def _any_text(text: str) -> bool:
    return True


def _is_ip(version: int) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            return ipaddress.ip_address(text).version == version
        except ValueError:
            return False

    return check


#: The string formats generation produces, each with the test :func:`matches` applies.
#: ``path``, ``password`` and ``binary`` are pydantic's (``Path``, ``SecretStr``, ``bytes``):
#: any string is one.
FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _is_datetime,
    "date": lambda text: bool(_DATE.match(text)),
    "time": _is_time,
    "duration": lambda text: bool(_DURATION.match(text)),
    "email": lambda text: text.count("@") == 1 and "" not in text.split("@"),
    "hostname": lambda text: len(text) <= 253 and bool(_HOSTNAME.match(text)),
    "ipv4": _is_ip(4),
    "ipv6": _is_ip(6),
    "uuid": lambda text: bool(_UUID.match(text)),
    "uri": lambda text: bool(_URI.match(text)),
    "uri-reference": lambda text: bool(_NO_SPACE.match(text)),
    "iri": lambda text: bool(_URI.match(text)),
    "iri-reference": lambda text: bool(_NO_SPACE.match(text)),
    "path": _any_text,
    "password": _any_text,
    "binary": _any_text,
}


def check_schema(schema: object, where: str, model: str, *, lenient: bool = False) -> None:
    """Refuse (``ParamsError`` naming the path under ``where``) a schema with a keyword
    generation cannot honour, a malformed keyword value, or a ``$ref`` that does not resolve.

    ``lenient`` (the simulated engine's ``accept_unsupported``) lets the unsupported keywords
    through: generation then ignores them, as the operator asked.
    """
    _Checker(schema, where, model, lenient).visit(schema, where)


class _Checker:
    def __init__(self, root: object, where: str, model: str, lenient: bool) -> None:
        self._root = root
        self._where = where
        self._model = model
        self._lenient = lenient

    def visit(self, schema: object, path: str) -> None:
        if isinstance(schema, bool):
            return
        if not isinstance(schema, Mapping):
            raise ParamsError(f"{path}: a JSON Schema is an object or a boolean")
        for key, value in schema.items():
            self._keyword(key, value, path, schema)

    def _keyword(self, key: str, value: Any, path: str, schema: Mapping[str, Any]) -> None:
        at = f"{path}.{key}"
        if key in UNSUPPORTED:
            if not self._lenient:
                raise ParamsError(
                    f"{at}: the JSON Schema keyword {key!r} is not supported by {self._model} "
                    "(it cannot produce a value that honours it)"
                )
        elif key in _SCHEMA_VALUED:
            self.visit(value, at)
        elif key in _SCHEMA_LISTS:
            if not isinstance(value, list) or (key != "prefixItems" and not value):
                raise ParamsError(f"{at}: must be a non-empty array of schemas")
            for index, item in enumerate(value):
                self.visit(item, f"{at}.{index}")
        elif key in _SCHEMA_MAPS:
            if not isinstance(value, Mapping):
                raise ParamsError(f"{at}: must be an object of schemas")
            for name, item in value.items():
                self.visit(item, f"{at}.{name}")
        elif key == "items":
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                self.visit(item, f"{at}.{index}" if isinstance(value, list) else at)
        elif key in _COUNTS:
            if not _is_int(value) or value < 0:
                raise ParamsError(f"{at}: must be a non-negative integer")
        elif key in _NUMBERS or key in _EXCLUSIVE:
            allowed_bool = key in _EXCLUSIVE  # draft 4 wrote them as booleans
            if not (_is_number(value) or (allowed_bool and isinstance(value, bool))):
                raise ParamsError(f"{at}: must be a number")
        elif key == "multipleOf":
            if not _is_number(value) or value <= 0:
                raise ParamsError(f"{at}: must be a number greater than 0")
        else:
            self._other(key, value, at, schema)

    def _other(self, key: str, value: Any, at: str, schema: Mapping[str, Any]) -> None:
        if key == "type":
            names = value if isinstance(value, list) else [value]
            if not names or any(name not in TYPES for name in names):
                raise ParamsError(f"{at}: must be one of {', '.join(sorted(TYPES))}, or a list")
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                raise ParamsError(f"{at}: must be an array of property names")
        elif key == "enum":
            if not isinstance(value, list) or not value:
                raise ParamsError(f"{at}: must be a non-empty array")
        elif key == "uniqueItems":
            if not isinstance(value, bool):
                raise ParamsError(f"{at}: must be a boolean")
        elif key == "format":
            known = isinstance(value, str) and value in FORMATS
            if could_be_string(schema) and not known and not self._lenient:
                raise ParamsError(
                    f"{at}: the string format {value!r} is not supported by {self._model} "
                    f"(supported: {', '.join(FORMATS)})"
                )
        elif key == "$ref":
            resolve(self._root, value, self._where, at)


def could_be_string(schema: Mapping[str, Any]) -> bool:
    """Whether ``type`` allows a string (``format`` constrains only strings)."""
    kind = schema.get("type", "string")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def resolve(root: object, ref: object, where: str, at: str) -> tuple[Schema, str]:
    """The schema a local ``$ref`` (``#``, ``#/$defs/Name``, any JSON pointer) names, and its
    path under ``where``."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise ParamsError(f"{at}: only references inside the schema ('#/...') are supported")
    target: object = root
    path = where
    pointer = ref[1:]
    if pointer and not pointer.startswith("/"):
        raise ParamsError(f"{at}: {ref!r} is not a JSON pointer ('#/$defs/Name')")
    for raw in pointer.split("/")[1:] if pointer else ():
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(target, Mapping) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise ParamsError(f"{at}: {ref!r} does not resolve to a schema in this schema")
        path = f"{path}.{part}"
    if not isinstance(target, Mapping | bool):
        raise ParamsError(f"{at}: {ref!r} does not resolve to a schema in this schema")
    return target, path


# --------------------------------------------------------------------------- matching


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_type(value: object, kind: str) -> bool:
    """JSON Schema's types: a boolean is no number, ``1.0`` is an integer."""
    if kind == "integer":
        return _is_int(value) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return _is_number(value)
    tests: dict[str, Callable[[object], bool]] = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    return tests[kind](value)


def json_equal(left: object, right: object) -> bool:
    """Equality as JSON Schema defines it (``enum``, ``const``, ``uniqueItems``): ``1 == 1.0``
    but ``true != 1``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def is_multiple(value: float, step: float) -> bool:
    """``multipleOf`` as validators compute it (a float step divides in floating point)."""
    if isinstance(step, float) or isinstance(value, float):
        quotient = value / step
        return math.isfinite(quotient) and quotient == int(quotient)
    return value % step == 0


def matches(value: object, schema: Schema, root: object, depth: int = 0) -> bool:
    """Whether ``value`` satisfies ``schema`` (the keywords :func:`check_schema` allows)."""
    if isinstance(schema, bool):
        return schema
    if depth > 64:
        return False
    if "$ref" in schema:
        target, _ = resolve(root, schema["$ref"], "", "$ref")
        if not matches(value, target, root, depth + 1):
            return False
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(is_type(value, k) for k in kinds):
            return False
    if "const" in schema and not json_equal(value, schema["const"]):
        return False
    if "enum" in schema and not any(json_equal(value, item) for item in schema["enum"]):
        return False
    for sub in schema.get("allOf", ()):
        if not matches(value, sub, root, depth + 1):
            return False
    if "anyOf" in schema and not any(matches(value, s, root, depth + 1) for s in schema["anyOf"]):
        return False
    if "oneOf" in schema and sum(matches(value, s, root, depth + 1) for s in schema["oneOf"]) != 1:
        return False
    return _matches_kind(value, schema, root, depth)


def _matches_kind(value: object, schema: Mapping[str, Any], root: object, depth: int) -> bool:
    if isinstance(value, str):
        length = len(value)
        fits: bool = schema.get("minLength", 0) <= length <= schema.get("maxLength", length)
        return fits and FORMATS.get(schema.get("format", ""), _any_text)(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _in_bounds(value, schema) and (
            "multipleOf" not in schema or is_multiple(value, schema["multipleOf"])
        )
    if isinstance(value, list):
        return _matches_array(value, schema, root, depth)
    if isinstance(value, dict):
        return _matches_object(value, schema, root, depth)
    return True


def _in_bounds(value: float, schema: Mapping[str, Any]) -> bool:
    low, high = schema.get("minimum"), schema.get("maximum")
    low_x, high_x = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if low_x is True:
        low_x, low = low, None
    if high_x is True:
        high_x, high = high, None
    return (
        (low is None or value >= low)
        and (high is None or value <= high)
        and (low_x in (None, False) or value > low_x)
        and (high_x in (None, False) or value < high_x)
    )


def _matches_array(value: list[Any], schema: Mapping[str, Any], root: object, depth: int) -> bool:
    if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
        return False
    prefix, rest = array_parts(schema)
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else rest
        if not matches(item, sub, root, depth + 1):
            return False
    if schema.get("uniqueItems"):
        return not any(json_equal(a, b) for i, a in enumerate(value) for b in value[i + 1 :])
    return True


def array_parts(schema: Mapping[str, Any]) -> tuple[list[Schema], Schema]:
    """An array's positional schemas and the schema of the items after them (``prefixItems``
    and ``items``, or draft 7's ``items`` list and ``additionalItems``)."""
    items = schema.get("items", True)
    if isinstance(items, list):
        return items, schema.get("additionalItems", True)
    return list(schema.get("prefixItems", ())), items


def _matches_object(
    value: dict[str, Any], schema: Mapping[str, Any], root: object, depth: int
) -> bool:
    if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", len(value)):
        return False
    if any(name not in value for name in schema.get("required", ())):
        return False
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames", True)
    for name, item in value.items():
        if not matches(name, names, root, depth + 1):
            return False
        if not matches(item, properties.get(name, extra), root, depth + 1):
            return False
    return True
