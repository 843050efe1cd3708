"""The generated request shape (``protocol/sdk_params.py``) against the SDK's own types.

The module is generated from the pinned SDK (``scripts/generate_sdk_params.py``). These tests
fail when it is stale, when the SDK's types accept a body that batchyard refuses, or the
reverse; and when the structs engines read miss a key, which would let an option through
unrefused and unhonoured. Examples come from ``tests/sdk_examples.py``, which reads the types
independently of the generator. The oldest supported SDK (0.75, installed apart) runs the
same walk in its own process: what its types accept must still be accepted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from harness import OLD_PYTHON_SDK
from sdk_examples import Examples, Invalid, roots

from batchyard.errors import ParamsError
from batchyard.protocol import sdk_params
from batchyard.protocol.messages import (
    MessageCountTokensParams,
    MessageCreateParams,
    MessageParam,
    decode_count_tokens_params,
    decode_params,
)

REPO = Path(__file__).resolve().parents[2]

DECODERS = {
    name: msgspec.json.Decoder(getattr(sdk_params, name))
    for name in (
        "MessageCreate",
        "MessageCountTokens",
        "BetaMessageCreate",
        "BetaMessageCountTokens",
    )
}
#: What engines read each root as: every key of the root must be one of its fields.
READERS: dict[str, type[MessageCountTokensParams]] = {
    "MessageCreate": MessageCreateParams,
    "BetaMessageCreate": MessageCreateParams,
    "MessageCountTokens": MessageCountTokensParams,
    "BetaMessageCountTokens": MessageCountTokensParams,
}


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate_sdk_params", REPO / "scripts" / "generate_sdk_params.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_module_is_generated_from_the_installed_sdk() -> None:
    """A bumped SDK pin needs ``make sdk-params``: the diff is the wire contract's change."""
    generated = _generator().generate()
    checked_in = (REPO / "src" / "batchyard" / "protocol" / "sdk_params.py").read_text()
    assert generated == checked_in, "protocol/sdk_params.py is stale: run `make sdk-params`"


def _valid_bodies() -> Iterator[tuple[str, Any]]:
    examples = Examples()
    for name, typed_dict in roots():
        for body in examples.valid(typed_dict):
            yield name, body


def test_every_body_the_sdk_types_accept_is_accepted_and_readable() -> None:
    failures: list[str] = []
    count = 0
    for name, body in _valid_bodies():
        count += 1
        raw = json.dumps(body).encode()
        try:
            DECODERS[name].decode(raw)
            msgspec.json.decode(raw, type=READERS[name])
        except msgspec.ValidationError as exc:
            failures.append(f"{name}: {exc}\n  {raw[:400]!r}")
    assert count > 1000, f"only {count} examples: the walk lost its way"
    assert not failures, f"{len(failures)} of {count} refused:\n" + "\n".join(failures[:15])


#: The API's own rules that the types cannot carry (docs/protocol.md §7): a body the types
#: accept may still break one of them, and is then refused with exactly that message.
API_RULES = (
    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    "`max_tokens` must be greater than `thinking.budget_tokens`.",
)


def test_full_validation_refuses_an_sdk_valid_body_only_for_an_api_rule() -> None:
    """``decode_params`` adds hand-written rules to the SDK's shape; none may refuse a body
    the types accept for any reason but the API's own rules."""
    refused: list[str] = []
    for name, body in _valid_bodies():
        beta = name.startswith("Beta")
        raw = json.dumps(body).encode()
        try:
            if name.endswith("Create"):
                decode_params(raw, in_batch=False, beta=beta)
            else:
                decode_count_tokens_params(raw, beta=beta)
        except ParamsError as exc:
            if exc.message not in API_RULES:
                refused.append(f"{name}: {exc.message}\n  {raw[:300]!r}")
    assert not refused, f"{len(refused)} refused:\n" + "\n".join(refused[:15])


def test_a_beta_header_never_refuses_a_stable_body() -> None:
    """Older SDKs send ``anthropic-beta`` on every batch call: a body valid without the header
    must stay valid with it."""
    beta_of = {"MessageCreate": "BetaMessageCreate", "MessageCountTokens": "BetaMessageCountTokens"}
    refused: list[str] = []
    for name, body in _valid_bodies():
        if name in beta_of:
            try:
                DECODERS[beta_of[name]].decode(json.dumps(body).encode())
            except msgspec.ValidationError as exc:
                refused.append(f"{name}: {exc}")
    assert not refused, f"{len(refused)} refused under beta:\n" + "\n".join(refused[:15])


def _tag_field(typed_dict: Any) -> str | None:
    """The key a generated struct takes as its msgspec tag, if it is tagged."""
    for struct in vars(sdk_params).values():
        is_struct = isinstance(struct, type) and issubclass(struct, msgspec.Struct)
        if is_struct and struct.__name__.endswith(typed_dict.__name__):
            tag_field = struct.__struct_config__.tag_field
            if tag_field is not None:
                return tag_field
    return None


def _is_exempt(bad: Invalid) -> bool:
    """msgspec reads a tagged struct outside a union without its tag (the one place the
    generated module is more lenient than the types): a text block in ``system`` may leave
    out ``"type": "text"``."""
    return bad.missing is not None and bad.standalone and bad.missing == _tag_field(bad.typed_dict)


def test_every_body_the_sdk_types_refuse_is_refused() -> None:
    examples = Examples()
    accepted: list[str] = []
    count = 0
    for name, typed_dict in roots():
        for bad in examples.invalid(typed_dict):
            if _is_exempt(bad):
                continue
            count += 1
            try:
                DECODERS[name].decode(json.dumps(bad.body).encode())
            except msgspec.ValidationError:
                continue
            accepted.append(f"{name}: {bad.why}: {json.dumps(bad.body)[:300]}")
    assert count > 1000, f"only {count} invalid examples: the walk lost its way"
    assert not accepted, f"{len(accepted)} of {count} accepted:\n" + "\n".join(accepted[:15])


def test_engines_read_every_key_of_every_root_and_turn() -> None:
    """A key engines do not read could not be refused by an engine that cannot honour it."""
    for name, reader in READERS.items():
        root = getattr(sdk_params, name)
        missing = set(root.__struct_fields__) - set(reader.__struct_fields__)
        assert not missing, f"{reader.__name__} lacks {sorted(missing)} of {name}"
        turns = typing.get_args(typing.get_type_hints(root)["messages"])[0]
        for turn in typing.get_args(turns):
            missing = set(turn.__struct_fields__) - set(MessageParam.__struct_fields__)
            assert not missing, f"MessageParam lacks {sorted(missing)} of {turn.__name__}"


def test_what_the_oldest_supported_sdk_sends_is_accepted() -> None:
    """Older SDKs send keys the latest types dropped (``temperature``, the beta
    ``output_format``): those must still be taken."""
    assert OLD_PYTHON_SDK.is_dir(), f"{OLD_PYTHON_SDK} is missing: run `make install`"
    environment = {**os.environ, "PYTHONPATH": str(OLD_PYTHON_SDK)}
    walk = subprocess.run(
        [sys.executable, str(REPO / "tests" / "sdk_examples.py")],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    failures: list[str] = []
    lines = walk.stdout.splitlines()
    for line in lines:
        example = json.loads(line)
        raw = json.dumps(example["body"]).encode()
        try:
            DECODERS[example["root"]].decode(raw)
        except msgspec.ValidationError as exc:
            failures.append(f"{example['root']}: {exc}\n  {raw[:300]!r}")
    assert len(lines) > 500
    assert not failures, f"{len(failures)} of {len(lines)} refused:\n" + "\n".join(failures[:15])
