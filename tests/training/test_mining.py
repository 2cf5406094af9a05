"""instructor-embed mine against brute force, on the real MS MARCO sample with the real MiniLM weights."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from support import shared_path

from instructor_embed import INSTRUCTOR, InputError
from instructor_embed.training.mining import MiningRules, mine_hard_negatives

QUERY = "Represent the question for retrieving supporting documents: "
DOCUMENT = "Represent the document for retrieval: "


@pytest.fixture(scope="module")
def msmarco(tmp_path_factory):
    """(pairs file, corpus file, corpus texts): each sample query with its best-judged passage, and a corpus of
    the judged passages plus 300 others."""
    folder = shared_path("data/retrieval/msmarco-sample")
    corpus = {row["_id"]: row["text"] for row in map(json.loads, open(folder / "corpus.jsonl", encoding="utf-8"))}
    queries = {row["_id"]: row["text"] for row in map(json.loads, open(folder / "queries.jsonl", encoding="utf-8"))}
    best: dict[str, tuple[int, str]] = {}
    with open(folder / "qrels/test.tsv", encoding="utf-8") as handle:
        for query, document, score in csv.reader(handle, delimiter="\t"):
            if query in queries and document in corpus and int(score) > best.get(query, (0, ""))[0]:
                best[query] = (int(score), document)
    pairs = [{"query": queries[q], "answer": corpus[d]} for q, (_, d) in sorted(best.items())]
    judged = {d for _, d in best.values()}
    others = [text for key, text in sorted(corpus.items()) if key not in judged][:300]
    root = tmp_path_factory.mktemp("mine")
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    (root / "corpus.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in others), encoding="utf-8")
    return root, pairs, others


def brute_force(model, pairs, others, rules: MiningRules) -> list[list[str]]:
    """The rules applied one query at a time over the whole similarity matrix, written out plainly."""
    texts = list(dict.fromkeys(others + [p["answer"] for p in pairs]))
    documents = model.encode([[DOCUMENT, t] for t in texts])
    queries = model.encode([[QUERY, p["query"]] for p in pairs])
    mined = []
    for pair, query in zip(pairs, queries, strict=True):
        scores = documents @ query
        positive = float(scores[texts.index(pair["answer"])])
        ranked = [i for i in np.argsort(-scores, kind="stable") if texts[i] not in (pair["answer"], pair["query"])]
        window = ranked[rules.range_min : rules.range_max]
        limit = min(
            positive - (rules.absolute_margin if rules.absolute_margin is not None else -np.inf),
            positive * (1 - rules.relative_margin) if rules.relative_margin is not None else np.inf,
            rules.max_score if rules.max_score is not None else np.inf,
        )
        mined.append([texts[i] for i in window if scores[i] <= limit][: rules.num_negatives])
    return mined


@pytest.mark.parametrize(
    "rules",
    [
        MiningRules(num_negatives=3, range_max=20),
        pytest.param(
            MiningRules(num_negatives=4, range_min=5, range_max=30, absolute_margin=0.05), marks=pytest.mark.slow
        ),
        pytest.param(
            MiningRules(num_negatives=2, range_max=40, relative_margin=0.1, max_score=0.6), marks=pytest.mark.slow
        ),
    ],
)
def test_mined_negatives_equal_brute_force(minilm_dir, msmarco, tmp_path, rules):
    root, pairs, others = msmarco
    model = INSTRUCTOR(minilm_dir, device="cpu", max_seq_length=128)
    output = tmp_path / "mined.jsonl"
    report = mine_hard_negatives(
        model, root / "pairs.jsonl", output, corpus=root / "corpus.jsonl",
        columns={"anchor": "query", "positive": "answer"}, query_instruction=QUERY, document_instruction=DOCUMENT,
        rules=rules,
    )  # fmt: skip
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").split("\n") if line]
    assert [(r["anchor"], r["positive"]) for r in rows] == [(p["query"], p["answer"]) for p in pairs]
    assert [r["negatives"] for r in rows] == brute_force(model, pairs, others, rules)
    assert report.rows == len(pairs) and report.negatives == sum(len(r["negatives"]) for r in rows)
    assert all(p["answer"] not in r["negatives"] for p, r in zip(pairs, rows, strict=True))
    if rules.max_score is None and rules.absolute_margin is None:
        assert report.short_rows == 0 and all(len(r["negatives"]) == rules.num_negatives for r in rows)


@pytest.mark.slow
def test_faiss_and_random_sampling(minilm_dir, msmarco, tmp_path):
    root, pairs, others = msmarco
    model = INSTRUCTOR(minilm_dir, device="cpu", max_seq_length=128)
    common = dict(corpus=root / "corpus.jsonl", columns={"anchor": "query", "positive": "answer"},
                  query_instruction=QUERY, document_instruction=DOCUMENT)  # fmt: skip
    window = MiningRules(num_negatives=30, range_max=30)
    mine_hard_negatives(model, root / "pairs.jsonl", tmp_path / "window.jsonl", rules=window, **common)
    sampled = MiningRules(num_negatives=3, range_max=30, sampling="random", seed=7)
    mine_hard_negatives(model, root / "pairs.jsonl", tmp_path / "a.jsonl", rules=sampled, **common)
    mine_hard_negatives(model, root / "pairs.jsonl", tmp_path / "b.jsonl", rules=sampled, **common)

    def read(name: str) -> list[list[str]]:
        lines = (tmp_path / name).read_text(encoding="utf-8").split("\n")
        return [json.loads(line)["negatives"] for line in lines if line]

    assert read("a.jsonl") == read("b.jsonl")  # seeded
    assert all(len(a) == 3 and set(a) <= set(w) for a, w in zip(read("a.jsonl"), read("window.jsonl"), strict=True))
    assert read("a.jsonl") != [w[:3] for w in read("window.jsonl")]  # a sample, not the top
    pytest.importorskip("faiss")
    top = MiningRules(num_negatives=5, range_max=20)
    mine_hard_negatives(model, root / "pairs.jsonl", tmp_path / "exact.jsonl", rules=top, **common)
    mine_hard_negatives(model, root / "pairs.jsonl", tmp_path / "faiss.jsonl", rules=top, faiss=True, **common)
    assert read("exact.jsonl") == read("faiss.jsonl")


def test_rules_are_checked_before_anything_loads():
    with pytest.raises(InputError, match="fewer than num_negatives"):
        MiningRules(num_negatives=10, range_min=5, range_max=10).check()
    with pytest.raises(InputError, match="0 <= range_min < range_max"):
        MiningRules(range_min=10, range_max=10).check()


@pytest.mark.slow
def test_the_cli_writes_rows_train_reads(minilm_dir, msmarco, tmp_path):
    from instructor_embed.training.data import TaskSource, load_training_data

    root, pairs, _ = msmarco
    output = tmp_path / "mined.jsonl"
    command = [
        sys.executable, "-m", "instructor_embed", "mine", "--model", str(minilm_dir), "--data",
        str(root / "pairs.jsonl"), "--columns", "anchor=query,positive=answer", "--corpus", str(root / "corpus.jsonl"),
        "--output", str(output), "--num-negatives", "2", "--range-min", "2", "--range-max", "12",
        "--query-instruction", QUERY, "--document-instruction", DOCUMENT, "--device", "cpu", "--quiet",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{len(pairs)} rows, 2.00 hard negatives per row" in result.stderr
    data = load_training_data([TaskSource(output)])
    assert data.formats == {"mined": "pairs"} and all(len(e.negatives) == 2 for e in data.examples)
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr
