"""instructor-embed search: exact top-k over the shards, checked against brute force and against real qrels."""

from __future__ import annotations

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


def test_an_unfinished_index_is_refused(tiny_t5_dir, tmp_path):
    write_input(tmp_path / "in.jsonl", 20)
    run_job(tiny_t5_dir, tmp_path / "in.jsonl", tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (tmp_path / "out" / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(InputError, match="not complete"):
        search(tmp_path / "out", ["q"])
    with pytest.raises(InputError, match="no manifest.json"):
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
