"""Row surgery on the batch cache, on hand-made tensors."""

from __future__ import annotations

import torch

from batchyard.engines.local.kv_cache import BatchCache


def filled(rows: int, length: int, start: float) -> BatchCache:
    cache = BatchCache(num_layers=2)
    for layer in range(2):
        keys = torch.arange(rows * length, dtype=torch.float32).reshape(rows, 1, length, 1) + start
        cache.update(keys, -keys, layer)
    return cache


def test_update_grows_past_the_spare_columns() -> None:
    cache = filled(2, 3, 0.0)
    for step in range(100):
        keys, _ = cache.update(torch.full((2, 1, 1, 1), float(step)), torch.zeros(2, 1, 1, 1), 0)
    assert keys.shape == (2, 1, 103, 1)
    assert keys[0, 0, 3:, 0].tolist() == [float(step) for step in range(100)]
    assert cache.get_seq_length(0) == 103


def test_select_trim_and_extend_keep_rows_right_aligned() -> None:
    cache = filled(3, 4, 0.0)
    cache.select(torch.tensor([2, 0]))
    layer = cache.grow_layers[0]
    assert layer.filled_keys[:, 0, :, 0].tolist() == [[8, 9, 10, 11], [0, 1, 2, 3]]
    cache.trim_left(1)
    assert layer.filled_keys[:, 0, :, 0].tolist() == [[9, 10, 11], [1, 2, 3]]
    cache.extend(filled(1, 5, 100.0))
    assert cache.length == 5
    assert layer.filled_keys[:, 0, :, 0].tolist() == [
        [0, 0, 9, 10, 11],
        [0, 0, 1, 2, 3],
        [100, 101, 102, 103, 104],
    ]
    assert layer.filled_values[2, 0, :, 0].tolist() == [-100, -101, -102, -103, -104]
