"""Resumable bulk embedding: shards, manifest, damaged shards, changed settings, bad rows (kills and other faults: tests/reliability)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from instructor_embed import InputError

pq = pytest.importorskip("pyarrow.parquet")

INSTRUCTION = "Represent the sentence for retrieving duplicate sentences: "


def write_input(path, count: int, **extra) -> list[dict]:
    rows = [
        {"id": f"doc-{i}", "text": f"sentence {i} about topic {i % 7} " + "and more words " * (i % 13)}
        for i in range(count)
    ]
    for index, row in extra.items():
        rows[int(index.removeprefix("row"))] = row
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def read_output(folder) -> tuple[list, np.ndarray]:
    manifest = json.loads((folder / "_manifest.json").read_text())
    tables = [pq.read_table(folder / shard["file"]).to_pydict() for shard in manifest["shards"]]
    ids = [i for table in tables for i in table["id"]]
    vectors = np.array([v for table in tables for v in table["embedding"]], dtype=np.float32)
    return ids, vectors


MODEL_OPTIONS = ("max_seq_length", "truncate_dim", "dtype", "backend", "quantize")


def run_job(model_dir, source, output, **options):
    """The job with these options (the model's own, like max_seq_length, go to its ModelSpec), on the CPU."""
    from instructor_embed import ModelSpec
    from instructor_embed.bulk import JobConfig, embed_file

    spec = ModelSpec(model_dir, device="cpu", **{name: options.pop(name) for name in MODEL_OPTIONS if name in options})
    settings = dict(input=source, output=output, model=spec, instruction=INSTRUCTION, shard_rows=40)
    return embed_file(JobConfig(**{**settings, "show_progress": False, **options}))


def test_a_job_writes_shards_and_a_manifest_with_the_librarys_vectors(tiny_t5_dir, tiny_model, tmp_path):
    rows = write_input(tmp_path / "in.jsonl", 100)
    summary = run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")
    assert (summary.rows, summary.embedded_now, summary.shards) == (100, 100, 3)
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["complete"] and [(s["start"], s["end"]) for s in manifest["shards"]] == [
        (0, 40),
        (40, 80),
        (80, 100),
    ]
    assert manifest["identity"]["instruction"] == INSTRUCTION and manifest["identity"]["dimension"] == 768
    ids, vectors = read_output(tmp_path / "out")
    assert ids == [row["id"] for row in rows]
    expected = tiny_model.encode([[INSTRUCTION, row["text"]] for row in rows])
    assert np.abs(vectors - expected).max() <= 1e-6
    again = run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")  # complete: nothing left to do
    assert again.embedded_now == 0 and read_output(tmp_path / "out")[0] == ids


def test_changed_settings_are_refused_and_overwrite_starts_again(tiny_t5_dir, minilm_dir, tmp_path):
    write_input(tmp_path / "in.jsonl", 30)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")
    with pytest.raises(InputError, match=r"other settings \(model: the checkpoint's files differ; .*instruction"):
        run_job(minilm_dir, tmp_path / "in.jsonl", tmp_path / "out", instruction="Represent the text: ")
    with pytest.raises(InputError, match="other settings .*normalize: False -> True"):
        run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", normalize=True)
    summary = run_job(minilm_dir, tmp_path / "in.jsonl", tmp_path / "out", overwrite=True)
    assert summary.embedded_now == 30 and read_output(tmp_path / "out")[1].shape == (30, 384)


def test_a_damaged_shard_and_a_stray_one_are_redone(tiny_t5_dir, tmp_path):
    write_input(tmp_path / "in.jsonl", 100)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "straight")
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")
    second = tmp_path / "out" / "part-00001.parquet"
    second.write_bytes(second.read_bytes()[:-100])  # a disk that lost the end of a committed shard
    (tmp_path / "out" / ".part-00003.parquet.123-abcdef.partial").write_bytes(b"half-written by a killed run")
    summary = run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")
    assert summary.embedded_now == 60  # shards 1 and 2 again
    ids, vectors = read_output(tmp_path / "out")
    straight_ids, straight = read_output(tmp_path / "straight")
    assert ids == straight_ids and np.array_equal(vectors, straight)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_lock",
        "_manifest.json",
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]


def test_bad_rows_stop_the_job_before_the_model_loads_or_are_skipped_and_listed(tmp_path, tiny_t5_dir):
    write_input(tmp_path / "in.jsonl", 50, row7={"id": "x", "text": 5}, row20={"id": "y"})
    with open(tmp_path / "in.jsonl", "ab") as handle:
        handle.write(b'{"id": "z", "text": "caf\xe9"}\n{"id": "w", "text": "fine"}\n')
    from instructor_embed import ModelSpec

    def no_weights(spec):
        raise AssertionError("the weights loaded before the input was checked")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ModelSpec, "load", no_weights)
        with pytest.raises(InputError) as caught:
            run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")
    message = str(caught.value)
    assert "3 invalid rows" in message and "line 8: 'text' must be a string" in message
    assert "line 21: no 'text' field" in message and "line 51: not valid UTF-8" in message
    assert not (tmp_path / "out").exists()
    summary = run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", skip_invalid=True)
    assert (summary.rows, summary.invalid_rows) == (49, 3)
    listed = [json.loads(line) for line in (tmp_path / "out" / "_invalid_rows.jsonl").read_text().splitlines()]
    assert [row["line"] for row in listed] == [8, 21, 51]
    ids, _ = read_output(tmp_path / "out")
    assert "x" not in ids and "y" not in ids and "z" not in ids and ids[-1] == "w" and len(ids) == 49


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt", ".parquet"])
def test_every_input_format_and_field_names(tiny_t5_dir, tiny_model, tmp_path, suffix):
    texts = [f"passage {i}" for i in range(12)]
    path = tmp_path / f"in{suffix}"
    if suffix == ".txt":
        path.write_text("\n".join(texts) + "\n")
    elif suffix == ".parquet":
        import pyarrow as pa

        pq.write_table(pa.table({"body": texts, "key": list(range(100, 112))}), path)
    else:
        separator = "," if suffix == ".csv" else "\t"
        path.write_text(f"key{separator}body\n" + "".join(f"{100 + i}{separator}{t}\n" for i, t in enumerate(texts)))
    from instructor_embed.records import Fields

    fields = Fields(text="body", id="key") if suffix != ".txt" else Fields()
    run_job(tiny_t5_dir, path, tmp_path / "out", fields=fields, instruction=None, shard_rows=5)
    ids, vectors = read_output(tmp_path / "out")
    expected_ids = (
        list(range(12))
        if suffix == ".txt"
        else ([str(100 + i) for i in range(12)] if suffix != ".parquet" else list(range(100, 112)))
    )
    assert ids == expected_ids
    assert np.abs(vectors - tiny_model.encode(texts)).max() <= 1e-6
