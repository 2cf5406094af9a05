"""The encode engine's steps, and what the server, bulk jobs and threads need from them."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from instructor_embed import InputError, Item, quantization_ranges
from instructor_embed.batching import batch_overhead
from instructor_embed.encode import plan_batches, postprocess
from instructor_embed.tokenization import InstructionTokenizer, Tokenized

ITEMS = [
    Item("Represent the Science title:", "3D ActionSLAM: wearable person tracking in multi-floor environments"),
    Item(None, "a plain sentence"),
    Item("Represent the Medicine sentence for retrieving a duplicate sentence: ", "Aspirin lowers fever. " * 30),
    Item("Represent the Financial statement: ", "The funds rose less than 0.5 per cent on Friday"),
]


def test_steps_by_hand_give_what_encode_gives(tiny_model):
    engine = tiny_model.engine
    tokenized = engine.tokenize(ITEMS)
    assert tokenized.token_counts == [len(row) for row in tokenized.ids]
    assert tokenized.token_counts[2] > tokenized.token_counts[0]  # the long text
    expected = tiny_model.encode([[i.instruction, i.text] if i.instruction else i.text for i in ITEMS], batch_size=2)
    result = np.zeros_like(expected)
    for batch in plan_batches(tokenized.token_counts, 2, None, batch_overhead("cpu")):  # the engine's own plan
        result[batch] = engine.forward(tokenized.take(batch))["sentence_embedding"].numpy()
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(engine.run(tokenized, batch_size=2).numpy(), expected)
    np.testing.assert_array_equal(tiny_model.encode(ITEMS, batch_size=2), expected)  # Items are taken as they are


def test_token_counts_are_what_the_encoder_reads(tiny_model):
    tokenized = tiny_model.engine.tokenize(ITEMS)
    for item, count in zip(ITEMS, tokenized.token_counts, strict=True):
        text = item.text.strip() if item.instruction is None else (item.instruction + item.text.strip()).strip()
        assert count == len(tiny_model.tokenizer(text)["input_ids"])
    merged = Tokenized.concat([tokenized.take([3]), tokenized.take([0, 1])])
    assert merged.ids == [tokenized.ids[3], tokenized.ids[0], tokenized.ids[1]]
    assert merged.skips == [tokenized.skips[3], tokenized.skips[0], tokenized.skips[1]]


def test_run_reports_each_batch(tiny_model):
    done = []
    tokenized = tiny_model.engine.tokenize(ITEMS * 3)
    tiny_model.engine.run(tokenized, batch_size=5, on_batch=done.append)
    plan = plan_batches(tokenized.token_counts, 5, None, batch_overhead("cpu"))
    assert done == [len(batch) for batch in plan] and sum(done) == 12


def test_threads_get_exactly_the_single_threaded_vectors(tiny_model):
    """8 threads x 50 calls, each with its own mix of instructions and lengths, on the real T5 tokenizer."""
    instructions = [None, "Represent the sentence:", "Represent the Wikipedia question for retrieving documents: "]

    def call(thread: int, number: int) -> list:
        return [
            [instructions[(thread + k) % 3], f"text {thread}/{number}/{k} " + "more words " * ((thread * k) % 40)]
            if instructions[(thread + k) % 3]
            else f"plain {thread} {number} {k}"
            for k in range(1 + (number % 6))
        ]

    expected = {(t, n): tiny_model.encode(call(t, n), batch_size=4) for t in range(8) for n in range(50)}
    results, failures = {}, []

    def work(thread: int) -> None:
        try:
            for number in range(50):
                results[thread, number] = tiny_model.encode(call(thread, number), batch_size=4)
        except Exception as exc:  # reported below with the thread that raised it
            failures.append(f"thread {thread}: {exc!r}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    for key, vectors in expected.items():
        np.testing.assert_array_equal(results[key], vectors, err_msg=str(key))


def test_tokenizers_sharing_one_fast_tokenizer_do_not_mix_windows(tiny_model):
    """A fast tokenizer's truncation setting is shared state: without one lock per tokenizer, a thread
    tokenizing with a short window cuts another thread's texts to that window."""
    long = [Item("Represent the sentence:", "word " * 300)] * 16
    full = InstructionTokenizer(tiny_model.tokenizer, 512)
    short = InstructionTokenizer(tiny_model.tokenizer, 8)
    expected = full.tokenize(long).token_counts[0]
    assert expected > 300
    wrong, stop = [], threading.Event()

    def tokenize_long() -> None:
        for _ in range(150):
            wrong.extend(n for n in full.tokenize(long).token_counts if n != expected)
        stop.set()

    def tokenize_short() -> None:
        while not stop.is_set():
            short.tokenize([Item(None, "word " * 30)])

    threads = [threading.Thread(target=tokenize_long), threading.Thread(target=tokenize_short)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_numpy_output_is_collected_on_the_cpu_batch_by_batch(tiny_model):
    tokenized = tiny_model.engine.tokenize(ITEMS)
    assert tiny_model.engine.run(tokenized, batch_size=1).device.type == "cpu"
    kept = tiny_model.engine.run(tokenized, batch_size=1, output_device=torch.device("meta"))
    assert kept.device.type == "meta"


def test_integer_precision_outside_one_call_needs_fixed_ranges(tiny_model):
    embeddings = tiny_model.engine.run(tiny_model.engine.tokenize(ITEMS * 4))
    with pytest.raises(InputError, match="needs fixed quantization ranges") as caught:
        postprocess(embeddings[:5], precision="int8")
    assert caught.value.param == "ranges"
    ranges = quantization_ranges(embeddings.numpy())
    whole = postprocess(embeddings, precision="int8", ranges=ranges)
    parts = np.concatenate([postprocess(part, precision="int8", ranges=ranges) for part in embeddings.split(3)])
    np.testing.assert_array_equal(parts, whole)
    one_call = tiny_model.encode(ITEMS * 4, precision="uint8", ranges=ranges)
    split = np.concatenate([tiny_model.encode(ITEMS * 2, precision="uint8", ranges=ranges)] * 2)
    # The two calls batch differently, and float32 vectors move by up to ~1e-7 with a batch's composition on
    # some CPUs (AVX512 kernels chosen by shape): a value on a bucket's edge may land one code away, never more.
    assert np.abs(one_call.astype(int) - split.astype(int)).max() <= 1
    assert np.mean(one_call != split) < 1e-3
    assert postprocess(embeddings, precision="ubinary").shape == (16, 96)  # sign bits need no ranges


def test_plan_batches_handles_nothing():
    assert plan_batches([], batch_size=4) == []
