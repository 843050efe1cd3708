"""The ``[[models]]`` options of a ``local`` model, checked once when the engine is built."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from batchyard.config import ModelConfig, engine_options

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "float16", "bfloat16"]
Kernels = Literal["auto", "reference"]


class LocalOptions(msgspec.Struct, forbid_unknown_fields=True):
    """Engine options; every field has a default so ``smollm2-135m`` needs none.

    ``max_batch_tokens`` bounds ``rows x longest reserved row`` (prompt + ``max_tokens``), the
    shape of the key/value cache, so memory stays flat however many requests are in flight.
    """

    #: A ``.gguf`` file or a transformers model directory; empty = the embedded SmolLM2 GGUF.
    path: str = ""
    device: Device = "auto"
    #: ``auto`` = float32 on CPU (bfloat16 changes greedy answers), bfloat16/float16 on CUDA.
    dtype: DType = "auto"
    max_batch_size: Annotated[int, Meta(ge=1)] = 64
    max_batch_tokens: Annotated[int, Meta(ge=1)] = 131_072
    #: Where de-quantized GGUF weights are cached; empty = ``$BATCHYARD_CACHE_DIR`` or
    #: ``~/.cache/batchyard/models``.
    cache_dir: str = ""
    #: CPU threads for torch; 0 = torch's default (one per core).
    num_threads: Annotated[int, Meta(ge=0)] = 0
    #: ``auto``: on CPU, batchyard's decode attention and linear layers on oneDNN with packed
    #: weights (where measured faster than MKL); ``reference``: transformers' own layers and
    #: SDPA, for comparing (the same greedy answers).
    kernels: Kernels = "auto"

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        if env := os.environ.get("BATCHYARD_CACHE_DIR"):
            return Path(env).expanduser() / "models"
        return Path.home() / ".cache" / "batchyard" / "models"


def parse_options(model: ModelConfig) -> LocalOptions:
    """Convert the free-form options of ``model``; :class:`ConfigError` names the bad key."""
    return engine_options(model, LocalOptions)
