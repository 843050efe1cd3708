"""What an engine honours, the one check that refuses the rest, and how ``/v1/models`` says it.

No engine may silently ignore what a request asks for: a tool it cannot call, an output
format it cannot enforce, thinking it cannot do. An engine that runs requests here (local,
simulated) declares its :class:`Capabilities` and calls :func:`refuse_unsupported` on every
request, create and count alike, so the client gets an ``invalid_request_error`` naming the
field instead of an answer that quietly did something else. A relay declares none: its
upstream decides, and ``/v1/models`` reports what the upstream says of its model.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchyard.errors import ParamsError
from batchyard.protocol.messages import MessageCountTokensParams
from batchyard.protocol.models import (
    CapabilitySupport,
    ContextManagementCapability,
    EffortCapability,
    ModelCapabilities,
    ServerToolsCapability,
    ThinkingCapability,
    ThinkingTypes,
)


@dataclass(frozen=True)
class Capabilities:
    """The request features an engine honours (everything else here is refused)."""

    tools: bool = False
    thinking: bool = False
    structured_outputs: bool = False
    image_input: bool = False

    def wire(self) -> ModelCapabilities:
        """The ``capabilities`` object of ``GET /v1/models``, every key present."""
        no = CapabilitySupport(supported=False)
        return ModelCapabilities(
            batch=CapabilitySupport(supported=True),
            citations=no,
            code_execution=no,
            context_management=ContextManagementCapability(supported=False),
            effort=EffortCapability(supported=False, low=no, medium=no, high=no, max=no),
            image_input=CapabilitySupport(supported=self.image_input),
            pdf_input=no,
            server_tools=ServerToolsCapability(supported=False, code_execution=no, web_search=no),
            structured_outputs=CapabilitySupport(supported=self.structured_outputs),
            thinking=ThinkingCapability(
                supported=self.thinking,
                types=ThinkingTypes(
                    adaptive=no,
                    between_tools=no,
                    disabled=CapabilitySupport(supported=True),
                    enabled=CapabilitySupport(supported=self.thinking),
                ),
            ),
        )


#: A model that reads text and writes text, and nothing more.
TEXT_ONLY = Capabilities()


#: Keys every engine here takes as asked: the prompt, the generation settings, and options
#: that change nothing in an answer made on this machine (who asks, where to run, a cache
#: hint: best effort at Anthropic too). Any other key a request sets is checked below or
#: refused by name; a key a new SDK adds is refused until an engine says how it honours it.
TAKEN_AS_ASKED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "metadata",
        "service_tier",
        "inference_geo",
        "user_profile_id",
        "workspace_id",
        "cache_control",
    }
)
#: Keys with their own rule in :func:`refuse_unsupported`.
_CHECKED = frozenset(
    {"tools", "tool_choice", "thinking", "output_config", "output_format", "speed"}
)


def refuse_unsupported(
    params: MessageCountTokensParams, capabilities: Capabilities, model: str
) -> None:
    """Raise :class:`ParamsError` naming the first field this engine would not honour."""
    why = f"not supported by {model}"
    if params.tools and not capabilities.tools:
        raise ParamsError(f"tools: tool use is {why}")
    choice = (params.tool_choice or {}).get("type")
    # "none", and "auto" with no tools, ask for no tool call: any model honours that.
    if choice in ("any", "tool") and not capabilities.tools:
        raise ParamsError(f"tool_choice: tool use is {why}")
    thinking = (params.thinking or {}).get("type", "disabled")
    if thinking != "disabled" and not (capabilities.thinking and thinking == "enabled"):
        raise ParamsError(f"thinking: {thinking!r} thinking is {why}")
    for key, value in (params.output_config or {}).items():
        if value is not None and (key != "format" or not capabilities.structured_outputs):
            raise ParamsError(f"output_config.{key}: {why}")
    if params.output_format is not None and not capabilities.structured_outputs:
        raise ParamsError(f"output_format: {why}")
    if params.speed not in (None, "standard"):
        raise ParamsError(f"speed: {params.speed!r} is {why}")
    for key in params.__struct_fields__:
        if key in TAKEN_AS_ASKED or key in _CHECKED:
            continue
        if getattr(params, key) is not None:
            raise ParamsError(f"{key}: {why}")
    for index, message in enumerate(params.messages):
        for key in message.__struct_fields__:  # a (beta) system turn's own options
            if key not in ("role", "content") and getattr(message, key) is not None:
                raise ParamsError(f"messages.{index}.{key}: {why}")
