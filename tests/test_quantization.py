"""The seed README's int8 snippet works as written, because INSTRUCTOR is a plain nn.Module."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def test_seed_readme_dynamic_quantization_snippet(tiny_model):
    sentence = "3D ActionSLAM: wearable person tracking in multi-floor environments"
    instruction = "Represent the Science title:"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates torch.quantization in favour of torchao
        quantized = torch.quantization.quantize_dynamic(tiny_model, {torch.nn.Linear}, dtype=torch.qint8)
        embeddings = quantized.encode([[instruction, sentence]])
    reference = tiny_model.encode([[instruction, sentence]])
    assert embeddings.shape == (1, 768)
    assert float((embeddings * reference).sum()) > 0.99  # cosine: both are unit vectors
    assert not np.array_equal(embeddings, reference)  # it really ran quantized
