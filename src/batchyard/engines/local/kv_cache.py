"""A key/value cache whose rows can leave and join between decode steps.

Rows are right-aligned: each row's tokens occupy the last columns, padding (masked out) sits
on the left. That alignment is what lets a finished row be dropped (select the survivors), a
new group be merged in (left-pad the shorter side, concatenate rows), and columns that are
padding for every row be trimmed away.

Transformers' ``DynamicLayer`` grows by ``torch.cat`` on every step, copying the whole cache
each time (28% of a 64-row decode step here). :class:`_GrowableLayer` writes into a buffer with
spare columns and only reallocates when they run out.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, DynamicLayer

#: Spare columns allocated when a layer's buffer runs out.
_GROWTH = 64


class _GrowableLayer(DynamicLayer):  # type: ignore[no-untyped-call]  # untyped upstream hook
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.length = 0
        self.key_buffer = torch.empty(0)
        self.value_buffer = torch.empty(0)
        #: The filled part of the buffers; ``keys``/``values`` alias them for transformers.
        self.filled_keys = self.key_buffer
        self.filled_values = self.value_buffer

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        new = key_states.shape[-2]
        if not self.is_initialized:
            self.is_initialized = True
            self.device = key_states.device
            self.key_buffer = key_states.new_empty(_with_columns(key_states, new + _GROWTH))
            self.value_buffer = value_states.new_empty(_with_columns(value_states, new + _GROWTH))
        elif self.length + new > self.key_buffer.shape[-2]:
            self._reserve(self.length + new + _GROWTH)
        self.key_buffer[:, :, self.length : self.length + new] = key_states
        self.value_buffer[:, :, self.length : self.length + new] = value_states
        self.length += new
        self._refresh_views()
        return self.filled_keys, self.filled_values

    def get_seq_length(self) -> int:
        return self.length

    def _reserve(self, columns: int) -> None:
        keys = self.key_buffer.new_empty(_with_columns(self.key_buffer, columns))
        values = self.value_buffer.new_empty(_with_columns(self.value_buffer, columns))
        keys[:, :, : self.length] = self.key_buffer[:, :, : self.length]
        values[:, :, : self.length] = self.value_buffer[:, :, : self.length]
        self.key_buffer, self.value_buffer = keys, values

    def _refresh_views(self) -> None:
        self.filled_keys = self.key_buffer[:, :, : self.length]
        self.filled_values = self.value_buffer[:, :, : self.length]
        self.keys, self.values = self.filled_keys, self.filled_values

    def replace(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Take ``keys``/``values`` (``[rows, heads, length, dim]``) as the whole content."""
        self.length = keys.shape[-2]
        self.key_buffer = keys.new_empty(_with_columns(keys, self.length + _GROWTH))
        self.value_buffer = values.new_empty(_with_columns(values, self.length + _GROWTH))
        self.key_buffer[:, :, : self.length] = keys
        self.value_buffer[:, :, : self.length] = values
        self._refresh_views()


def _with_columns(tensor: torch.Tensor, columns: int) -> tuple[int, ...]:
    rows, heads, _, dim = tensor.shape
    return (rows, heads, columns, dim)


class BatchCache(Cache):
    """The cache of one running batch, plus row-level surgery between forward passes."""

    def __init__(self, num_layers: int) -> None:
        self.grow_layers = [_GrowableLayer() for _ in range(num_layers)]
        super().__init__(layers=list(self.grow_layers))

    @property
    def length(self) -> int:
        return self.grow_layers[0].length

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (indices), in that order."""
        for layer in self.grow_layers:
            layer.replace(layer.filled_keys[rows], layer.filled_values[rows])

    def expand(self, rows: int) -> None:
        """Copy the single row this cache holds into ``rows`` rows."""
        for layer in self.grow_layers:
            shape = (rows, *layer.filled_keys.shape[1:])
            layer.replace(layer.filled_keys.expand(shape), layer.filled_values.expand(shape))

    def trim_left(self, columns: int) -> None:
        """Drop the first ``columns`` columns (padding for every row)."""
        for layer in self.grow_layers:
            layer.replace(layer.filled_keys[:, :, columns:], layer.filled_values[:, :, columns:])

    def extend(self, other: BatchCache) -> None:
        """Append ``other``'s rows, left-padding whichever side is shorter."""
        width = max(self.length, other.length)
        for mine, theirs in zip(self.grow_layers, other.grow_layers, strict=True):
            keys = torch.cat(
                [_left_pad(mine.filled_keys, width), _left_pad(theirs.filled_keys, width)]
            )
            values = torch.cat(
                [_left_pad(mine.filled_values, width), _left_pad(theirs.filled_values, width)]
            )
            mine.replace(keys, values)


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - tensor.shape[-2]
    return F.pad(tensor, (0, 0, missing, 0)) if missing else tensor
