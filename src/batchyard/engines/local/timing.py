"""Timing a kernel at load, to choose between two ways of computing the same thing."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def best_seconds(run: Callable[[], object], device: torch.device, repeats: int = 5) -> float:
    """The fastest of ``repeats`` calls of ``run`` after one untimed call (kernel selection);
    the minimum, because other work on a shared machine only ever adds time."""
    best = float("inf")
    with torch.inference_mode():
        run()
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - started)
    return best
