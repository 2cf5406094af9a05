"""Bad input gets a TypeError/ValueError naming the item and what was expected; edge inputs behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructor_embed import InputError, InputTypeError

INSTR = "Represent the sentence:"


@pytest.mark.parametrize(
    ("sentences", "error", "message"),
    [
        (["ok", None], TypeError, "Item 1 is None"),
        (["ok", "ok", 3.5], TypeError, "Item 2 is a float"),
        ([42], TypeError, "Item 0 is a int"),
        ([{"text": "x"}], TypeError, "Item 0 is a dict"),
        ([[INSTR, "a"], [[INSTR, "b"]]], ValueError, "Item 1 has 1 elements"),
        ([[INSTR]], ValueError, "Item 0 has 1 elements"),
        ([[INSTR, "text", 0, "extra"]], ValueError, "Item 0 has 4 elements"),
        ([[INSTR, ["nested"]]], TypeError, "Item 0: the text (element 1) must be a string, not list"),
        (
            [["ok", "ok"], [None, "text"]],
            TypeError,
            "Item 1: the instruction (element 0) must be a string, not NoneType",
        ),
        ([[INSTR, 7]], TypeError, "the text (element 1) must be a string, not int"),
        ([b"bytes"], TypeError, "Item 0 is a bytes"),
        (None, TypeError, "sentences must be a string or a list"),
        (5, TypeError, "sentences must be a string or a list"),
        ({"a": "b"}, TypeError, "sentences must be a string or a list"),
    ],
)
def test_bad_items_name_their_index(tiny_model, sentences, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        tiny_model.encode(sentences)
    assert isinstance(caught.value, (InputError, InputTypeError))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"output_value": "pooled"}, ValueError, "output_value must be one of"),
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1, got 0"),
        ({"batch_size": -3}, ValueError, "batch_size must be at least 1"),
        ({"batch_size": 2.0}, TypeError, "batch_size must be an int"),
        ({"batch_size": True}, TypeError, "batch_size must be an int"),
    ],
)
def test_bad_options(tiny_model, options, error, message):
    with pytest.raises(error, match=message):
        tiny_model.encode(["a text"], **options)


def test_empty_list_gives_empty_matrix(tiny_model):
    dim = tiny_model.get_sentence_embedding_dimension()
    assert tiny_model.encode([]).shape == (0, dim)
    empty = tiny_model.encode([], convert_to_tensor=True)
    assert isinstance(empty, torch.Tensor) and tuple(empty.shape) == (0, dim)
    assert tiny_model.encode([], convert_to_numpy=False) == []
    assert tiny_model.encode([], output_value="token_embeddings") == []


def test_tuples_and_generators_are_accepted(tiny_model):
    as_lists = tiny_model.encode([[INSTR, "a cat"], [INSTR, "a dog"]])
    as_tuples = tiny_model.encode(((INSTR, "a cat"), (INSTR, "a dog")))
    from_generator = tiny_model.encode(pair for pair in [(INSTR, "a cat"), (INSTR, "a dog")])
    np.testing.assert_allclose(as_tuples, as_lists, atol=1e-6)
    np.testing.assert_allclose(from_generator, as_lists, atol=1e-6)


def test_different_instructions_per_item_in_one_call(tiny_model):
    a, b = "Represent the Medicine sentence:", "Represent the Financial statement for retrieval:"
    together = tiny_model.encode([[a, "aspirin dose"], [b, "aspirin dose"]])
    apart = np.vstack([tiny_model.encode([[a, "aspirin dose"]]), tiny_model.encode([[b, "aspirin dose"]])])
    np.testing.assert_allclose(together, apart, atol=1e-6)
    assert not np.allclose(together[0], together[1], atol=1e-3)
