"""The padding-aware batch planner: every item once, within the limits, the optimum on small inputs (checked
against every partition), fewer padded tokens than filling in order on mixed lengths, and the same vectors."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from instructor_embed.batching import EXACT_ITEMS, padded_tokens, plan_batches


def cost(lengths, batches, overhead) -> float:
    return padded_tokens(lengths, batches) + overhead * len(batches)


def brute_force(lengths, batch_size, max_batch_tokens, overhead) -> float:
    """The least cost over every split of the sorted order into contiguous batches."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
    best = float("inf")
    for cuts in itertools.product([0, 1], repeat=len(order) - 1):
        batches, current = [], [order[0]]
        for index, cut in zip(order[1:], cuts, strict=True):
            if cut:
                batches.append(current)
                current = []
            current.append(index)
        batches.append(current)
        if all(
            len(b) <= batch_size
            and (max_batch_tokens is None or len(b) == 1 or len(b) * max(lengths[i] for i in b) <= max_batch_tokens)
            for b in batches
        ):
            best = min(best, cost(lengths, batches, overhead))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_the_plan_is_the_optimum_and_keeps_every_limit(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([1, 3, 8, 20, 21, 64, 200]) for _ in range(rng.randint(1, 11))]
    batch_size, max_batch_tokens = rng.choice([1, 2, 3, 4, 16]), rng.choice([None, 64, 200])
    overhead = rng.choice([0.5, 8, 64, 1000])
    batches = plan_batches(lengths, batch_size, max_batch_tokens, overhead)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= batch_size
        assert max_batch_tokens is None or len(b) == 1 or len(b) * max(lengths[i] for i in b) <= max_batch_tokens
    assert cost(lengths, batches, overhead) == pytest.approx(
        brute_force(lengths, batch_size, max_batch_tokens, overhead)
    )


def test_mixed_calls_pad_less_than_filling_in_order():
    rng = random.Random(0)
    lengths = [rng.choice([rng.randint(8, 16), rng.randint(90, 130)]) for _ in range(32)]
    filled = plan_batches(lengths, 32)
    planned = plan_batches(lengths, 32, overhead=64)
    assert len(filled) == 1 and 2 <= len(planned) <= 3
    assert max(lengths[i] for i in planned[-1]) <= 16  # the short texts apart from the long
    assert cost(lengths, planned, 64) < cost(lengths, filled, 64)
    assert padded_tokens(lengths, planned) < 0.7 * padded_tokens(lengths, filled)


def test_large_inputs_fill_batches_in_order_and_the_largest_batch_comes_first():
    rng = random.Random(1)
    lengths = [rng.randint(5, 300) for _ in range(EXACT_ITEMS + 1)]
    batches = plan_batches(lengths, 64, 4096, overhead=64)
    assert batches == plan_batches(lengths, 64, 4096)
    sizes = [len(b) * lengths[b[0]] for b in batches]
    assert sizes == sorted(sizes, reverse=True)


def test_encode_vectors_do_not_depend_on_the_plan(minilm_model):
    texts = [["Represent the sentence: ", "word " * n] for n in (1, 2, 40, 3, 90, 4, 60, 2, 5, 33)]
    one_by_one = np.stack([minilm_model.encode([t])[0] for t in texts])
    assert np.abs(minilm_model.encode(texts, batch_size=32) - one_by_one).max() <= 1e-6
