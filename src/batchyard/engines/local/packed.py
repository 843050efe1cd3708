"""The model's linear layers on oneDNN, with their weights laid out for it once, at load.

``torch.nn.Linear`` on CPU calls MKL's SGEMM, which re-packs the weight on every call and, on
AMD CPUs, does not take its fastest code path. PyTorch also ships oneDNN; given a weight
reordered ahead of time into its blocked layout (what ``torch.compile`` does when it freezes
a model), a float32 linear for a 64-row decode step ran 1.5-2x faster on the 2-core AMD EPYC
this was measured on (BENCHMARKS.md), still in float32: every greedy answer stayed the same.
Whether it is faster is measured at load on one of the model's own shapes, so a CPU where
MKL wins keeps MKL.
"""

from __future__ import annotations

import torch

from batchyard.engines.local.timing import best_seconds

#: Pack only where oneDNN is at least this much faster on the measured shape.
_MIN_SPEEDUP = 1.1
#: The row count oneDNN lays the weights out for: a full decode step of the default batch.
_ROWS_HINT = 64


class PackedLinear(torch.nn.Module):
    """``torch.nn.Linear``'s forward with the weight in oneDNN's layout."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = torch.ops.mkldnn._reorder_linear_weight(
            linear.weight.detach().contiguous(), _ROWS_HINT
        )
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = torch.ops.mkldnn._linear_pointwise(
            inputs, self.packed, self.bias, "none", [], ""
        )
        return output


def pack_linear_layers(module: torch.nn.Module) -> int:
    """Replace every float32 ``torch.nn.Linear`` under ``module`` (CPU) with a
    :class:`PackedLinear` where that is measured faster; the number replaced."""
    linears = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if isinstance(child, torch.nn.Linear)
        and child.weight.dtype == torch.float32
        and child.weight.device.type == "cpu"
    ]
    if (
        not linears
        or not _available()
        or not _packing_is_faster(
            max((child for _, _, child in linears), key=lambda linear: linear.weight.numel())
        )
    ):
        return 0
    for parent, name, child in linears:
        setattr(parent, name, PackedLinear(child))
    return len(linears)


def _available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(  # type: ignore[no-untyped-call]
        torch.ops.mkldnn, "_reorder_linear_weight"
    )


def _packing_is_faster(linear: torch.nn.Linear) -> bool:
    inputs = torch.randn(_ROWS_HINT, linear.in_features)
    packed = PackedLinear(linear)
    cpu = torch.device("cpu")
    return best_seconds(lambda: packed(inputs), cpu) * _MIN_SPEEDUP <= best_seconds(
        lambda: linear(inputs), cpu
    )
