"""Long documents: overlapping windows (chunk) and their token-weighted mean (mean), checked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_job import INSTRUCTION, run_job

pq = pytest.importorskip("pyarrow.parquet")

LONG = " ".join(f"word{i} is followed by more text about subject {i % 5}." for i in range(40))
TEXTS = [LONG, "a short text", "  " + LONG[:300] + "  "]


def job(tiny_t5_dir, tmp_path, mode: str, overlap: int = 4):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    output = tmp_path / mode
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", output, max_seq_length=32, long_text=mode, chunk_overlap=overlap)
    return pq.read_table(output / "part-00000.parquet").to_pydict()


def test_chunks_cover_each_long_text_with_overlap_and_embed_like_the_windows_themselves(
    tiny_t5_dir, tiny_model, tmp_path
):
    table = job(tiny_t5_dir, tmp_path, "chunk")
    for row, text in enumerate(TEXTS):
        mine = [k for k, owner in enumerate(table["id"]) if owner == row]
        spans = [(table["char_start"][k], table["char_end"][k]) for k in mine]
        assert [table["chunk_index"][k] for k in mine] == list(range(len(mine)))
        stripped_start = len(text) - len(text.lstrip())
        assert spans[0][0] == stripped_start and spans[-1][1] == len(text.rstrip())
        assert all(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))  # windows overlap
        by_hand = tiny_model.encode([[INSTRUCTION, text[start:end]] for start, end in spans])
        assert np.abs(np.array([table["embedding"][k] for k in mine]) - by_hand).max() <= 1e-6
        windows = tiny_model.engine.tokenize([tiny_model_item(text[start:end]) for start, end in spans]).token_counts
        assert max(windows) <= 32  # every window fits the 32-token window: nothing was cut
    assert len([owner for owner in table["id"] if owner == 0]) > 3 and table["id"].count(1) == 1


def tiny_model_item(text):
    from instructor_embed import Item

    return Item(INSTRUCTION, text)


def test_mean_is_the_token_weighted_mean_of_the_windows(tiny_t5_dir, tmp_path):
    chunks = job(tiny_t5_dir, tmp_path, "chunk")
    mean = job(tiny_t5_dir, tmp_path, "mean")
    assert mean["id"] == [0, 1, 2] and "chunk_index" not in mean
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5_dir)
    for row, text in enumerate(TEXTS):
        mine = [k for k, owner in enumerate(chunks["id"]) if owner == row]
        weights = []
        for k in mine:
            piece = text[chunks["char_start"][k] : chunks["char_end"][k]]
            weights.append(len(tokenizer(piece, add_special_tokens=False)["input_ids"]))
        vectors = np.array([chunks["embedding"][k] for k in mine])
        expected = (vectors * np.array(weights)[:, None]).sum(0)
        expected /= np.linalg.norm(expected)
        assert np.abs(np.array(mean["embedding"][row]) - expected).max() <= 1e-5


def test_truncate_is_todays_behaviour_and_the_mode_is_part_of_the_job(tiny_t5_dir, tmp_path):
    from instructor_embed import INSTRUCTOR, InputError

    table = job(tiny_t5_dir, tmp_path, "truncate")
    short_window = INSTRUCTOR(tiny_t5_dir, device="cpu", max_seq_length=32)
    expected = short_window.encode([[INSTRUCTION, text] for text in TEXTS])
    assert np.abs(np.array(table["embedding"]) - expected).max() <= 1e-6
    with pytest.raises(InputError, match="long_text: 'truncate' -> 'mean'"):
        run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "truncate", max_seq_length=32, long_text="mean")
    with pytest.raises(InputError, match="chunk_overlap 30 must be smaller"):
        run_job(
            tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "x", max_seq_length=32, long_text="chunk", chunk_overlap=30
        )
