"""Token-budget batching, quantized output vectors and truncate_dim."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructor_embed import INSTRUCTOR, quantize_embeddings
from instructor_embed.encode import plan_batches

TEXTS = [["Represent the sentence:", "word " * n] for n in (1, 40, 3, 120, 7, 2, 60, 5)]


def test_plan_batches_sorts_by_length_and_respects_both_limits():
    lengths = [5, 50, 7, 120, 9, 3]
    assert plan_batches(lengths, batch_size=2) == [[3, 1], [4, 2], [0, 5]]
    batches = plan_batches(lengths, batch_size=10, max_batch_tokens=130)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 130


def test_max_batch_tokens_does_not_change_results(tiny_model):
    plain = tiny_model.encode(TEXTS, batch_size=4)
    budgeted = tiny_model.encode(TEXTS, batch_size=64, max_batch_tokens=100)
    assert np.abs(plain - budgeted).max() <= 1e-5


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
def test_bad_max_batch_tokens(tiny_model, value, error):
    with pytest.raises(error, match="max_batch_tokens"):
        tiny_model.encode(TEXTS, max_batch_tokens=value)


def test_precision_formats(tiny_model):
    full = tiny_model.encode(TEXTS)
    ubinary = tiny_model.encode(TEXTS, precision="ubinary")
    assert ubinary.dtype == np.uint8 and ubinary.shape == (len(TEXTS), 768 // 8)
    np.testing.assert_array_equal(np.unpackbits(ubinary, axis=1).astype(bool), full > 0)
    binary = tiny_model.encode(TEXTS, precision="binary")
    np.testing.assert_array_equal(binary.astype(np.int16) + 128, ubinary)
    int8 = tiny_model.encode(TEXTS, precision="int8")
    assert int8.dtype == np.int8 and int8.shape == full.shape
    assert int8.min() == -128 and int8.max() == 127  # each dimension's range spans the levels
    uint8 = tiny_model.encode(TEXTS, precision="uint8", convert_to_tensor=True)
    assert uint8.dtype == torch.uint8
    np.testing.assert_array_equal(uint8.numpy().astype(np.int16) - 128, int8)
    with pytest.raises(ValueError, match="precision must be one of"):
        tiny_model.encode(TEXTS, precision="int4")


def test_scalar_quantization_keeps_similarity_order(minilm_model):
    sentences = ["A man is playing a guitar.", "A man plays the guitar.", "A woman slices an onion.", "The stock fell."]
    full = minilm_model.encode(sentences)
    calibration = minilm_model.encode([f"sentence number {i} about topic {i % 7}" for i in range(200)])
    quantized = quantize_embeddings(full, "int8", calibration_embeddings=calibration).astype(np.float32)
    assert np.argsort(-(full @ full[0])).tolist() == np.argsort(-(quantized @ quantized[0])).tolist()


def test_truncate_dim(tiny_t5_dir, tiny_model):
    full = tiny_model.encode(TEXTS)
    cut = tiny_model.encode(TEXTS, truncate_dim=128)
    np.testing.assert_array_equal(cut, full[:, :128])
    unit = tiny_model.encode(TEXTS, truncate_dim=128, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", truncate_dim=64)
    assert model.get_sentence_embedding_dimension() == 64
    assert model.encode(TEXTS).shape == (len(TEXTS), 64)
    assert model.encode([]).shape == (0, 64)
