"""Grammar-constrained decoding: every token a constrained row samples keeps its answer valid.

The grammar engine is llguidance (the Rust library behind Guidance, also used by vLLM and
llama.cpp): a JSON Schema or a Lark grammar is compiled against the tokenizer, and a
matcher per row says which tokens may come next as a bitmask. Chosen over xgrammar by
measurement and weight (BENCHMARKS.md): both fill 64 rows' masks in under a millisecond
per step against a ~120 ms decode step, but xgrammar brings triton and a TVM runtime with it.

A request's :class:`~batchyard.protocol.structured.AnswerShape` becomes one grammar:

- ``output_config.format``: the JSON Schema itself; the answer is that JSON as text;
- a forced tool call (``tool_choice`` ``any`` / ``tool``): a call object
  ``{"name": ..., "input": ...}`` (one alternative per callable tool), generated after a
  ``<tool_call>`` tag the prompt already ends with;
- ``auto`` with tools: free text, or a tool call after the tag. The text cannot contain
  ``<`` (llguidance's lexemes are greedy, so text that may contain ``<`` would swallow the
  tag); with a format as well, the JSON document or the tagged call.

Three choices make small models' JSON better without leaving the schema: objects whose
schema lists ``properties`` but does not say whether others may appear get no others (a 135M
model otherwise invents properties until it runs out of tokens), bounds the SDK moved into
a description (``{minimum: 1, maximum: 5}``, :mod:`batchyard.engines.schema_hints`) are
enforced, so the client's own validation of the answer passes, and JSON is written the way
``json.dumps`` writes it (``", "`` and ``": "``, no newlines or indentation to spend tokens
on). Every answer is still valid against the schema as given.

Rows without a grammar share the batch untouched: masks are applied to constrained rows only.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import llguidance
import llguidance.hf
import llguidance.torch
import torch

from batchyard.engines.schema_hints import with_hints
from batchyard.errors import ParamsError

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions
from batchyard.protocol.structured import AnswerShape, ToolSpec

#: How JSON is written: as ``json.dumps`` does; ``oneOf`` taken as ``anyOf`` (an answer
#: matching one alternative is what is meant, and exclusivity cannot be enforced per token).
_JSON_OPTIONS: JsonCompileOptions = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    "coerce_one_of": True,
}
#: Where sub-schemas sit in a schema (``allOf`` is left alone: closing the objects it merges
#: would make them exclude each other's properties).
_SCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")

#: Compiled grammars kept per engine (a few kB each).
_CACHED_GRAMMARS = 256

#: What opens a tool call in the model's answer (and in the history shown to it).
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"


@dataclass(frozen=True)
class Grammar:
    """A compiled grammar; :meth:`matcher` starts a row on it."""

    source: str
    tokenizer: llguidance.LLTokenizer

    def matcher(self) -> llguidance.LLMatcher:
        return llguidance.LLMatcher(self.tokenizer, self.source)


class GrammarCompiler:
    """Compiles answer shapes for one tokenizer (its llguidance view is built on first use,
    ~0.4 s, so models that never see a constrained request do not pay for it)."""

    def __init__(self, tokenizer: Any, vocab_size: int, eos_token_ids: Sequence[int]) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._eos = sorted(eos_token_ids)
        self._llg: llguidance.LLTokenizer | None = None
        self._lock = threading.Lock()
        #: Recently compiled grammars by shape: a batch's requests usually share one.
        self._compiled: OrderedDict[str, Grammar] = OrderedDict()

    def compile(self, shape: AnswerShape, *, forced_open: bool) -> Grammar | None:
        """The grammar of ``shape`` (``None`` for free text); ``forced_open``: the prompt
        already ends with the tool-call tag. :class:`ParamsError` names a schema llguidance
        cannot compile."""
        if shape.free:
            return None
        # Not sorted: a schema's property order is the answer's order.
        key = json.dumps(
            [shape.json_schema, [vars(tool) for tool in shape.callable_tools], forced_open]
        )
        with self._lock:
            if (cached := self._compiled.get(key)) is not None:
                self._compiled.move_to_end(key)
                return cached
        grammar = self._compile(shape, forced_open=forced_open)
        with self._lock:
            self._compiled[key] = grammar
            if len(self._compiled) > _CACHED_GRAMMARS:
                self._compiled.popitem(last=False)
        return grammar

    def _compile(self, shape: AnswerShape, *, forced_open: bool) -> Grammar:
        tokenizer = self._llg_tokenizer()
        for field, schema in _schemas(shape):
            _check(field, _json_grammar(schema), tokenizer)
        call = _call_schema(shape.callable_tools) if shape.callable_tools else None
        if forced_open:
            assert call is not None
            source = _json_grammar(call)
        elif call is None:
            assert shape.json_schema is not None  # not free, no tools: a format
            source = _json_grammar(shape.json_schema)
        else:
            text = "%json " + _lark_json(shape.json_schema) if shape.json_schema else "TEXT"
            tagged = f"{json.dumps(TOOL_CALL_OPEN)} call"
            rules = (
                f"start: answer | {tagged}\nanswer: {text}\n"
                if shape.json_schema
                else f"start: TEXT ({tagged})?\nTEXT: /[^<]*/\n"
            )
            source = llguidance.LLMatcher.grammar_from_lark(
                rules + f"call: %json {_lark_json(call)}\n"
            )
        _check("tools", source, tokenizer)
        return Grammar(source, tokenizer)

    def _llg_tokenizer(self) -> llguidance.LLTokenizer:
        with self._lock:
            if self._llg is None:
                self._llg = llguidance.hf.from_tokenizer(
                    self._tokenizer, n_vocab=self._vocab_size, eos_token=self._eos
                )
            return self._llg


def _schemas(shape: AnswerShape) -> list[tuple[str, dict[str, Any]]]:
    """Each schema the request gives, with the field that gave it (to name in an error)."""
    located = [(f"tools.{tool.index}.input_schema", tool.input_schema) for tool in shape.tools]
    if shape.json_schema is not None:
        located.append((f"{shape.format_field}.schema", shape.json_schema))
    return located


def _json_grammar(schema: dict[str, Any]) -> str:
    return llguidance.LLMatcher.grammar_from_json_schema(_closed(schema), overrides=_JSON_OPTIONS)


def _lark_json(schema: dict[str, Any]) -> str:
    """``schema`` closed, with the JSON options, for a ``%json`` rule of a Lark grammar."""
    return json.dumps({**_closed(schema), "x-guidance": _JSON_OPTIONS})


def _closed(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` wherever an object lists properties,
    leaves other properties open by default and requires none beyond those listed, and with
    the bounds its descriptions hint at (see the module docstring)."""
    if not isinstance(schema, dict):
        return schema
    closed = dict(with_hints(schema))
    properties = closed.get("properties")
    if (
        isinstance(properties, dict)
        and "additionalProperties" not in closed
        and set(closed.get("required") or ()) <= set(properties)
    ):
        closed["additionalProperties"] = False
    for key in _SCHEMA_LISTS:
        if isinstance(closed.get(key), list):
            closed[key] = [_closed(item) for item in closed[key]]
    for key in _SCHEMA_MAPS:
        if isinstance(closed.get(key), dict):
            closed[key] = {name: _closed(item) for name, item in closed[key].items()}
    for key in _SCHEMA_VALUES:
        if key in closed:
            closed[key] = _closed(closed[key])
    return closed


def _check(field: str, source: str, tokenizer: llguidance.LLTokenizer) -> None:
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(source, tokenizer)
    if failed:
        raise ParamsError(f"{field}: cannot be enforced: {'; '.join(messages)}")


def _call_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """``{"name": <a tool's name>, "input": <that tool's input>}``, one alternative per tool.

    Each input schema is nested in the call's, so its references (``#/$defs/...``, ``#``)
    would point into the wrapper: its definitions move up to the wrapper's ``$defs`` under a
    per-tool prefix, and its references are rewritten to match.
    """
    definitions: dict[str, Any] = {}
    calls = []
    for position, tool in enumerate(tools):
        home = "#/properties/input" if len(tools) == 1 else f"#/anyOf/{position}/properties/input"
        prefix = f"tool{position}_"
        schema = dict(tool.input_schema)
        for key in ("$defs", "definitions"):
            for name, definition in (schema.pop(key, None) or {}).items():
                definitions[prefix + name] = _rebased(definition, home, prefix)
        calls.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": tool.name},
                    "input": _rebased(schema, home, prefix),
                },
                "required": ["name", "input"],
                "additionalProperties": False,
            }
        )
    call = calls[0] if len(calls) == 1 else {"anyOf": calls}
    return {**call, "$defs": definitions} if definitions else call


def _rebased(schema: Any, home: str, prefix: str) -> Any:
    """``schema`` with its local references rewritten for a schema now at ``home`` whose
    definitions moved to the root's ``$defs`` under ``prefix``."""
    if isinstance(schema, list):
        return [_rebased(item, home, prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    rebased = {key: _rebased(value, home, prefix) for key, value in schema.items()}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        for key in ("$defs", "definitions"):
            if ref.startswith(f"#/{key}/"):
                rebased["$ref"] = f"#/$defs/{prefix}{ref.removeprefix(f'#/{key}/')}"
                break
        else:
            rebased["$ref"] = home + ref.removeprefix("#")
    return rebased


def constrain(logits: torch.Tensor, matchers: Sequence[llguidance.LLMatcher | None]) -> None:
    """Mask, in place, the logits of each row that has a matcher to the tokens it allows."""
    constrained = [(row, matcher) for row, matcher in enumerate(matchers) if matcher is not None]
    if not constrained:
        return
    rows = [row for row, _ in constrained]
    vocab = logits.shape[-1]
    bitmask = llguidance.torch.allocate_token_bitmask(len(rows), vocab)
    for slot, (_, matcher) in enumerate(constrained):
        llguidance.torch.fill_next_token_bitmask(matcher, bitmask, slot)
    shifts = torch.arange(32, dtype=torch.int32)
    allowed = ((bitmask[:, :, None] >> shifts) & 1).bool().reshape(len(rows), -1)[:, :vocab]
    index = torch.tensor(rows, device=logits.device)
    logits[index] = logits[index].masked_fill(~allowed.to(logits.device), float("-inf"))
