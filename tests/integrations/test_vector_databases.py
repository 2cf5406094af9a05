"""LanceDB and Milvus, real embedded databases: the embedding functions, and a bulk job exported into LanceDB."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

INSTRUCTION = "Represent the document for retrieval: "
QUERY_INSTRUCTION = "Represent the question for retrieving supporting documents: "
TEXTS = [
    "Aspirin is used to reduce fever and pain.",
    "The central bank raised interest rates again.",
    "A chef is slicing onions in the kitchen.",
    "The striker scored twice in the final.",
]


def test_lancedb_registry_function_embeds_rows_and_queries_as_encode(minilm_dir, minilm_model, tmp_path):
    lancedb = pytest.importorskip("lancedb")
    from lancedb.embeddings import get_registry
    from lancedb.pydantic import LanceModel, Vector

    import instructor_embed.integrations.lancedb  # noqa: F401 - registers "instructor-embed"

    function = get_registry().get("instructor-embed").create(
        name=str(minilm_dir), source_instruction=INSTRUCTION, query_instruction=QUERY_INSTRUCTION,
        show_progress_bar=False,
    )  # fmt: skip

    class Document(LanceModel):
        text: str = function.SourceField()
        vector: Vector(function.ndims()) = function.VectorField()

    table = lancedb.connect(tmp_path / "db").create_table("docs", schema=Document)
    table.add([{"text": text} for text in TEXTS])
    stored = np.array(table.to_arrow().column("vector").to_pylist(), dtype=np.float32)
    expected = minilm_model.encode([[INSTRUCTION, text] for text in TEXTS], normalize_embeddings=True)
    assert np.abs(stored - expected).max() <= 1e-6
    found = table.search("Which medicine lowers a temperature?").limit(1).to_list()
    assert found[0]["text"] == TEXTS[0]


def test_milvus_function_is_a_drop_in_and_searches_a_real_milvus_lite(minilm_dir, minilm_model, tmp_path):
    pymilvus = pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from instructor_embed.integrations.milvus import InstructorEmbeddingFunction

    embed = InstructorEmbeddingFunction(
        model_name=str(minilm_dir), batch_size=2, query_instruction=QUERY_INSTRUCTION, doc_instruction=INSTRUCTION
    )
    documents = embed.encode_documents(TEXTS)
    expected = minilm_model.encode([[INSTRUCTION, text] for text in TEXTS], normalize_embeddings=True)
    assert embed.dim == 384 and np.abs(np.array(documents) - expected).max() <= 1e-6
    client = pymilvus.MilvusClient(str(tmp_path / "milvus.db"))
    try:
        client.create_collection("docs", dimension=embed.dim)
        client.insert(
            "docs",
            [{"id": i, "vector": v.tolist(), "text": t} for i, (t, v) in enumerate(zip(TEXTS, documents, strict=True))],
        )
        hits = client.search(
            "docs", data=[v.tolist() for v in embed.encode_queries(["Which medicine lowers a temperature?"])],
            limit=1, output_fields=["text"],
        )  # fmt: skip
    finally:
        client.close()
    assert hits[0][0]["entity"]["text"] == TEXTS[0]


@pytest.mark.parametrize("chunked", [False, True])
def test_export_streams_a_bulk_job_into_lancedb(tiny_t5_dir, tmp_path, chunked):
    lancedb = pytest.importorskip("lancedb")
    sys.path.insert(0, str(Path(__file__).parents[1] / "bulk"))
    from test_job import read_output, run_job, write_input

    from instructor_embed.cli import main

    rows = write_input(tmp_path / "in.jsonl", 300, row4={"id": "bad", "text": 4})
    options = dict(max_seq_length=16, long_text="chunk", chunk_overlap=2) if chunked else {}
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", shard_rows=70, skip_invalid=True, **options)
    ids, vectors = read_output(tmp_path / "out")
    target = f"lancedb://{tmp_path / 'db'}/docs"
    command = ["export", "--index", str(tmp_path / "out"), "--to", target, "--input", str(tmp_path / "in.jsonl")]
    assert main([*command, "--ann-min-rows", "256", "--quiet"]) == 0
    table = lancedb.connect(tmp_path / "db").open_table("docs").to_arrow().to_pydict()
    assert table["id"] == ids and np.abs(np.array(table["vector"], dtype=np.float32) - vectors).max() == 0
    texts = {row["id"]: row["text"] for row in rows if isinstance(row.get("text"), str)}
    if chunked:  # each stored row's text is its own window of its document
        spans = zip(table["id"], table["text"], table["char_start"], table["char_end"], strict=True)
        assert len(ids) > 299 and all(text and text == texts[i][start:end] for i, text, start, end in spans)
        assert any(start > 0 for start in table["char_start"])
    else:
        assert table["text"] == [texts[i] for i in ids]
    assert lancedb.connect(tmp_path / "db").open_table("docs").list_indices()  # 299+ rows: an ANN index
    assert main([*command, "--quiet"]) == 2  # the table exists: refused without --overwrite
    assert main([*command, "--overwrite", "--quiet"]) == 0
    assert not lancedb.connect(tmp_path / "db").open_table("docs").list_indices()  # under 10,000 rows: exact
    changed = tmp_path / "in.jsonl"
    changed.write_text(changed.read_text() + json.dumps({"id": "new", "text": "x"}) + "\n")
    assert main([*command, "--overwrite", "--quiet"]) == 2  # not the job's input any more
