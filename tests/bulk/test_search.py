"""instructor-embed search: exact top-k over the shards, checked against brute force and against real qrels."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from test_job import read_output, run_job, write_input

from instructor_embed import InputError
from instructor_embed.bulk.search import search


def test_top_k_across_shards_equals_brute_force(tiny_t5_dir, tiny_model, tmp_path):
    write_input(tmp_path / "in.jsonl", 60)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", shard_rows=7)
    ids, stored = read_output(tmp_path / "out")
    queries = ["sentence 5 about topic 5", "and more words and more words"]
    hits = search(tmp_path / "out", queries, k=5, instruction="Represent the question: ", model=tiny_model)
    q = tiny_model.encode([["Represent the question: ", query] for query in queries])
    scores = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (stored / np.linalg.norm(stored, axis=1, keepdims=True)).T
    for row, found in zip(scores, hits, strict=True):
        assert [hit.id for hit in found] == [ids[j] for j in np.argsort(-row, kind="stable")[:5]]
        assert [hit.score for hit in found] == pytest.approx(sorted(row, reverse=True)[:5], abs=1e-5)


def brute_force_documents(model, index, queries, instruction):
    """Each query's documents by their best chunk, best first, from every stored row at once."""
    import pyarrow.parquet as pq

    manifest = json.loads((index / "_manifest.json").read_text())
    tables = [pq.read_table(index / shard["file"]).to_pydict() for shard in manifest["shards"]]
    table = {name: [v for t in tables for v in t[name]] for name in tables[0]}
    stored = np.array(table["embedding"], dtype=np.float32)
    q = model.encode([[instruction, query] for query in queries])
    scores = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (stored / np.linalg.norm(stored, axis=1, keepdims=True)).T
    ranked = []
    for row in scores:
        best = {}
        for j in np.argsort(-row, kind="stable"):
            best.setdefault(table["id"][j], (float(row[j]), table["chunk_index"][j], table["char_start"][j]))
        ranked.append(list(best.items()))
    return ranked


def chunked_job(tiny_t5_dir, tmp_path) -> None:
    """40 rows into tmp_path/out, each split into 32-token windows (several per row) over 9-row shards."""
    write_input(tmp_path / "in.jsonl", 40)
    options = dict(shard_rows=9, max_seq_length=32, long_text="chunk", chunk_overlap=4)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", **options)


def test_chunked_output_lists_each_document_once_with_its_best_chunk(tiny_t5_dir, tiny_model, tmp_path):
    chunked_job(tiny_t5_dir, tmp_path)
    queries = ["sentence 12 about topic 5", "and more words"]
    hits = search(tmp_path / "out", queries, k=6, instruction="Represent the question: ", model=tiny_model)
    expected = brute_force_documents(tiny_model, tmp_path / "out", queries, "Represent the question: ")
    for found, ranked in zip(hits, expected, strict=True):
        assert len({hit.id for hit in found}) == 6
        assert [(h.id, h.chunk_index, h.char_start) for h in found] == [(i, c, s) for i, (_, c, s) in ranked[:6]]
        assert [h.score for h in found] == pytest.approx([score for _, (score, _, _) in ranked[:6]], abs=1e-5)
    # ranking by best chunk is exercised: some document is found by a window other than its first
    assert any(hit.chunk_index > 0 and hit.char_start > 0 for found in hits for hit in found)


def test_faiss_finds_the_exact_neighbours_and_reuses_its_index(tiny_t5_dir, tiny_model, tmp_path):
    pytest.importorskip("faiss")
    write_input(tmp_path / "in.jsonl", 300)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", shard_rows=70)
    queries = ["sentence 5 about topic 5", "and more words and more words", "topic 3"]
    options = dict(k=10, instruction="Represent the question: ", model=tiny_model)
    exact = search(tmp_path / "out", queries, **options)
    approximate = search(tmp_path / "out", queries, faiss=True, **options)
    for mine, theirs in zip(exact, approximate, strict=True):
        assert [hit.id for hit in theirs] == [hit.id for hit in mine]
        assert [hit.score for hit in theirs] == pytest.approx([hit.score for hit in mine], abs=1e-5)
    built = (tmp_path / "out" / "_faiss" / "index.faiss").stat().st_mtime_ns
    search(tmp_path / "out", queries, faiss=True, **options)
    assert (tmp_path / "out" / "_faiss" / "index.faiss").stat().st_mtime_ns == built  # reused
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", shard_rows=70, overwrite=True, normalize=True)
    again = search(tmp_path / "out", queries, faiss=True, **options)  # new shards: the index is rebuilt
    assert (tmp_path / "out" / "_faiss" / "index.faiss").stat().st_mtime_ns != built
    assert [hit.id for hit in again[0]] == [hit.id for hit in exact[0]]


def test_faiss_search_of_chunked_output_lists_documents_once(tiny_t5_dir, tiny_model, tmp_path):
    pytest.importorskip("faiss")
    chunked_job(tiny_t5_dir, tmp_path)
    options = dict(k=5, instruction="Represent the question: ", model=tiny_model)
    exact = search(tmp_path / "out", ["sentence 12 about topic 5 and more"], **options)
    approximate = search(tmp_path / "out", ["sentence 12 about topic 5 and more"], faiss=True, **options)
    # repeated words give identical windows in several documents: equal scores may come in either order
    assert [h.score for h in approximate[0]] == pytest.approx([h.score for h in exact[0]], abs=1e-5)
    assert len({h.id for h in approximate[0]}) == 5 and all(h.chunk_index is not None for h in approximate[0])


def test_an_unfinished_index_is_refused(tiny_t5_dir, tmp_path):
    write_input(tmp_path / "in.jsonl", 20)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    (tmp_path / "out" / "_manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(InputError, match="not complete"):
        search(tmp_path / "out", ["q"])
    with pytest.raises(InputError, match="no _manifest.json"):
        search(tmp_path, ["q"])


@pytest.mark.slow
def test_cli_search_finds_the_judged_passages_of_ms_marco_queries(minilm_dir, tmp_path, capsys):
    """Real queries and passages (the MS MARCO sample): each query's judged passages among 300, found in its top 10."""
    from support import shared_path

    from instructor_embed.cli import main

    folder = shared_path("data/retrieval/msmarco-sample")
    qrels = [line.split("\t") for line in (folder / "qrels/test.tsv").read_text().strip().split("\n")[1:]]
    queries = {
        json.loads(line)["_id"]: json.loads(line)["text"]
        for line in (folder / "queries.jsonl").read_text().strip().split("\n")
    }
    chosen = list(dict.fromkeys(q for q, _, grade in qrels if int(grade) >= 2))[:5]
    relevant = {q: {d for qq, d, grade in qrels if qq == q and int(grade) >= 2} for q in chosen}
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").strip().split("\n")]
    wanted = set().union(*relevant.values())
    kept = [row for row in corpus if row["_id"] in wanted] + [row for row in corpus if row["_id"] not in wanted][:300]
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": r["_id"], "text": r["text"]}) + "\n" for r in kept)
    )
    args = ["--model", str(minilm_dir), "--input", str(tmp_path / "corpus.jsonl"), "--output", str(tmp_path / "index")]
    assert main(["encode", *args, "--quiet", "--device", "cpu"]) == 0
    command = [
        "search",
        "--index",
        str(tmp_path / "index"),
        "--instruction",
        "",
        "-k",
        "10",
        "--json",
        "--device",
        "cpu",
    ]
    command += [part for q in chosen for part in ("--query", queries[q])]
    assert main([*command, "--show-text", str(tmp_path / "corpus.jsonl")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    found = [bool(relevant[q] & {hit["id"] for hit in line["hits"]}) for q, line in zip(chosen, lines, strict=True)]
    assert sum(found) >= 4, found
    assert all(hit["text"] for line in lines for hit in line["hits"])
    if importlib.util.find_spec("faiss"):  # the HNSW index finds the same passages on this small corpus
        assert main([*command, "--faiss"]) == 0
        approximate = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [[h["id"] for h in line["hits"]] for line in approximate] == [
            [h["id"] for h in line["hits"]] for line in lines
        ]


def test_search_loads_the_jobs_model_as_the_job_ran_it_and_refuses_another(tiny_t5_dir, minilm_model, tmp_path):
    """It used to load the manifest's model name with default options: a bfloat16 job got float32 queries."""
    import warnings

    from instructor_embed import ModelSpec

    write_input(tmp_path / "in.jsonl", 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 on a CPU without native bf16 is slow, and says so
        run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out", dtype="bfloat16")
    loaded, real_load = [], ModelSpec.load

    def spy(spec):
        loaded.append(spec)
        return real_load(spec)

    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setattr(ModelSpec, "load", spy)
        hits = search(tmp_path / "out", ["topic 3"], k=3)
    assert [spec.dtype for spec in loaded] == ["bfloat16"] and len(hits[0]) == 3
    with pytest.raises(InputError, match="was embedded with another model"):
        search(tmp_path / "out", ["topic 3"], model=minilm_model)
