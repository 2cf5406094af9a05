"""Tasks from users' spec files, and the local MS MARCO retrieval task, scored by mteb's own evaluators."""

from __future__ import annotations

import csv
import json

import pytest
from support import shared_path

from instructor_embed import InputError

pytest.importorskip("mteb")


def _evaluate(models, tasks, output, **options):
    from instructor_embed.evaluation.runner import EvalConfig, evaluate

    config = EvalConfig(
        models=tuple(str(m) for m in models),
        tasks=tuple(str(t) for t in tasks),
        output_dir=str(output),
        batch_size=64,
        device="cpu",
        **options,
    )
    return evaluate(config)


def _write_spec(path, **spec):
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def user_data(tmp_path_factory):
    """Spec files over real data: STS-B test pairs, ten Banking77 intents, eight MS MARCO queries."""
    folder = tmp_path_factory.mktemp("user_tasks")
    lines = shared_path("data/sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    with open(folder / "pairs.tsv", "w", encoding="utf-8", newline="") as handle:  # TSV as users have it: no quoting
        handle.write("sentence1\tsentence2\tscore\n")
        handle.writelines(f"{f[5]}\t{f[6]}\t{f[4]}\n" for f in (line.split("\t") for line in lines))
    banking = shared_path("data/classification/banking77")
    intents = sorted({row["category"] for row in csv.DictReader(open(banking / "train.csv", encoding="utf-8"))})[:10]
    for split in ("train", "test"):
        with open(banking / f"{split}.csv", encoding="utf-8") as source, open(folder / f"{split}.jsonl", "w") as out:
            for row in csv.DictReader(source):
                if row["category"] in intents:
                    out.write(json.dumps({"text": row["text"], "label": row["category"]}) + "\n")
    _write_beir_subset(shared_path("data/retrieval/msmarco-sample"), folder / "beir", queries=8, extra_documents=400)
    return {
        "sts": _write_spec(folder / "sts.json", name="MySTS", type="sts", test="pairs.tsv", min_score=0, max_score=5),
        "classification": _write_spec(
            folder / "classification.json",
            name="MyIntents",
            type="classification",
            train="train.jsonl",
            test="test.jsonl",
            instruction="Represent the bank query for classifying its intent: ",
        ),
        "clustering": _write_spec(folder / "clustering.json", name="MyClusters", type="clustering", test="test.jsonl"),
        "retrieval": _write_spec(
            folder / "retrieval.json",
            name="MyPassages",
            type="retrieval",
            folder="beir",
            instruction={"query": "Represent the question: ", "corpus": "Represent the passage: "},
        ),
    }


def _write_beir_subset(source, target, queries: int, extra_documents: int) -> None:
    (target / "qrels").mkdir(parents=True)
    judgements = [line.split("\t") for line in (source / "qrels/test.tsv").read_text().strip("\n").split("\n")]
    kept_queries = list(dict.fromkeys(query for query, _, _ in judgements))[:queries]
    kept_judgements = [row for row in judgements if row[0] in kept_queries]
    judged = {document for _, document, _ in kept_judgements}
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").read_text().strip("\n").split("\n")]
    unjudged = [row for row in corpus if row["_id"] not in judged][:extra_documents]
    with open(target / "corpus.jsonl", "w") as out:
        out.writelines(json.dumps(row) + "\n" for row in corpus if row["_id"] in judged or row in unjudged)
    with open(target / "queries.jsonl", "w") as out:
        for line in (source / "queries.jsonl").read_text().strip("\n").split("\n"):
            out.write(line + "\n" if json.loads(line)["_id"] in kept_queries else "")
    (target / "qrels/test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join("\t".join(row) + "\n" for row in kept_judgements)
    )


@pytest.mark.slow
def test_spec_tasks_are_scored_by_mteb(minilm_dir, user_data, tmp_path):
    results = _evaluate([minilm_dir], user_data.values(), tmp_path)[str(minilm_dir)]
    assert set(results) == {"MySTS", "MyIntents", "MyClusters", "MyPassages"}
    assert all("error" not in scores for scores in results.values()), results
    # The same pairs as mteb's STSBenchmark, through the same evaluator: the published score.
    assert abs(100 * results["MySTS"]["main_score"] - 82.03) <= 0.15
    assert results["MySTS"]["main_score"] == results["MySTS"]["cosine_spearman"]
    assert results["MyIntents"]["main_score"] == results["MyIntents"]["accuracy"] > 0.9
    assert results["MyClusters"]["main_score"] == results["MyClusters"]["v_measure"] > 0.8
    assert results["MyPassages"]["main_score"] == results["MyPassages"]["ndcg_at_10"] > 0.6
    assert 0 < results["MyPassages"]["recall_at_1"] <= results["MyPassages"]["recall_at_100"] <= 1
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["MyIntents"]["main_score"] == results["MyIntents"]["main_score"]


def test_spec_instructions_reach_the_encoder(user_data):
    from instructor_embed.evaluation.instruction_sets import builtin_sets, instruction_for
    from instructor_embed.evaluation.runner import _instructions
    from instructor_embed.evaluation.user_tasks import load_user_task

    tasks = [load_user_task(user_data[kind]) for kind in ("classification", "retrieval", "sts")]
    mine = _instructions(None, "./my-model", tasks)
    assert mine["MyIntents"] == "Represent the bank query for classifying its intent: "
    assert instruction_for(mine, "MyPassages", "corpus") == "Represent the passage: "
    assert instruction_for(mine, "MyPassages", "query") == "Represent the question: "
    assert "MySTS" not in mine  # its spec gives none: plain text
    assert _instructions("none", "./my-model", tasks) == {}
    large = _instructions("hkunlp/instructor-large", "./my-model", tasks)
    assert large["MSMARCO-sample"] == builtin_sets()["hkunlp/instructor-large"]["MSMARCO"]
    assert large["MyIntents"] == mine["MyIntents"]
    assert tasks[0].task.samples_per_label == 8 and tasks[2].task.min_score == 0 and tasks[2].task.max_score == 5


def _spec_error(tmp_path, files: dict[str, str], spec: dict) -> str:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    from instructor_embed.evaluation.user_tasks import load_user_task

    with pytest.raises(InputError) as caught:
        load_user_task(_write_spec(tmp_path / "spec.json", **spec))
    return str(caught.value)


BEIR_FILES = {
    "b/corpus.jsonl": '{"_id": "d1", "text": "a passage"}\n{"_id": "d2", "title": "T", "text": "another"}\n',
    "b/queries.jsonl": '{"_id": "q1", "text": "a question"}\n',
}


@pytest.mark.parametrize(
    ("files", "spec", "message"),
    [
        ({}, {"name": "X", "type": "ranking", "test": "t.csv"}, "type must be one of sts, classification"),
        ({}, {"name": "X", "type": "sts", "tset": "t.csv"}, "unknown key(s) tset for a sts task"),
        ({}, {"name": "X", "type": "sts", "test": "t.csv"}, "t.csv: no such file"),
        ({}, {"name": "X", "type": "clustering", "test": "t.txt"}, "unsupported table type '.txt'"),
        ({}, {"type": "sts", "test": "t.csv"}, "'name' must be a non-empty string"),
        ({}, {"name": "X", "type": "sts", "test": "t.csv", "instruction": {"query": "q"}}, "must be a string"),
        (
            {},
            {"name": "X", "type": "classification", "train": "a.csv", "test": "b.csv", "samples_per_label": "all"},
            "samples_per_label must be a positive integer",
        ),
        (
            {"t.csv": "sentence1,sentence2,score\na,b,1\nc,d,high\n"},
            {"name": "X", "type": "sts", "test": "t.csv"},
            "t.csv, line 3: score must be a number, got 'high'",
        ),
        (
            {"t.tsv": "sentence1\tscore\na\t1\n"},
            {"name": "X", "type": "sts", "test": "t.tsv"},
            "t.tsv, line 2: missing sentence2",
        ),
        (
            {"t.jsonl": '{"text": "a", "label": "x"}\n{"text": "", "label": "y"}\n'},
            {"name": "X", "type": "clustering", "test": "t.jsonl"},
            "t.jsonl, line 2: text must be a non-empty string",
        ),
        (
            {"tr.csv": "text,label\na,x\nb,y\n", "te.csv": "text,label\nc,x\nd,z\n"},
            {"name": "X", "type": "classification", "train": "tr.csv", "test": "te.csv"},
            "label(s) z never appear in",
        ),
        (
            {**BEIR_FILES, "b/qrels/test.tsv": "q1\td1\t1\nq1\td9\t1\n"},
            {"name": "X", "type": "retrieval", "folder": "b"},
            "test.tsv, line 2: document 'd9' is not in corpus.jsonl",
        ),
        (
            {**BEIR_FILES, "b/qrels/dev.tsv": "q1\td1\t1\n"},
            {"name": "X", "type": "retrieval", "folder": "b"},
            "test.tsv: no such qrels file",
        ),
        (
            {**BEIR_FILES, "b/qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\tyes\n"},
            {"name": "X", "type": "retrieval", "folder": "b"},
            "line 2: score must be an integer, got 'yes'",
        ),
    ],
)
def test_bad_specs_and_data_are_named(tmp_path, files, spec, message):
    assert message in _spec_error(tmp_path, files, spec)


def _load(tmp_path, files: dict[str, str], spec: dict):
    from instructor_embed.evaluation.user_tasks import load_user_task

    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    return load_user_task(_write_spec(tmp_path / "spec.json", **spec))


def _clustering_rows(count: int, labels: int = 3) -> str:
    return "".join(
        json.dumps({"text": f"question {i} about topic {i % labels}", "label": i % labels}) + "\n" for i in range(count)
    )


def test_clustering_embeds_every_row_unless_told_to_sample(tmp_path):
    """mteb's default embeds 4 % of a clustering set (made for millions of documents): a user's 499 rows would be
    scored on 19 of them. Every row is embedded, and each k-means run bootstraps as many rows."""
    task = _load(tmp_path, {"t.jsonl": _clustering_rows(499)}, {"name": "C", "type": "clustering", "test": "t.jsonl"})
    assert task.task.max_fraction_of_documents_to_embed is None and task.task.max_document_to_embed is None
    assert task.task.max_documents_per_cluster == 499 and task.notes == {"documents": 499}
    sampled = _load(tmp_path, {}, {"name": "C", "type": "clustering", "test": "t.jsonl", "max_documents": 100})
    assert sampled.task.max_document_to_embed == 100 and sampled.task.max_documents_per_cluster == 100
    assert sampled.notes == {"documents": 499, "embedded_documents": 100}


def test_a_clustering_file_too_small_to_score_says_so(tmp_path):
    with pytest.raises(InputError, match="needs at least 10 rows .* it has 8 rows and 3 labels"):
        _load(tmp_path, {"t.jsonl": _clustering_rows(8)}, {"name": "C", "type": "clustering", "test": "t.jsonl"})


def test_columns_can_be_mapped_and_excel_csv_and_quoted_tsv_read_as_written(tmp_path):
    """A UTF-8 byte-order mark (Excel) is not part of the first column's name; TSV fields keep their quotes."""
    table = "\ufeffquestion,intent\nhow do I pay,payments\nopen an account,accounts\n"
    spec = {"name": "C", "type": "classification", "train": "t.csv", "test": "t.csv"}
    task = _load(tmp_path, {"t.csv": table}, {**spec, "text_column": "question", "label_column": "intent"})
    assert task.task.dataset["default"]["test"]["text"] == ["how do I pay", "open an account"]
    tsv = 'a\tb\tsimilarity\n"Quoted" start\tplain\t4\nmore "quotes\tx\t1\n'
    columns = {"sentence1_column": "a", "sentence2_column": "b", "score_column": "similarity"}
    sts = _load(tmp_path, {"p.tsv": tsv}, {"name": "S", "type": "sts", "test": "p.tsv", **columns})
    assert sts.task.dataset["default"]["test"]["sentence1"] == ['"Quoted" start', 'more "quotes']
    assert "missing text" in _spec_error(tmp_path, {"t.csv": table}, spec)


def test_beir_reader_keeps_titles_and_judged_queries(tmp_path):
    from instructor_embed.evaluation.task_data import read_beir

    for name, content in {**BEIR_FILES, "b/qrels/test.tsv": "q1\td2\t2\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    (tmp_path / "b/queries.jsonl").write_text(
        '{"_id": "q1", "text": "a question"}\n{"_id": "q2", "text": "unjudged"}\n'
    )
    data = read_beir(tmp_path / "b")
    assert data["relevant_docs"] == {"q1": {"d2": 2}}
    assert data["queries"]["id"] == ["q1"] and data["corpus"]["title"] == ["", "T"]


def test_a_bad_spec_stops_before_any_model_loads(tmp_path, capsys):
    from instructor_embed.cli import main

    spec = _write_spec(tmp_path / "spec.json", name="X", type="sts", test="missing.csv")
    code = main(["evaluate", "--model", "no/such-model", "--tasks", str(spec), "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "missing.csv: no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_two_models_give_a_comparison_table_and_chart(minilm_dir, tiny_t5_dir, user_data, tmp_path):
    from instructor_embed.evaluation.runner import _model_labels

    models = [minilm_dir, tiny_t5_dir]
    results = _evaluate(models, [user_data["sts"], user_data["clustering"]], tmp_path)
    assert results[str(minilm_dir)]["MySTS"]["main_score"] > results[str(tiny_t5_dir)]["MySTS"]["main_score"]
    labels = _model_labels(tuple(map(str, models)))
    table = (tmp_path / "comparison.md").read_text()
    assert table.splitlines()[0] == f"| task | {labels[0]} | {labels[1]} |" and "| MySTS | 82.0" in table
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for label in labels:
        assert json.loads((tmp_path / label / "results.json").read_text())["MyClusters"]["main_score"] > 0


def test_model_labels_are_distinct():
    from instructor_embed.evaluation.runner import _model_labels

    assert _model_labels(("hkunlp/instructor-large", "/x/a/model", "/x/b/model/", "a/model")) == [
        "instructor-large",
        "a_model",
        "b_model",
        "a_model-2",
    ]
    with pytest.raises(InputError, match="given twice"):
        _model_labels(("x", "x"))


@pytest.mark.slow
@pytest.mark.long  # 5,000 passages: 100 s; retrieval specs are scored in test_spec_tasks_are_scored_by_mteb
def test_msmarco_sample_is_a_local_retrieval_task(minilm_dir, tmp_path):
    data_dir = shared_path("data")
    results = _evaluate([minilm_dir], ["MSMARCO-sample"], tmp_path, instructions="none", data_dir=str(data_dir))
    scores = results[str(minilm_dir)]["MSMARCO-sample"]
    assert "error" not in scores, scores
    # Measured with this harness (2026-11-23): nDCG@10 0.79766 over 43 judged queries and 5000 passages.
    assert scores["main_score"] == scores["ndcg_at_10"] == pytest.approx(0.7977, abs=0.002)


@pytest.mark.slow
def test_a_model_that_does_not_load_fails_its_tasks_and_the_next_still_runs(minilm_dir, user_data, tmp_path):
    missing = tmp_path / "no-such-model"
    results = _evaluate([missing, minilm_dir], [user_data["sts"]], tmp_path / "out")
    assert "model did not load" in results[str(missing)]["MySTS"]["error"]
    assert results[str(minilm_dir)]["MySTS"]["main_score"] > 0.8
    assert "| MySTS | — | 82.0" in (tmp_path / "out/comparison.md").read_text()


@pytest.mark.parametrize(
    ("content", "message"), [("{not json", "invalid JSON"), ("[1, 2]", "expected a JSON object: a task spec")]
)
def test_a_spec_that_is_not_a_json_object_is_named(tmp_path, content, message):
    from instructor_embed.evaluation.user_tasks import load_user_task

    (tmp_path / "spec.json").write_text(content)
    with pytest.raises(InputError, match=message):
        load_user_task(tmp_path / "spec.json")


def _msmarco_reranking_rows(queries: int) -> list[dict]:
    """Real reranking rows from the MS MARCO sample's graded judgements: for each query its passages judged 3
    (perfectly relevant) as positives, those judged 1 (related, not relevant) as negatives."""
    source = shared_path("data/retrieval/msmarco-sample")
    passages = {row["_id"]: row["text"] for row in map(json.loads, open(source / "corpus.jsonl", encoding="utf-8"))}
    texts = {row["_id"]: row["text"] for row in map(json.loads, open(source / "queries.jsonl", encoding="utf-8"))}
    graded: dict[str, dict[int, list[str]]] = {}
    for line in (source / "qrels/test.tsv").read_text().strip("\n").split("\n"):
        query, passage, grade = line.split("\t")
        if grade.isdigit():
            graded.setdefault(query, {}).setdefault(int(grade), []).append(passages[passage])
    usable = [query for query, grades in graded.items() if grades.get(3) and grades.get(1)][:queries]
    return [{"query": texts[q], "positive": graded[q][3][:3], "negative": graded[q][1][:6]} for q in usable]


def test_reranking_scores_each_query_among_its_own_candidates(minilm_model, tmp_path):
    """mteb's MAP for a reranking spec equals average precision computed by hand from the model's own vectors, each
    query ranking only its candidates, with the spec's query and passage instructions on their sides."""
    import numpy as np

    from instructor_embed.evaluation.runner import read_tasks, score_model

    rows = _msmarco_reranking_rows(6)
    assert len(rows) == 6
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    instruction = {"query": "Represent the web question for retrieving passages: ", "corpus": "Represent the passage: "}
    spec = _write_spec(
        tmp_path / "rr.json", name="MyRerank", type="reranking", test="rows.jsonl", instruction=instruction
    )
    scores = score_model(minilm_model, read_tasks([str(spec)]))["MyRerank"]
    assert "error" not in scores, scores

    precisions = []
    for row in rows:
        query = minilm_model.encode([[instruction["query"], row["query"]]])[0]
        candidates = minilm_model.encode([[instruction["corpus"], t] for t in row["positive"] + row["negative"]])
        order = np.argsort(-(candidates @ query))
        relevant = order < len(row["positive"])
        hits = np.cumsum(relevant)
        precisions.append(float(np.mean(hits[relevant] / (np.flatnonzero(relevant) + 1))))
    assert scores["main_score"] == scores["map_at_1000"] == pytest.approx(np.mean(precisions), abs=1e-4)
    assert 0.3 < scores["main_score"] < 1  # real judgements: the model ranks most, not all, relevant passages first


def test_reranking_reads_single_texts_from_csv_and_named_columns(tmp_path):
    rows = "anchor,positive,negatives\nhow do I pay,card payments,opening hours\nopen an account,new accounts,weather\n"
    task = _load(
        tmp_path,
        {"pairs.csv": rows},
        {
            "name": "R",
            "type": "reranking",
            "test": "pairs.csv",
            "query_column": "anchor",
            "negative_column": "negatives",
        },
    )
    data = task.task.dataset["default"]["test"]
    assert data["queries"]["text"] == ["how do I pay", "open an account"]
    assert data["relevant_docs"] == {"q0": {"d0": 1}, "q1": {"d2": 1}}
    assert data["top_ranked"] == {"q0": ["d0", "d1"], "q1": ["d2", "d3"]}
    assert data["corpus"]["text"] == ["card payments", "opening hours", "new accounts", "weather"]


def test_a_text_several_queries_rank_is_embedded_once(tmp_path):
    rows = [
        {"query": "q1", "positive": ["a", "a"], "negative": ["b", "c"]},
        {"query": "q2", "positive": "c", "negative": ["a", "b"]},
    ]
    task = _load(
        tmp_path,
        {"r.jsonl": "".join(json.dumps(r) + "\n" for r in rows)},
        {"name": "R", "type": "reranking", "test": "r.jsonl"},
    )
    data = task.task.dataset["default"]["test"]
    assert data["corpus"]["text"] == ["a", "b", "c"] and data["corpus"]["id"] == ["d0", "d1", "d2"]
    assert data["top_ranked"] == {"q0": ["d0", "d1", "d2"], "q1": ["d2", "d0", "d1"]}
    assert data["relevant_docs"] == {"q0": {"d0": 1}, "q1": {"d2": 1}}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ('{"query": "q", "positive": "p"}\n', "r.jsonl, line 1: missing negative"),
        ('{"query": "q", "positive": [], "negative": "n"}\n', "line 1: positive must be a text or a non-empty list"),
        (
            '{"query": "q", "positive": "p", "negative": "n"}\n{"query": "q", "positive": "p", "negative": ["n", 3]}\n',
            "r.jsonl, line 2: negative must be a text or a non-empty list of non-empty texts, got ['n', 3]",
        ),
        (
            '{"query": "q", "positive": ["p", "x"], "negative": ["x"]}\n',
            "line 1: 'x' is both a positive and a negative",
        ),
        ('{"query": " ", "positive": "p", "negative": "n"}\n', "line 1: query must be a non-empty string"),
    ],
)
def test_bad_reranking_rows_are_named(tmp_path, rows, message):
    assert message in _spec_error(tmp_path, {"r.jsonl": rows}, {"name": "R", "type": "reranking", "test": "r.jsonl"})


def test_reranking_specs_may_give_each_side_its_instruction(tmp_path):
    rows = '{"query": "q", "positive": "p", "negative": "n"}\n'
    pair = {"query": "Represent the question: ", "corpus": "Represent the answer: "}
    task = _load(
        tmp_path, {"r.jsonl": rows}, {"name": "R", "type": "reranking", "test": "r.jsonl", "instruction": pair}
    )
    assert task.instruction == pair and task.task.metadata.main_score == "map_at_1000"
    assert task.task.metadata.type == "Reranking"
