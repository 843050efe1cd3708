"""The JSON Schema instance generator behind the simulated engine's tool calls and JSON
answers: every value it builds is valid against its schema (checked by the ``jsonschema``
library, formats included, and by pydantic for pydantic's own schemas), the same draws build
the same value, and a schema it cannot honour is refused naming the keyword's path."""

from __future__ import annotations

import datetime
import enum
import ipaddress
import random
import re
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jsonschema
import pydantic
import pytest
from jsonschema.validators import validator_for
from pydantic import BaseModel, Field

from batchyard.engines.schema_instances import schema_instance
from batchyard.errors import ParamsError

SEEDS = range(60)
WHERE = "output_config.format.schema"

#: jsonschema checks these formats only with optional packages; the standard library does.
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time")
def _is_datetime(text: str) -> bool:
    return "T" in text and datetime.datetime.fromisoformat(text).tzinfo is not None


@FORMATS.checks("time")
def _is_time(text: str) -> bool:
    return datetime.time.fromisoformat(text).tzinfo is not None


@FORMATS.checks("uri")
def _is_uri(text: str) -> bool:
    parts = urlsplit(text)
    return bool(parts.scheme and parts.netloc) and " " not in text


@FORMATS.checks("duration")
def _is_duration(text: str) -> bool:
    return bool(re.fullmatch(r"P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?", text)) and text != "P"


@FORMATS.checks("hostname")
def _is_hostname(text: str) -> bool:
    return all(re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", p) for p in text.split("."))


@FORMATS.checks("ipv4")
def _is_ipv4(text: str) -> bool:
    return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)


@FORMATS.checks("uuid")
def _is_uuid(text: str) -> bool:
    return str(uuid.UUID(text)) == text


def build(schema: dict[str, Any], seed: int = 0, **options: Any) -> Any:
    return schema_instance(schema, random.Random(seed), WHERE, "sim", **options)


def assert_valid_everywhere(schema: dict[str, Any]) -> list[Any]:
    """Values for :data:`SEEDS`, each checked by the validator of the schema's draft."""
    validator = validator_for(schema, default=jsonschema.Draft202012Validator)(
        schema, format_checker=FORMATS
    )
    values = [build(schema, seed) for seed in SEEDS]
    for seed, value in zip(SEEDS, values, strict=True):
        errors = [error.message for error in validator.iter_errors(value)]
        assert not errors, (seed, value, errors)
    return values


STRING_FORMATS = ["date-time", "date", "time", "duration", "email", "hostname"]
STRING_FORMATS += ["ipv4", "ipv6", "uuid", "uri", "uri-reference"]

SCHEMAS: dict[str, dict[str, Any]] = {
    "empty": {},
    "scalars": {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "n": {"type": "number"},
            "b": {"type": "boolean"},
            "z": {"type": "null"},
        },
        "required": ["s", "i", "n", "b", "z"],
        "additionalProperties": False,
    },
    "enum-and-const": {
        "type": "object",
        "properties": {
            "colour": {"enum": ["red", "green", 3, None, {"deep": [1]}]},
            "typed_enum": {"type": "string", "enum": ["a", 1, "b"]},
            "fixed": {"const": {"v": 2}},
        },
        "required": ["colour", "typed_enum", "fixed"],
    },
    "nullable-type-list": {
        "type": "object",
        "properties": {"note": {"type": ["string", "null"]}, "n": {"type": ["integer", "null"]}},
        "required": ["note", "n"],
    },
    "bounds": {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "minimum": 5, "maximum": 7},
            "b": {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 7},
            "c": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
            "d": {"type": "number", "minimum": -3.5, "maximum": -3.5},
            "e": {"type": "integer", "maximum": -1000},
            "f": {"type": "number", "minimum": 1e6},
            "g": {"type": "integer", "minimum": 2.5, "maximum": 3.5},
        },
        "required": ["a", "b", "c", "d", "e", "f", "g"],
    },
    "multiples": {
        "type": "object",
        "properties": {
            "ints": {"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 30},
            "tenths": {"type": "number", "multipleOf": 0.1, "minimum": 0, "maximum": 1},
            "halves": {"type": "integer", "multipleOf": 0.5},
            "cents": {"type": "number", "multipleOf": 0.01, "exclusiveMinimum": 0},
            "quarter": {"type": "number", "multipleOf": 0.25, "minimum": -1, "maximum": 1},
        },
        "required": ["ints", "tenths", "halves", "cents", "quarter"],
    },
    "strings": {
        "type": "object",
        "properties": {
            "short": {"type": "string", "maxLength": 2},
            "long": {"type": "string", "minLength": 40},
            "exact": {"type": "string", "minLength": 5, "maxLength": 5},
            "empty": {"type": "string", "maxLength": 0},
        },
        "required": ["short", "long", "exact", "empty"],
    },
    "formats": {
        "type": "object",
        "properties": {f: {"type": "string", "format": f} for f in STRING_FORMATS},
        "required": STRING_FORMATS,
    },
    "arrays": {
        "type": "object",
        "properties": {
            "any": {"type": "array"},
            "bounded": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 2,
                "maxItems": 4,
            },
            "none": {"type": "array", "maxItems": 0},
            "many": {"type": "array", "items": {"type": "boolean"}, "minItems": 6},
            "unique": {
                "type": "array",
                "items": {"enum": ["a", "b", "c"]},
                "minItems": 3,
                "uniqueItems": True,
            },
            "tuple": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
                "minItems": 2,
            },
        },
        "required": ["any", "bounded", "none", "many", "unique", "tuple"],
    },
    "objects": {
        "type": "object",
        "properties": {
            "map": {"type": "object", "additionalProperties": {"type": "integer"}},
            "closed": {"type": "object", "properties": {"x": {}}, "additionalProperties": False},
            "at_least": {"type": "object", "minProperties": 3},
            "at_most": {
                "type": "object",
                "properties": {"p": {}, "q": {}, "r": {}},
                "maxProperties": 1,
            },
            "keys": {
                "type": "object",
                "propertyNames": {"enum": ["x", "y"]},
                "additionalProperties": {"type": "string"},
            },
        },
        "required": ["map", "closed", "at_least", "at_most", "keys"],
    },
    "no-type-given": {
        "properties": {
            "implied_object": {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
            "implied_array": {"items": {"type": "string"}, "minItems": 1},
            "implied_number": {"minimum": 3, "maximum": 4},
            "implied_string": {"maxLength": 3},
        },
        "required": ["implied_object", "implied_array", "implied_number", "implied_string"],
    },
    "any-of-and-one-of": {
        "type": "object",
        "properties": {
            "either": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 100}]},
            # An integer is a number too: a number branch's value must not be an integer.
            "exactly_one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
            "overlapping": {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]},
            "with_siblings": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "integer"}},
                "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
            },
        },
        "required": ["either", "exactly_one", "overlapping", "with_siblings"],
    },
    "all-of-merges-objects": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"a": {"minimum": 10, "maximum": 12}, "b": {"type": "string"}}},
            {"required": ["b"]},
        ],
    },
    "all-of-closed-part": {
        "allOf": [
            {"properties": {"a": {"type": "integer"}, "b": {}}, "additionalProperties": False},
            {"properties": {"b": {"type": "string"}, "c": {}}, "required": ["b"]},
        ],
    },
    "refs": {
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
                "additionalProperties": False,
            },
            "Alias": {"$ref": "#/$defs/Point"},
            "Open": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
        "type": "object",
        "properties": {
            "start": {"$ref": "#/$defs/Point"},
            "end": {"$ref": "#/$defs/Alias", "description": "an annotation beside the ref"},
            "tagged": {"$ref": "#/$defs/Open", "required": ["x", "label"]},
            "by_pointer": {"$ref": "#/properties/start"},
        },
        "required": ["start", "end", "tagged", "by_pointer"],
    },
    "recursive-tree": {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                },
                "required": ["name", "children", "parent"],
            }
        },
        "$ref": "#/$defs/Node",
    },
    "recursive-root": {
        "type": "object",
        "properties": {"value": {"type": "integer"}, "next": {"$ref": "#"}},
        "required": ["value"],
    },
    "draft-7-definitions-and-tuple-items": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"Id": {"type": "integer", "minimum": 1}},
        "type": "array",
        "items": [{"$ref": "#/definitions/Id"}, {"type": "string"}],
        "additionalItems": False,
        "minItems": 2,
    },
    "draft-4-boolean-exclusive-bounds": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "integer",
        "minimum": 1,
        "exclusiveMinimum": True,
        "maximum": 3,
        "exclusiveMaximum": True,
    },
    "boolean-schemas": {
        "type": "object",
        "properties": {"anything": True, "nothing": False},
        "required": ["anything"],
    },
    "unknown-keywords-are-annotations": {
        "type": "string",
        "x-vendor": {"pattern": "^$"},
        "examples": ["a"],
        "deprecated": True,
    },
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_value_is_valid_against_its_schema(name: str) -> None:
    assert_valid_everywhere(SCHEMAS[name])


def test_the_same_draws_build_the_same_value_and_others_vary() -> None:
    schema = SCHEMAS["scalars"]
    assert build(schema, 7) == build(schema, 7)
    assert len({repr(build(schema, seed)) for seed in SEEDS}) > len(SEEDS) // 2


def test_optional_properties_and_union_branches_are_each_drawn() -> None:
    values = assert_valid_everywhere(
        {
            "type": "object",
            "properties": {"maybe": {"type": "integer"}, "either": {"type": ["string", "null"]}},
        }
    )
    assert {"maybe" in value for value in values} == {True, False}
    assert {type(value.get("either")) for value in values} >= {str, type(None)}


def test_a_recursive_schema_ends() -> None:
    def depth(node: dict[str, Any]) -> int:
        below = [depth(child) for child in node["children"]]
        parent = node["parent"]
        return 1 + max([*below, depth(parent) if parent else 0])

    values = assert_valid_everywhere(SCHEMAS["recursive-tree"])
    assert max(depth(value) for value in values) <= 8


# ----------------------------------------------------------------------------- pydantic


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]
    bark: str


class Address(BaseModel):
    """A postal address."""

    street: str = Field(description="Street and number")
    city: str
    postcode: str | None = None


class Node(BaseModel):
    name: str
    children: list[Node] = []


class Order(BaseModel):
    """What instructor, pydantic-ai and LangChain send: ``$defs``, titles, defaults."""

    id: uuid.UUID
    placed_at: datetime.datetime
    ship_on: datetime.date
    window: datetime.time
    eta: datetime.timedelta
    quantity: int = Field(ge=1, le=10)
    price: float = Field(gt=0, lt=1000, multiple_of=0.01)
    discount: float | None = None
    note: str | None = Field(default=None, max_length=20)
    tags: set[str] = set()
    pair: tuple[int, str]
    scores: dict[str, float]
    counts: dict[Literal["x", "y"], int]
    colour: Colour
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    ship_to: Address
    bill_to: Address | None = None
    items: list[Address] = Field(min_length=1, max_length=3)
    tree: Node
    code: int | str
    homepage: pydantic.AnyUrl
    secret: pydantic.SecretStr
    kind: Literal["a", "b"] = "a"


class Wrapper(pydantic.RootModel[list[Order]]):
    """A root model: the schema is a ``$ref`` beside ``$defs``."""


@pytest.mark.parametrize("model", [Order, Address, Node, Wrapper], ids=lambda m: m.__name__)
@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_pydantic_schemas_build_values_pydantic_accepts(
    model: type[BaseModel], mode: Literal["validation", "serialization"]
) -> None:
    schema = model.model_json_schema(mode=mode)
    for value in assert_valid_everywhere(schema):
        model.model_validate(value)


class Rated(BaseModel):
    """Bounds the SDK's ``transform_schema`` moves into descriptions."""

    stars: int = Field(ge=1, le=5, description="How many stars")
    share: float = Field(gt=0, lt=1, multiple_of=0.05)
    code: str = Field(min_length=3, max_length=3)
    tags: list[str] = Field(min_length=2, max_length=4)


def test_the_bounds_the_sdk_moves_into_descriptions_are_followed() -> None:
    """What ``messages.parse``, LangChain's ``json_schema`` method and pydantic-ai's
    ``NativeOutput`` send: no bound left as a keyword, each hinted at in a description."""
    from anthropic import transform_schema

    schema = transform_schema(Rated)
    stars = schema["properties"]["stars"]
    assert "maximum" not in stars and stars["description"].endswith("{maximum: 5, minimum: 1}")
    for value in assert_valid_everywhere(schema):
        Rated.model_validate(value)


def test_a_hint_that_is_no_number_or_repeats_a_keyword_is_left_out() -> None:
    schema = {
        "type": "integer",
        "minimum": 0,
        "maximum": 3,
        "description": "Odd {maximum: 100, exclusiveMaximum: one, multipleOf: 0}",
    }
    assert {build(schema, seed) for seed in SEEDS} <= {0, 1, 2, 3}


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("schema", "path", "reason"),
    [
        pytest.param(
            {"type": "object", "properties": {"code": {"type": "string", "pattern": "^A"}}},
            "properties.code.pattern",
            "the JSON Schema keyword 'pattern' is not supported by sim",
            id="pattern",
        ),
        pytest.param(
            {"anyOf": [{"type": "string"}, {"not": {"type": "null"}}]},
            "anyOf.1.not",
            "keyword 'not' is not supported",
            id="not-in-an-unlikely-branch",
        ),
        pytest.param(
            {"$defs": {"X": {"if": {}, "then": {}}}, "type": "object"},
            "$defs.X.if",
            "keyword 'if' is not supported",
            id="if-in-an-unused-definition",
        ),
        pytest.param(
            {"type": "object", "patternProperties": {"^x": {}}},
            "patternProperties",
            "not supported",
            id="patternProperties",
        ),
        pytest.param(
            {"type": "array", "contains": {"type": "integer"}},
            "contains",
            "not supported",
            id="contains",
        ),
        pytest.param(
            {"type": "string", "format": "phone"},
            "format",
            "the string format 'phone' is not supported by sim",
            id="unknown-string-format",
        ),
        pytest.param(
            {"$ref": "https://example.com/schema.json"},
            "$ref",
            "only references inside the schema",
            id="remote-ref",
        ),
        pytest.param(
            {"properties": {"a": {"$ref": "#/$defs/Missing"}}},
            "properties.a.$ref",
            "does not resolve",
            id="unresolved-ref",
        ),
        pytest.param({"type": "text"}, "type", "must be one of", id="unknown-type"),
        pytest.param({"type": "integer", "minimum": "1"}, "minimum", "number", id="bad-minimum"),
        pytest.param(
            {
                "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 4}},
                "required": ["n"],
            },
            "properties.n",
            "no integer lies between",
            id="empty-range",
        ),
        pytest.param(
            {"type": "array", "minItems": 3, "maxItems": 2},
            "minItems",
            "more items",
            id="min-items-over-max",
        ),
        pytest.param(
            {"type": "array", "items": {"enum": [1, 2]}, "minItems": 3, "uniqueItems": True},
            "uniqueItems",
            "distinct",
            id="too-few-distinct-items",
        ),
        pytest.param(
            {"type": "object", "properties": {"x": False}, "required": ["x"]},
            "properties.x",
            "no value satisfies",
            id="required-false",
        ),
        pytest.param(
            {"allOf": [{"type": "string"}, {"type": "integer"}]},
            "allOf",
            "share no value",
            id="all-of-types-disagree",
        ),
        pytest.param(
            {"type": "object", "properties": {"me": {"$ref": "#"}}, "required": ["me"]},
            "properties.me",
            "no finite instance",
            id="required-recursion",
        ),
        pytest.param(
            {"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/A"}}},
            "$defs.A.$ref",
            "cycle",
            id="ref-cycle",
        ),
        pytest.param(
            {"oneOf": [{"type": "string"}, {"type": "string"}]},
            "oneOf",
            "exactly one branch",
            id="identical-one-of-branches",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_its_path(
    schema: dict[str, Any], path: str, reason: str
) -> None:
    for seed in range(5):  # the same refusal whatever is drawn
        with pytest.raises(ParamsError) as caught:
            build(schema, seed)
        assert caught.value.message.startswith(f"{WHERE}.{path}"), caught.value.message
        assert reason in caught.value.message


def test_lenient_ignores_what_it_cannot_honour() -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$", "format": "phone"}},
        "required": ["code"],
    }
    value = build(schema, lenient=True)
    assert isinstance(value["code"], str)
