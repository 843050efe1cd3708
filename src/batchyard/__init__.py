"""batchyard: a self-hosted, Anthropic-compatible Message Batches service."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
