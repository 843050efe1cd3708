"""Generate ``src/batchyard/protocol/sdk_params.py`` from the official SDK's request types.

The Messages request shape changes every few weeks (system messages, toolsets, new tool and
block types, beta fields). Rather than keep a validator by hand, this script walks the
``TypedDict`` tree of the pinned ``anthropic`` package from the four request roots (create
and count_tokens, stable and beta) and writes one strict msgspec ``Struct`` per ``TypedDict``:
unknown keys are refused, required keys are required, and every union of objects becomes a
union tagged by its discriminating field (``type``, or ``role`` for messages). msgspec then
validates a body in microseconds, with the field path of the first problem.

Run it after bumping the SDK pin in ``pyproject.toml`` (``make sdk-params``) and review the
diff: it is the change in the wire contract. ``tests/unit/protocol/test_sdk_params.py``
fails while the checked-in module differs from what this script writes, and walks the SDK's
types to check that the module accepts and refuses what they do.

Translation rules (each one a property of JSON, not of Python):

- ``Iterable``/``Sequence``/``List`` become ``list``; ``Dict[str, X]`` a ``dict``; ``object``
  ``Any``; a union that holds ``Dict[str, object]`` is that dict (it admits every member).
- ``Literal[...] | str`` is ``str``; file-like alternatives (``IO[bytes]``, ``PathLike``) and
  the SDK's response models (which the SDK accepts to echo a reply back) have no JSON form
  beyond the param types already in the union, and are dropped.
- A key that is not ``Required`` may also be ``null``: client libraries send ``null`` for
  unset options and the API takes it.
- A union of objects whose members all carry a distinct required ``Literal`` in one field is
  a msgspec tagged union on that field. A union where exactly one member's tag is optional
  (a custom tool's ``type: "custom"``) cannot be tagged in msgspec: the field is kept as raw
  JSON and decoded in ``__post_init__``, the untagged member standing for a missing tag.

One leniency is msgspec's own: a tagged struct decoded outside a union (a text block in
``system``) is read without its tag.
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typing_extensions as te

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "batchyard" / "protocol" / "sdk_params.py"

#: Request roots: (generated name, module, TypedDict name).
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

#: Body keys the latest SDK's types leave out of a root but older SDKs (0.75 on) still send,
#: with their JSON type: a scalar's name, or ``(module, TypedDict)`` of the pinned SDK.
#: ``stream`` is chosen by which SDK method is called; ``temperature``, ``top_p`` and ``top_k``
#: left the SDK's keyword arguments in 2.14 but the API still takes them (from older SDKs, and
#: from newer ones through ``extra_body``); their ranges are checked in messages.py. The beta
#: ``output_format`` became ``output_config.format`` in the SDK; 0.75's beta methods send it.
_SAMPLING: dict[str, str | tuple[str, str]] = {
    "stream": "bool",
    "temperature": "float",
    "top_p": "float",
    "top_k": "int",
}
_OUTPUT_FORMAT = ("anthropic.types.beta.beta_json_output_format_param", "BetaJSONOutputFormatParam")
ROOT_EXTRAS: dict[str, dict[str, str | tuple[str, str]]] = {
    "MessageCreate": _SAMPLING,
    "BetaMessageCreate": {**_SAMPLING, "output_format": _OUTPUT_FORMAT},
    "BetaMessageCountTokens": {"output_format": _OUTPUT_FORMAT},
}

#: Root keys that are not body keys: the beta SDK sends ``betas`` as the ``anthropic-beta``
#: header.
ROOT_SKIPPED = {"betas"}


class GenerationError(Exception):
    """The SDK uses a shape this generator has no JSON translation for yet."""


@dataclass
class StructSpec:
    name: str
    fields: list[tuple[str, str, bool]]  # (json key, annotation, required)
    tag_field: str | None = None
    #: The tag values: the struct takes the first; each other one gets a subclass.
    tags: list[str] = field(default_factory=list)
    #: For the untagged member of a union: the tag values it may still carry.
    own_tags: list[Any] = field(default_factory=list)
    #: (json key, union expression, default member name, tag field) decoded in __post_init__.
    deferred: list[tuple[str, str, str, str, bool]] = field(default_factory=list)


class Generator:
    def __init__(self) -> None:
        self.structs: dict[str, StructSpec] = {}
        self.names: dict[Any, str] = {}
        self.tagged_unions: dict[str, tuple[str, list[str], str]] = {}

    # ------------------------------------------------------------------ naming

    def struct_name(self, typed_dict: Any) -> str:
        if typed_dict in self.names:
            return self.names[typed_dict]
        base = typed_dict.__name__
        module = typed_dict.__module__
        name = base
        if name in self.names.values() or name in {r[0] for r in ROOTS}:
            # Two TypedDicts share a name (e.g. ``Metadata`` in two modules): qualify the
            # later one by its module's last component.
            suffix = "".join(part.title() for part in module.rsplit(".", 1)[-1].split("_"))
            name = f"{suffix}{base}"
        self.names[typed_dict] = name
        return name

    # ------------------------------------------------------------------ walking

    def root(self, name: str, typed_dict: Any) -> None:
        self.names[typed_dict] = name
        self.emit_struct(typed_dict, extras=ROOT_EXTRAS.get(name, {}), skipped=ROOT_SKIPPED)

    def emit_struct(
        self,
        typed_dict: Any,
        *,
        tag_field: str | None = None,
        extras: dict[str, str | tuple[str, str]] | None = None,
        skipped: set[str] | None = None,
    ) -> str:
        name = self.struct_name(typed_dict)
        spec = self.structs.get(name)
        if spec is not None:
            if tag_field is not None and spec.tag_field not in (None, tag_field):
                raise GenerationError(f"{name} is tagged by both {spec.tag_field} and {tag_field}")
            if tag_field is not None and spec.tag_field is None:
                spec.tag_field, spec.tags = tag_field, _tag_values(typed_dict, tag_field)
            return name
        spec = StructSpec(name=name, fields=[])
        self.structs[name] = spec  # registered first: the walk below may recurse into it
        if tag_field is not None:
            spec.tag_field, spec.tags = tag_field, _tag_values(typed_dict, tag_field)
        hints = te.get_type_hints(typed_dict, include_extras=True)
        for key, hint in hints.items():
            if skipped and key in skipped:
                continue
            required = _is_required(typed_dict, hint)
            inner = _unwrap(hint)
            deferred = self.deferred_union(inner)
            if deferred is not None:
                member_union, default, union_tag, in_list = deferred
                annotation = "list[Raw]" if in_list else "Raw"
                spec.deferred.append((key, member_union, default, union_tag, in_list))
            else:
                annotation = self.annotation(inner)
            spec.fields.append((key, annotation, required))
        for key, extra in (extras or {}).items():
            if isinstance(extra, tuple):
                module, type_name = extra
                extra = self.emit_struct(getattr(importlib.import_module(module), type_name))
            spec.fields.append((key, extra, False))
        return name

    def tagged(self, typed_dict: Any, tag_field: str) -> list[str]:
        """The struct names a union member stands for: one per value of its tag."""
        name = self.emit_struct(typed_dict, tag_field=tag_field)
        tags = self.structs[name].tags
        return [name, *(_alias_name(name, tag) for tag in tags[1:])]

    def deferred_union(self, hint: Any) -> tuple[str, str, str, bool] | None:
        """``(tagged union of the others, untagged member, tag field, in a list)`` for a union
        with one member whose tag is optional; ``None`` for anything else."""
        in_list = False
        if te.get_origin(hint) in _LIST_ORIGINS:
            hint, in_list = _unwrap(te.get_args(hint)[0]), True
        members = [m for m in _union_members(hint) if _is_param_dict(m)]
        if len(members) < 2:
            return None
        tag_field = _common_tag_field(members)
        if tag_field is None:
            return None
        untagged = [m for m in members if tag_field not in _required_keys(m)]
        if len(untagged) != 1:
            return None
        default = self.emit_struct(untagged[0])
        self.structs[default].own_tags = _literal_values(untagged[0], tag_field) or []
        others = [
            tagged
            for member in members
            if member is not untagged[0]
            for tagged in self.tagged(member, tag_field)
        ]
        return " | ".join(others), default, tag_field, in_list

    def annotation(self, hint: Any) -> str:
        hint = _unwrap(hint)
        origin = te.get_origin(hint)
        if hint is type(None):
            return "None"
        if hint in (str, int, float, bool):
            return hint.__name__
        if hint is object or hint is Any:
            return "Any"
        if origin is te.Literal or origin is typing.Literal:
            # Sorted: ``typing`` caches equal Literals, so their order depends on import order.
            return "Literal[" + ", ".join(sorted(repr(v) for v in te.get_args(hint))) + "]"
        if origin in _LIST_ORIGINS or _is_sequence_not_str(hint):
            (item,) = te.get_args(hint)
            return f"list[{self.annotation(item)}]"
        if origin in (dict, dict, _abc_mapping):
            key, value = te.get_args(hint)
            return f"dict[{self.annotation(key)}, {self.annotation(value)}]"
        if _is_param_dict(hint):
            return self.emit_struct(hint)
        if origin in (typing.Union, types.UnionType):
            return self.union_annotation(hint)
        raise GenerationError(f"no JSON translation for {hint!r}")

    def union_annotation(self, hint: Any) -> str:
        members = _union_members(hint)
        members = [m for m in members if not _no_json_form(m)]
        if any(_is_open_dict(m) for m in members):
            members = [m for m in members if not _is_param_dict(m)]
        if str in members:
            members = [m for m in members if not _is_string_literal(m)]
        dicts = [m for m in members if _is_param_dict(m)]
        parts: list[str] = []
        if len(dicts) > 1:
            tag_field = _common_tag_field(dicts)
            if tag_field is None or any(tag_field not in _required_keys(m) for m in dicts):
                raise GenerationError(f"cannot tag the union {hint!r}")
            parts.extend(tagged for m in dicts for tagged in self.tagged(m, tag_field))
            members = [m for m in members if not _is_param_dict(m)]
        parts.extend(self.annotation(m) for m in members)
        # ``X | None`` last, for readability; duplicates (two Literals of str) folded.
        unique = list(dict.fromkeys(p for p in parts if p != "None"))
        if "None" in parts:
            unique.append("None")
        return " | ".join(unique)

    # ------------------------------------------------------------------ output

    def render(self, sdk_version: str) -> str:
        lines = [
            f'"""The Messages request shape of the official SDK, anthropic=={sdk_version}.',
            "",
            "Generated by scripts/generate_sdk_params.py (``make sdk-params``); do not edit.",
            "Each ``Struct`` is one of the SDK's ``TypedDict`` request types, strict: unknown keys",
            "are refused, required keys required. Decoding a body with a root struct",
            "(:class:`MessageCreate`, :class:`MessageCountTokens` and their ``Beta`` forms) is the",
            "check that it is a body the SDK's types describe; batchyard.protocol.messages",
            "reads the fields an engine uses from its own lenient structs.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "from typing import Any, Literal",
            "",
            "import msgspec",
            "from msgspec import Raw, Struct",
            "",
            "",
            "class _Strict(Struct, forbid_unknown_fields=True, kw_only=True):",
            '    """Unknown keys are refused; a key may be left out unless it is required."""',
            "",
            "",
            "class _Tag(Struct):",
            '    """The discriminating key of a union with an untagged member, read first."""',
            "",
            "    type: Any = None",
            "",
            "",
            "def _check_member(",
            "    raw: Raw,",
            "    tagged: msgspec.json.Decoder[Any],",
            "    untagged: tuple[msgspec.json.Decoder[Any], frozenset[str | None]],",
            "    where: str,",
            ") -> None:",
            '    """A member of a union with one member whose tag may be left out: that member',
            '    when the tag is missing or its own, a tagged one otherwise."""',
            "    decoder, own_tags = untagged",
            "    try:",
            "        tag = msgspec.json.decode(raw, type=_Tag).type",
            "        (decoder if tag in own_tags else tagged).decode(raw)",
            "    except msgspec.ValidationError as exc:",
            '        raise ValueError(f"{exc} - in `{where}`") from None',
            "",
        ]
        decoders: list[str] = []
        for spec in sorted(self.structs.values(), key=lambda s: s.name):
            lines.extend(["", "", *self.render_struct(spec, decoders)])
            for tag in spec.tags[1:]:
                lines.extend(
                    [
                        "",
                        "",
                        f"class {_alias_name(spec.name, tag)}({spec.name}, tag={tag!r}):",
                        f'    """{spec.name} under its other tag, ``{tag}``."""',
                    ]
                )
        if decoders:
            lines.extend(["", "", *decoders])
        return "\n".join(lines) + "\n"

    def render_struct(self, spec: StructSpec, decoders: list[str]) -> list[str]:
        options = ""
        if spec.tag_field is not None:
            options = f", tag_field={spec.tag_field!r}, tag={spec.tags[0]!r}"
        lines = [f"class {spec.name}(_Strict{options}):"]
        if not [key for key, _, _ in spec.fields if key != spec.tag_field]:
            lines.append("    pass")
            return lines
        for key, annotation, required in spec.fields:
            if key == spec.tag_field:
                continue  # the tag is the struct's own config
            attribute = key + "_" if keyword.iskeyword(key) or not key.isidentifier() else key
            if not attribute.isidentifier():
                raise GenerationError(f"{spec.name}.{key} is not a usable name")
            renamed = f'name="{key}"' if attribute != key else ""
            if required:
                default = f" = msgspec.field({renamed})" if renamed else ""
                lines.append(f"    {attribute}: {annotation}{default}")
            else:
                nullable = annotation if annotation.endswith("None") else f"{annotation} | None"
                value = f"msgspec.field(default=None, {renamed})" if renamed else "None"
                lines.append(f"    {attribute}: {nullable} = {value}")
        if spec.deferred:
            lines.extend(["", "    def __post_init__(self) -> None:"])
            lines.append(
                '        """Check the unions msgspec cannot tag (a missing tag means one member):'
            )
            lines.extend(f"        ``{d[0]}`` without ``{d[3]}`` is {d[2]}." for d in spec.deferred)
            lines.append('        """')
        for key, union, default, _tag_field, in_list in spec.deferred:
            decoder = f"_{spec.name}_{key}"
            decoders.append(f"{decoder}_tagged = msgspec.json.Decoder({union})")
            own_tags = sorted(self.structs[default].own_tags)
            decoders.append(
                f"{decoder}_untagged = (msgspec.json.Decoder({default}), "
                f"frozenset([None, *{own_tags!r}]))"
            )
            check = f"_check_member(raw, {decoder}_tagged, {decoder}_untagged"
            if in_list:
                lines.extend(
                    [
                        f"        for index, raw in enumerate(self.{key} or ()):",
                        f'            {check}, f"{key}[{{index}}]")',
                    ]
                )
            else:
                lines.extend(
                    [
                        f"        if (raw := self.{key}) is not None:",
                        f'            {check}, "{key}")',
                    ]
                )
        return lines


# ---------------------------------------------------------------------- type inspection


def _alias_name(name: str, tag: str) -> str:
    return f"{name}_{tag}"


_LIST_ORIGINS = {list, list, typing.Iterable, typing.Sequence}
try:
    import collections.abc as _cabc

    _LIST_ORIGINS |= {_cabc.Iterable, _cabc.Sequence}
    _abc_mapping: Any = _cabc.Mapping
except ImportError:  # pragma: no cover
    _abc_mapping = dict


def _unwrap(hint: Any) -> Any:
    """Strip ``Required``/``NotRequired``/``Annotated`` wrappers."""
    while True:
        origin = te.get_origin(hint)
        if origin in (te.Required, te.NotRequired, te.Annotated):
            hint = te.get_args(hint)[0]
        else:
            return hint


def _is_required(typed_dict: Any, hint: Any) -> bool:
    """Whether a key is required. Read from the annotation, not ``__required_keys__``: the
    SDK's modules use ``from __future__ import annotations``, which hides ``Required`` from
    ``TypedDict``'s own bookkeeping."""
    while te.get_origin(hint) is te.Annotated:
        hint = te.get_args(hint)[0]
    origin = te.get_origin(hint)
    if origin is te.Required:
        return True
    if origin is te.NotRequired:
        return False
    return bool(getattr(typed_dict, "__total__", True))


def _required_keys(typed_dict: Any) -> set[str]:
    hints = te.get_type_hints(typed_dict, include_extras=True)
    return {key for key, hint in hints.items() if _is_required(typed_dict, hint)}


def _union_members(hint: Any) -> list[Any]:
    hint = _unwrap(hint)
    if te.get_origin(hint) in (typing.Union, types.UnionType):
        members: list[Any] = []
        for member in te.get_args(hint):
            members.extend(_union_members(member))
        return members
    return [hint]


def _is_param_dict(hint: Any) -> bool:
    return bool(te.is_typeddict(hint))


def _is_open_dict(hint: Any) -> bool:
    return te.get_origin(hint) in (dict, dict) and te.get_args(hint)[1] in (object, Any)


def _is_string_literal(hint: Any) -> bool:
    return te.get_origin(hint) in (te.Literal, typing.Literal) and all(
        isinstance(v, str) for v in te.get_args(hint)
    )


def _is_sequence_not_str(hint: Any) -> bool:
    return getattr(te.get_origin(hint), "__name__", "") == "SequenceNotStr"


def _no_json_form(hint: Any) -> bool:
    """File objects, paths and the SDK's response models (pydantic) in a param union."""
    from anthropic import BaseModel

    origin = te.get_origin(hint) or hint
    if isinstance(origin, type) and issubclass(origin, (BaseModel, os.PathLike)):
        return True
    return origin in (typing.IO,) or (isinstance(origin, type) and issubclass(origin, typing.IO))


def _literal_values(typed_dict: Any, key: str) -> list[Any] | None:
    hints = te.get_type_hints(typed_dict, include_extras=True)
    if key not in hints:
        return None
    values: list[Any] = []
    for member in _union_members(hints[key]):
        if member is type(None):
            continue
        if te.get_origin(member) not in (te.Literal, typing.Literal):
            return None
        values.extend(te.get_args(member))
    return values


def _tag_values(typed_dict: Any, key: str) -> list[str]:
    values = _literal_values(typed_dict, key)
    if not values or not all(isinstance(v, str) for v in values):
        raise GenerationError(f"{typed_dict.__name__}.{key} is not a string literal")
    return [str(v) for v in values]


def _common_tag_field(members: list[Any]) -> str | None:
    """The key every member holds as string literals no other member holds (``type`` first)."""
    candidates = set.intersection(*(set(te.get_type_hints(m)) for m in members))
    for key in sorted(candidates, key=lambda k: (k != "type", k)):
        values = [_literal_values(m, key) for m in members]
        if all(v and all(isinstance(x, str) for x in v) for v in values):
            flat = [x for v in values if v for x in v]
            if len(set(flat)) == len(flat):
                return key
    return None


# ---------------------------------------------------------------------- entry point


def generate() -> str:
    import anthropic

    generator = Generator()
    for name, module, typed_dict in ROOTS:
        generator.root(name, getattr(importlib.import_module(module), typed_dict))
    return _formatted(generator.render(anthropic.__version__))


def _formatted(source: str) -> str:
    """The module as ``ruff format`` lays it out (one field per line, unions wrapped)."""
    import subprocess

    ruff = Path(sys.executable).with_name("ruff")
    command = [
        str(ruff) if ruff.exists() else "ruff",
        "format",
        "--stdin-filename",
        str(OUTPUT),
        "-",
    ]
    result = subprocess.run(command, input=source, capture_output=True, text=True, check=True)
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the module is stale")
    args = parser.parse_args()
    text = generate()
    if args.check:
        stale = not OUTPUT.exists() or OUTPUT.read_text() != text
        print(f"{OUTPUT} is {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
