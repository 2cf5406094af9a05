"""encode's output forms, as the original README documents them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

PAIRS = [["Represent the Science title:", "3D ActionSLAM: wearable person tracking"], ["Represent the sentence:", "hi"]]


def test_default_is_float32_matrix(tiny_model):
    out = tiny_model.encode(PAIRS)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (2, 768)


def test_bare_string_gives_one_vector(tiny_model):
    vector = tiny_model.encode("a single sentence")
    assert vector.shape == (768,)
    np.testing.assert_allclose(vector, tiny_model.encode(["a single sentence"])[0], atol=1e-6)


def test_convert_to_tensor_stacks(tiny_model):
    out = tiny_model.encode(PAIRS, convert_to_tensor=True)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 768)
    np.testing.assert_allclose(out.numpy(), tiny_model.encode(PAIRS), atol=1e-6)


def test_convert_to_numpy_false_gives_list_of_tensors(tiny_model):
    out = tiny_model.encode(PAIRS, convert_to_numpy=False)
    assert isinstance(out, list) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)


def test_normalize_embeddings_on_a_model_without_normalize(tiny_t5_dir, tmp_path):
    import json
    import shutil

    from instructor_embed import INSTRUCTOR

    shutil.copytree(tiny_t5_dir, tmp_path / "m")
    modules = json.loads((tmp_path / "m" / "modules.json").read_text())
    (tmp_path / "m" / "modules.json").write_text(json.dumps(modules[:3]))  # Transformer, Pooling, Dense
    model = INSTRUCTOR(tmp_path / "m", device="cpu")
    raw = model.encode(PAIRS)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    unit = model.encode(PAIRS, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)


def test_token_embeddings_per_item_lengths(tiny_model):
    out = tiny_model.encode(PAIRS, output_value="token_embeddings")
    lengths = [len(tiny_model.tokenizer(instr + text)["input_ids"]) for instr, text in PAIRS]
    assert [tuple(t.shape) for t in out] == [(length, 64) for length in lengths]


def test_output_value_none_gives_per_item_dicts(tiny_model):
    out = tiny_model.encode(PAIRS, output_value=None)
    assert len(out) == 2
    first = out[0]
    assert {"input_ids", "attention_mask", "pooling_mask", "token_embeddings", "sentence_embedding"} <= set(first)
    skipped = int(first["instruction_length"])
    assert skipped == len(tiny_model.tokenizer("Represent the Science title:")["input_ids"]) - 1
    assert first["pooling_mask"][:skipped].sum() == 0 and first["pooling_mask"][skipped:].all()
    np.testing.assert_allclose(first["sentence_embedding"].numpy(), tiny_model.encode(PAIRS)[0], atol=1e-6)


def test_progress_bar_does_not_change_results(tiny_model, capsys):
    quiet = tiny_model.encode(PAIRS)
    shown = tiny_model.encode(PAIRS, show_progress_bar=True, batch_size=1)
    assert "Batches" in capsys.readouterr().err
    np.testing.assert_allclose(quiet, shown, atol=1e-6)


def test_device_argument_moves_the_model_only_when_it_is_elsewhere(tiny_t5_dir):
    from instructor_embed import INSTRUCTOR

    model = INSTRUCTOR(tiny_t5_dir, device="cpu")
    calls = []
    # Spies as instance attributes: they record the calls and leave the weights where they are.
    model.to = lambda device: calls.append(("to", torch.device(device))) or model
    model.eval = lambda: calls.append("eval")
    model.encode(PAIRS, device="cpu")
    model.encode(PAIRS)
    assert calls == []  # nothing to change: no move, no mode switch on every call
    model.encode(PAIRS, device="meta")  # meta: a second device that every machine has
    assert calls == [("to", torch.device("meta"))]


def test_embeddings_can_feed_a_trainable_head(tiny_model):
    """As with the original (torch.no_grad, not inference_mode), outputs work in autograd afterwards."""
    embeddings = tiny_model.encode(PAIRS, convert_to_tensor=True)
    head = torch.nn.Linear(768, 2)
    head(embeddings).sum().backward()
    assert head.weight.grad is not None


def test_similarity_is_the_cosine_matrix(tiny_model):
    a, b = tiny_model.encode(PAIRS), tiny_model.encode(["x", "y", "z"])
    scores = tiny_model.similarity(a, b)
    assert isinstance(scores, torch.Tensor) and tuple(scores.shape) == (2, 3)
    expected = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-6)
    assert tuple(tiny_model.similarity(a[0], b).shape) == (1, 3)


def test_queries_and_corpus_get_the_retrieval_pair(tiny_model):
    from instructor_embed import RETRIEVAL

    questions, passages = ["where is food stored in a yam plant"], ["Yams store food in tubers.", "Rice is a grass."]
    np.testing.assert_array_equal(
        tiny_model.encode_queries(questions), tiny_model.encode([[RETRIEVAL.query, q] for q in questions])
    )
    np.testing.assert_array_equal(
        tiny_model.encode_corpus(passages, batch_size=1),
        tiny_model.encode([[RETRIEVAL.corpus, p] for p in passages], batch_size=1),
    )
    own = tiny_model.encode_queries(questions[0], instruction="Represent the Biology question: ")
    assert own.shape == (768,)
    np.testing.assert_array_equal(own, tiny_model.encode([["Represent the Biology question: ", questions[0]]])[0])
    np.testing.assert_array_equal(tiny_model.encode_corpus(passages, instruction=None), tiny_model.encode(passages))


def test_an_unnested_instruction_and_text_warn(tiny_model):
    with pytest.warns(UserWarning, match="nest the pair"):
        tiny_model.encode(["Represent the title:", "some text"])
