"""The ``local`` engine: open-weights chat models in-process, batched (CPU or CUDA)."""

from __future__ import annotations

from batchyard.engines.local.engine import LocalEngine

__all__ = ["LocalEngine"]
