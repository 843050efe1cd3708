"""The output projection (hidden state to vocabulary), with an exact shortcut for greedy rows.

For a small model the output projection is the largest matmul of a decode step (SmolLM2:
576 x 49,152, a fifth of the step's multiply-adds) and, with only 64 rows against 49,152
columns, the least efficient one (~45 ms of a ~190 ms step on two cores). A greedy row needs
only the argmax of its logits, and on a CPU with bfloat16 dot-product instructions
(AVX512-BF16, AMX) a bfloat16 GEMM runs 4-6x faster than a float32 one. But the argmax of
bfloat16 logits is not the float32 argmax: in a 135M model the top logits are often within
bfloat16's rounding, and a bfloat16 projection alone changed 36 of 64 greedy answers.

:meth:`OutputHead.argmax` therefore computes rough logits with one bfloat16 GEMM whose
operands carry float32 precision in two bfloat16 halves (``h_hi w_hi + h_lo w_hi + h_hi w_lo``,
concatenated along the inner dimension, so the error is ~2^-16 of each product instead of
2^-8), takes the ``CANDIDATES`` best, recomputes those in float32 and keeps the best. That is
the float32 argmax whenever the rough logits' error bound cannot lift a token outside the
candidates above it; a row where it could (rare: the gap to the 16th candidate is ~5 logits,
the bound ~0.2) gets its full float32 logits. Greedy answers stay those of the float32 model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from batchyard.engines.local.timing import best_seconds

#: Tokens re-scored in float32 per row.
CANDIDATES = 16
#: Error of the rough logits' inner sum relative to sum(|h_i| |w_i|): the products the split
#: leaves out (three of ~2^-16 each) and float32 accumulation over 3 x hidden-size terms
#: (<= 2^-13 for 1,728); 2^-11 keeps a 2x margin.
_INPUT_ERROR = 2.0**-11
#: The bfloat16 GEMM rounds its float32 sum to bfloat16 on output: 2^-8 of the value; 2^-7
#: keeps a 2x margin.
_OUTPUT_ROUNDING = 2.0**-7
#: Below this many rows the projection reads weights more than it computes, and the split
#: weights are 1.5x the float32 ones: one row took 9.2 ms against float32's 8.0; four, 8.3
#: against 19.9.
_MIN_ROWS = 2
#: Use the bfloat16 projection only where it is at least this much faster than float32.
_MIN_SPEEDUP = 1.5


class OutputHead:
    """``logits`` for sampling rows; ``argmax`` (exact) for greedy ones."""

    def __init__(self, weight: torch.Tensor, *, approximate: torch.dtype | None) -> None:
        #: ``[vocab, hidden]``.
        self.weight = weight
        #: ``[vocab, 3 x hidden]``: ``w_hi | w_hi | w_lo``, or ``None`` (no shortcut).
        self.approximate = _split(weight, approximate) if approximate is not None else None
        #: Largest row norm of the weight: with ``|h|``, bounds every ``sum(|h_i| |w_i|)``.
        self._largest_row_norm = float(weight.float().norm(dim=1).max())

    @classmethod
    def for_model(cls, model: Any, *, shortcut: bool) -> OutputHead:
        """The head of a causal LM whose output layer is a plain bias-free linear map; with
        ``shortcut``, greedy rows use a bfloat16 projection where it is measured faster."""
        output = model.get_output_embeddings()
        config = model.config
        if (
            not isinstance(output, torch.nn.Linear)
            or output.bias is not None
            or getattr(config, "final_logit_softcapping", None) is not None
            or getattr(config, "logit_scale", None) not in (None, 1.0)
        ):
            raise ValueError(
                f"{type(model).__name__}: the local engine runs models whose output layer is a "
                "plain linear projection (Llama, Mistral, Qwen, SmolLM and the like)"
            )
        weight = output.weight.detach()
        fast = weight.dtype == torch.float32 and shortcut and _bfloat16_is_faster(weight)
        return cls(weight, approximate=torch.bfloat16 if fast else None)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Float32 logits ``[rows, vocab]`` of ``hidden`` (``[rows, hidden]``)."""
        return F.linear(hidden, self.weight).float()

    def argmax(self, hidden: torch.Tensor) -> torch.Tensor:
        """The id of each row's largest logit, as :meth:`logits` would give it."""
        if self.approximate is None or len(hidden) < _MIN_ROWS:
            return self.logits(hidden).argmax(dim=-1)
        rough = F.linear(_split_rows(hidden, self.approximate.dtype), self.approximate).float()
        floor_values, candidates = rough.topk(CANDIDATES, dim=-1)
        exact = torch.bmm(self.weight[candidates], hidden[:, :, None]).squeeze(-1)
        best_values, best = exact.max(dim=-1)
        chosen = candidates.gather(1, best[:, None]).squeeze(1)
        # Every token outside the candidates has a rough logit <= the lowest candidate's, so
        # its exact logit is at most that plus the rounding error.
        floor = floor_values[:, -1]
        error = floor.abs() * _OUTPUT_ROUNDING + (
            hidden.norm(dim=-1) * self._largest_row_norm * _INPUT_ERROR
        )
        unsure = (best_values <= floor + error).nonzero().squeeze(1)
        if len(unsure):
            chosen[unsure] = self.logits(hidden[unsure]).argmax(dim=-1)
        return chosen


def _halves(tensor: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``tensor`` as ``high + low`` in ``dtype``: float32 to ~16 significant bits."""
    high = tensor.to(dtype)
    return high, (tensor - high.float()).to(dtype)


def _split(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    high, low = _halves(weight.float(), dtype)
    return torch.cat([high, high, low], dim=1).contiguous()


def _split_rows(hidden: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    high, low = _halves(hidden.float(), dtype)
    return torch.cat([high, low, high], dim=-1)


def _bfloat16_is_faster(weight: torch.Tensor) -> bool:
    """Time the projection for a full batch both ways (tens of ms); without bfloat16
    instructions the bfloat16 GEMM is emulated and slower."""
    hidden = torch.randn(64, weight.shape[1], device=weight.device)
    rough = _split(weight, torch.bfloat16)
    float32 = best_seconds(lambda: F.linear(hidden, weight), weight.device)
    bfloat16 = best_seconds(
        lambda: F.linear(_split_rows(hidden, torch.bfloat16), rough), weight.device
    )
    return bfloat16 * _MIN_SPEEDUP <= float32
