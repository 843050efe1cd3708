"""``LocalEngine``: open-weights chat models run in-process with PyTorch + transformers."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from batchyard.config import ModelConfig
from batchyard.engines.base import AnswerSink
from batchyard.engines.capabilities import Capabilities
from batchyard.engines.local.attention import use_decode_attention
from batchyard.engines.local.batcher import Batcher, Completion, Job
from batchyard.engines.local.grammar import TOOL_CALL_OPEN, Grammar, GrammarCompiler
from batchyard.engines.local.options import LocalOptions, parse_options
from batchyard.engines.local.packed import pack_linear_layers
from batchyard.engines.local.prompt import LOCAL_CAPABILITIES, Prompt, prompt_ids
from batchyard.engines.local.sampling import DEFAULT_TEMPERATURE, SamplingParams
from batchyard.engines.local.weights import LoadedModel, embedded_gguf_path, load_model
from batchyard.errors import EngineError, ParamsError
from batchyard.ids import message_id, tool_use_id
from batchyard.protocol.messages import (
    ContentBlock,
    Message,
    MessageCountTokensParams,
    MessageCreateParams,
    StopReason,
    TextBlock,
    ToolUseBlock,
    Usage,
)
from batchyard.protocol.structured import ToolSpec


class LocalEngine:
    """Answers Messages requests with a local model; concurrent calls share forward passes.

    Construct with :meth:`from_config`; :meth:`start` loads the weights (seconds once the
    converted-weights cache exists) and starts the generation thread.
    """

    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        self.device = resolve_device(options)
        self.dtype = resolve_dtype(options, self.device)
        self.loaded: LoadedModel | None = None
        self._batcher: Batcher | None = None
        self._grammars: GrammarCompiler | None = None
        self._context_window = 0
        #: One thread tokenizes prompts, off the event loop and one at a time (a fast
        #: tokenizer is not safe to call from several threads at once).
        self._tokenizing = ThreadPoolExecutor(1, thread_name_prefix="batchyard-tokenize")

    @classmethod
    def from_config(cls, model: ModelConfig) -> LocalEngine:
        """Build from a ``[[models]]`` entry; ``ConfigError`` names a bad option."""
        return cls(parse_options(model))

    @property
    def tokenizer(self) -> Any:
        return self._require_loaded().tokenizer

    async def start(self) -> None:
        if self.loaded is not None:
            return
        if self.options.num_threads:
            torch.set_num_threads(self.options.num_threads)
        path = Path(self.options.path).expanduser() if self.options.path else embedded_gguf_path()
        loaded = await asyncio.to_thread(
            load_model, path, self.options.resolved_cache_dir(), self.device, self.dtype
        )
        config = loaded.model.config
        self._context_window = int(config.max_position_embeddings)
        if self.options.kernels == "auto" and self.device.type == "cpu":
            await asyncio.to_thread(_use_cpu_kernels, loaded.model)
        eos = _eos_token_ids(loaded)
        batcher = Batcher(
            loaded.model,
            loaded.tokenizer,
            device=self.device,
            max_batch_size=self.options.max_batch_size,
            max_batch_tokens=self.options.max_batch_tokens,
            eos_token_ids=eos,
        )
        batcher.start()
        self._grammars = GrammarCompiler(loaded.tokenizer, int(config.vocab_size), sorted(eos))
        self.loaded, self._batcher = loaded, batcher

    @property
    def max_output_tokens(self) -> int | None:
        """Its context window (less one prompt token), once the weights are loaded."""
        return self._context_window - 1 if self.loaded is not None else None

    @property
    def upstream(self) -> bool:
        """It answers here."""
        return False

    @property
    def concurrency(self) -> int:
        """Its batch: every request it can decode together."""
        return self.options.max_batch_size

    @property
    def max_input_tokens(self) -> int | None:
        """Its context window, once the weights are loaded (a prompt leaves at least one
        token of it for the answer, or is refused)."""
        return self._context_window if self.loaded is not None else None

    @property
    def capabilities(self) -> Capabilities:
        """Text in, text out; tools and output formats enforced by grammar (checked in
        :func:`~batchyard.engines.local.prompt.chat_turns`)."""
        return LOCAL_CAPABILITIES

    async def aclose(self) -> None:
        batcher, self._batcher, self.loaded = self._batcher, None, None
        if batcher is not None:
            await asyncio.to_thread(batcher.close)
        self._tokenizing.shutdown(wait=False, cancel_futures=True)

    async def create_message(
        self, params: MessageCreateParams, sink: AnswerSink | None = None
    ) -> Message:
        batcher = self._batcher
        if batcher is None:
            raise EngineError("api_error", "the local engine is not started")
        prompt = await self._prompt(params, compile_grammar=True)
        job = self._job(params, prompt)
        if job.max_new_tokens == 0:  # ``max_tokens: 0``: nothing to generate, only to count
            return Message(
                id=message_id(),
                model=params.model,
                content=[],
                stop_reason="max_tokens",
                stop_sequence=None,
                usage=Usage(input_tokens=len(job.prompt), output_tokens=0),
            )
        # A tool call is not text: an answer that may hold one is sent whole, not streamed.
        if sink is not None and sink.streams and not prompt.shape.callable_tools:
            sink.prompt_read(len(job.prompt))
            loop = asyncio.get_running_loop()
            text = sink.text

            def forward(piece: str) -> None:  # on the generation thread
                loop.call_soon_threadsafe(text, piece)

            job.on_text = forward
        batcher.submit(job)
        completion = await asyncio.wrap_future(job.future)
        content, stop_reason = _answer(prompt, completion)
        return Message(
            id=message_id(),
            model=params.model,
            content=content,
            stop_reason=stop_reason,
            stop_sequence=completion.stop_sequence,
            usage=Usage(input_tokens=len(job.prompt), output_tokens=completion.output_tokens),
        )

    async def count_tokens(self, params: MessageCountTokensParams) -> int:
        """Exactly the prompt :meth:`create_message` would run: the same chat-template ids,
        refusing the same content. A prompt longer than the context window is still counted
        (finding that out is what counting is for); create refuses it."""
        return len((await self._prompt(params, compile_grammar=False)).ids)

    async def _prompt(
        self, params: MessageCountTokensParams, *, compile_grammar: bool
    ) -> _Prepared:
        """The prompt's ids (and its grammar), made off the event loop: a 32 MiB prompt
        takes seconds to tokenize, which would stall every other request on this server."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._tokenizing, self._prepare, params, compile_grammar)

    def _prepare(self, params: MessageCountTokensParams, compile_grammar: bool) -> _Prepared:
        prompt = prompt_ids(self.tokenizer, params)
        grammar = None
        if compile_grammar and self._grammars is not None:
            grammar = self._grammars.compile(prompt.shape, forced_open=prompt.forced_call)
        return _Prepared(prompt.ids, prompt.shape, prompt.forced_call, grammar)

    def _job(self, params: MessageCreateParams, prompt: _Prepared) -> Job:
        # No cap but the context window (a configured cap is checked before the engine): a
        # longer answer stops there, with ``model_context_window_exceeded``, as the API's do.
        room = self._context_window - len(prompt.ids)
        if room < 1:
            raise ParamsError(
                f"prompt is too long: {len(prompt.ids)} tokens > {self._context_window - 1} maximum"
            )
        length_stop: StopReason = (
            "max_tokens" if params.max_tokens <= room else ("model_context_window_exceeded")
        )
        return Job(
            prompt=prompt.ids,
            max_new_tokens=min(params.max_tokens, room),
            length_stop=length_stop,
            sampling=_sampling(params),
            stop_sequences=params.stop_sequences or (),
            grammar=prompt.grammar,
        )

    def _require_loaded(self) -> LoadedModel:
        if self.loaded is None:
            raise EngineError("api_error", "the local engine is not started")
        return self.loaded


@dataclass(frozen=True)
class _Prepared(Prompt):
    """A prompt with the grammar its answer is generated under (``None``: free text)."""

    grammar: Grammar | None = None


def _answer(prompt: _Prepared, completion: Completion) -> tuple[list[ContentBlock], StopReason]:
    """The answer's blocks: text, or a tool call where the grammar made one.

    A forced call is all the answer (the prompt ended with the tag). Under ``auto`` a call
    follows the tag: after text that cannot contain ``<``, or, with a format, in place of the
    JSON document (whose strings may contain the tag, so only a leading tag is a call). A
    call the length limit (or a stop sequence) cut short is still a ``tool_use`` block, with
    the input left empty, when its tool is known, as the API returns an incomplete call.
    """
    text = completion.text
    shape = prompt.shape
    if prompt.forced_call:
        before, call = "", text
    elif shape.callable_tools and shape.json_schema is not None:
        if not text.startswith(TOOL_CALL_OPEN):
            return [TextBlock(text=text)], completion.stop_reason
        before, call = "", text.removeprefix(TOOL_CALL_OPEN)
    elif shape.callable_tools and TOOL_CALL_OPEN in text:
        before, call = text.split(TOOL_CALL_OPEN, 1)
    else:
        return [TextBlock(text=text)], completion.stop_reason
    blocks: list[ContentBlock] = [TextBlock(text=before)] if before.strip() else []
    if completion.stop_reason == "end_turn":
        parsed = json.loads(call)
        blocks.append(ToolUseBlock(id=tool_use_id(), name=parsed["name"], input=parsed["input"]))
        return blocks, "tool_use"
    name = _cut_call_name(call, shape.callable_tools)
    if name is None:
        return [TextBlock(text=text)], completion.stop_reason
    blocks.append(ToolUseBlock(id=tool_use_id(), name=name, input={}))
    return blocks, completion.stop_reason


def _cut_call_name(call: str, tools: tuple[ToolSpec, ...]) -> str | None:
    """The tool a call cut short was calling: its name if written out, or the only tool."""
    names = [tool.name for tool in tools]
    written = [name for name in names if call.startswith(json.dumps({"name": name})[:-1])]
    if written:
        return written[0]
    return names[0] if len(names) == 1 else None


def _use_cpu_kernels(model: Any) -> None:
    """Decode attention and oneDNN-packed linear layers (the output layer too), the packing
    where it is measured faster; greedy answers stay those of transformers' own layers (see
    their modules and BENCHMARKS.md)."""
    use_decode_attention(model)
    pack_linear_layers(model)


def resolve_device(options: LocalOptions) -> torch.device:
    if options.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise EngineError("api_error", "device = 'cuda' but torch sees no CUDA device")
    return torch.device(options.device)


def resolve_dtype(options: LocalOptions, device: torch.device) -> torch.dtype:
    """float32 on CPU (bfloat16 is faster where the CPU has bfloat16 instructions, but it
    changed 44 of 64 greedy answers, BENCHMARKS.md); on CUDA, bfloat16 where supported, else
    float16."""
    if options.dtype != "auto":
        dtype: torch.dtype = getattr(torch, options.dtype)
        return dtype
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _sampling(params: MessageCreateParams) -> SamplingParams:
    temperature = DEFAULT_TEMPERATURE if params.temperature is None else params.temperature
    return SamplingParams(
        temperature=temperature,
        top_p=1.0 if params.top_p is None else params.top_p,
        top_k=params.top_k or 0,
    )


def _eos_token_ids(loaded: LoadedModel) -> set[int]:
    """End-of-turn ids from the generation config, plus the tokenizer's own."""
    configured = loaded.model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(loaded.tokenizer.eos_token_id)
    return {int(token) for token in ids if token is not None}
