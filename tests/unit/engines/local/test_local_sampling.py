"""Per-row sampling, on hand-made logits."""

from __future__ import annotations

import torch

from batchyard.engines.local.sampling import RowSampling, SamplingParams, next_tokens

CPU = torch.device("cpu")


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_greedy_rows_take_the_argmax_whatever_the_other_rows_do() -> None:
    logits = torch.randn(4, 50, generator=generator())
    sampling = RowSampling(
        [
            SamplingParams(0.0),
            SamplingParams(1.0),
            SamplingParams(0.0),
            SamplingParams(1.0, top_k=1),
        ],
        CPU,
    )
    chosen = next_tokens(logits, sampling, generator())
    assert chosen[0] == logits[0].argmax()
    assert chosen[2] == logits[2].argmax()
    assert chosen[3] == logits[3].argmax()  # top_k=1 is greedy too


def test_top_k_keeps_only_the_k_best() -> None:
    logits = torch.zeros(1, 10)
    logits[0, 3] = logits[0, 7] = 0.5
    sampling = RowSampling([SamplingParams(1.0, top_k=2)], CPU)
    rng = generator()
    seen = {int(next_tokens(logits, sampling, rng)[0]) for _ in range(200)}
    assert seen == {3, 7}


def test_top_p_keeps_the_smallest_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    rng = generator()
    seen = {
        int(next_tokens(logits, RowSampling([SamplingParams(1.0, top_p=0.7)], CPU), rng)[0])
        for _ in range(300)
    }
    assert seen == {0, 1}
    tiny = RowSampling([SamplingParams(1.0, top_p=0.0)], CPU)
    assert int(next_tokens(logits, tiny, rng)[0]) == 0


def test_plain_temperature_sampling_follows_the_distribution() -> None:
    logits = torch.log(torch.tensor([[0.8, 0.2]]))
    sampling = RowSampling([SamplingParams(1.0)], CPU)
    rng = generator()
    picks = [int(next_tokens(logits, sampling, rng)[0]) for _ in range(2000)]
    assert 0.75 < picks.count(0) / len(picks) < 0.85


def test_rows_follow_select_and_extend() -> None:
    sampling = RowSampling([SamplingParams(0.0), SamplingParams(0.7, top_p=0.9)], CPU)
    sampling.select(torch.tensor([0]))
    assert sampling.all_greedy
    sampling.extend(RowSampling([SamplingParams(0.5, top_k=3)], CPU))
    assert not sampling.all_greedy
    assert sampling.top_k.tolist() == [0, 3]
    assert sampling.temperature.tolist() == [1.0, 0.5]
