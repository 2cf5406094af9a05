"""Property-based tests of ``encode`` and ``instruction()`` on the real all-MiniLM-L6-v2 weights and tokenizer.

The contract, as README states it: every input either embeds — finite vectors of the model's size, unit length
when normalised, the same vector alone as inside any batch, whatever the batch size, token budget or order — or
raises ``InputError`` (``InputTypeError`` for wrong types) naming the item at fault. Never a raw third-party
exception, a hang, a NaN or a wrong shape.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st
from strategies import INSTRUCTIONS, items, strings

from instructor_embed import InputError, instruction

TOLERANCE = 1e-5

pytestmark = pytest.mark.slow  # make test runs these; the quick loop (-m "not slow") does not


def outcome(model, sentences, **options):
    """The vectors, or the InputError raised; any other exception fails the test."""
    try:
        return model.encode(sentences, **options)
    except InputError as error:
        return error


@given(st.lists(items, min_size=1, max_size=6), st.booleans())
def test_encode_embeds_or_names_the_bad_item(minilm_model, batch, normalize):
    result = outcome(minilm_model, batch, normalize_embeddings=normalize)
    alone = [outcome(minilm_model, [item]) for item in batch]
    note(f"alone: {[type(a).__name__ for a in alone]}")
    event(f"refused: {result.param}" if isinstance(result, InputError) else "embedded")
    if isinstance(result, InputError):
        assert result.index is not None and 0 <= result.index < len(batch), result
        assert f"Item {result.index}" in str(result) or f"item {result.index}" in str(result).lower(), result
        assert isinstance(alone[result.index], InputError), "the item named fails alone too"
        return
    assert not any(isinstance(a, InputError) for a in alone), "a batch that embeds holds no item that fails alone"
    assert result.shape == (len(batch), 384) and result.dtype == np.float32
    assert np.isfinite(result).all()
    if normalize:
        assert np.allclose(np.linalg.norm(result, axis=1), 1, atol=1e-5)
    raw = result if not normalize else minilm_model.encode(batch)
    for index, single in enumerate(alone):
        assert np.abs(single[0] - raw[index]).max() <= TOLERANCE


@given(st.lists(items, min_size=1, max_size=6), st.integers(1, 4), st.integers(1, 64), st.randoms())
def test_vectors_do_not_depend_on_batching_or_order(minilm_model, batch, batch_size, max_batch_tokens, random):
    reference = outcome(minilm_model, batch)
    if isinstance(reference, InputError):
        return
    assert np.abs(minilm_model.encode(batch, batch_size=batch_size) - reference).max() <= TOLERANCE
    assert np.abs(minilm_model.encode(batch, max_batch_tokens=max_batch_tokens) - reference).max() <= TOLERANCE
    order = list(range(len(batch)))
    random.shuffle(order)
    shuffled = minilm_model.encode([batch[i] for i in order])
    assert np.abs(shuffled - reference[order]).max() <= TOLERANCE


@given(st.lists(strings(), min_size=1, max_size=4))
def test_any_iterable_of_items_embeds_as_a_list(minilm_model, batch):
    reference = outcome(minilm_model, batch)
    for container in (tuple(batch), (text for text in batch), np.array(batch, dtype=object)):
        again = outcome(minilm_model, container)
        if isinstance(reference, InputError):
            assert isinstance(again, InputError) and again.index == reference.index
        else:
            assert np.abs(again - reference).max() <= TOLERANCE


@given(
    st.one_of(
        st.none(), st.integers(), st.binary(), st.dictionaries(st.text(max_size=2), st.text(max_size=2)), st.floats()
    )
)
def test_a_wrong_container_is_a_type_error_naming_sentences(minilm_model, sentences):
    with pytest.raises(InputError) as caught:
        minilm_model.encode(sentences)
    assert caught.value.param == "sentences"


@given(st.one_of(st.integers(-3, 0), st.booleans(), st.floats(), st.text(max_size=2), st.none()))
def test_bad_batch_sizes_are_refused_by_name(minilm_model, batch_size):
    with pytest.raises(InputError) as caught:
        minilm_model.encode(["a text"], batch_size=batch_size)
    assert caught.value.param == "batch_size"


@given(strings(max_size=30), strings(max_size=30) | st.none(), strings(max_size=30) | st.none())
def test_instruction_builds_the_template_or_refuses(text_type, domain, task_objective):
    try:
        built = instruction(text_type, domain=domain, task_objective=task_objective)
    except InputError:
        assert (
            not text_type.strip()
            or (domain is not None and not domain.strip())
            or (task_objective is not None and not task_objective.strip())
        )
        return
    assert built.startswith("Represent the ") and built.endswith(":")


@pytest.mark.parametrize("bad", [3, b"title", None, ["title"]])
def test_instruction_refuses_wrong_types(bad):
    with pytest.raises(InputError):
        instruction(bad)


def test_the_defects_the_issue_names_are_errors_naming_the_item(minilm_model):
    """Found by hand before the fuzzer existed; kept as plain examples."""
    with pytest.raises(InputError, match="Item 0: the text holds an unpaired UTF-16 surrogate"):
        minilm_model.encode(["\ud800abc"])
    with pytest.raises(InputError, match="Item 0: no token of the text is left to embed"):
        minilm_model.encode([["日本語हिन्दी", "🧑‍🏫😀"]], normalize_embeddings=True)
    with pytest.raises(InputError, match="Item 1: the instruction takes 255 of the 256 tokens"):
        minilm_model.encode([["Represent: ", "fine"], [INSTRUCTIONS[5], "the text"]])
