"""The row shapes train reads besides MEDI, from every file type, on real data where ../shared has it."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from support import shared_path

from instructor_embed import InputError
from instructor_embed.training.data import (
    InvalidDataError,
    TaskSource,
    load_training_data,
    read_tasks_file,
    sources_from,
)
from instructor_embed.training.formats import Sides, detect_format
from instructor_embed.training.sampler import TaskBatchSampler

PAIRS = [
    {"anchor": "How do I reset my PIN?", "positive": "Resetting your PIN takes a minute in the app."},
    {"anchor": "Where is my card?", "positive": "Cards arrive within five working days.", "negative": "We are open."},
    {
        "anchor": "Can I pay by phone?",
        "positive": "Apple Pay and Google Pay are supported.",
        "negatives": ["Our branches close at five.", "Interest is paid monthly."],
    },
]


def write(path: Path, rows: list[dict]) -> Path:
    """``rows`` as a file of ``path``'s type (CSV/TSV cells: lists as JSON, missing keys empty)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [{k: row.get(k, "") for k in columns} for row in rows]
    cells = [{k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in row.items()} for row in cells]
    if path.suffix == ".tsv":  # tabs, no quoting
        lines = ["\t".join(columns), *("\t".join(row.values()) for row in cells)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(cells)
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{k: row.get(k) for k in columns} for row in rows]), path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def load(path: Path, **source) -> object:
    return load_training_data([TaskSource(path, **source)], defaults=Sides("Q: ", "D: "))


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".tsv", ".parquet"])
def test_pairs_with_none_one_or_several_negatives_from_every_file_type(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    data = load(write(tmp_path / f"faq{suffix}", PAIRS))
    assert data.formats == {"faq": "pairs"} and data.loss_of("faq") == "in-batch"
    assert [e.query for e in data.examples] == [("Q: ", row["anchor"]) for row in PAIRS]
    assert [e.pos for e in data.examples] == [("D: ", row["positive"]) for row in PAIRS]
    assert [len(e.negatives) for e in data.examples] == [0, 1, 2]
    assert data.examples[2].negatives[1] == ("D: ", "Interest is paid monthly.")


def test_scored_and_labelled_pairs(tmp_path):
    scored = load(write(tmp_path / "sts.csv", [{"sentence1": "a b", "sentence2": "a c", "score": "3.5"}]))
    assert scored.formats == {"sts": "scored"} and scored.examples[0].score == 3.5
    assert scored.loss_of("sts") == "cosent"
    rows = [{"sentence1": "a", "sentence2": "b", "label": 1}, {"sentence1": "c", "sentence2": "d", "label": 0}]
    labelled = load(write(tmp_path / "dup.jsonl", rows))
    assert labelled.formats == {"dup": "labelled-pairs"} and [e.score for e in labelled.examples] == [1.0, 0.0]


def test_real_stsb_train_as_scored_pairs(tmp_path):
    """STS-B's training split, as a user converts it (sentence1, sentence2, score), read whole."""
    source = shared_path("data/sts/stsbenchmark/sts-train.csv")
    rows = [line.rstrip("\n").split("\t") for line in source.read_text(encoding="utf-8").splitlines()]
    table = [{"sentence1": r[5], "sentence2": r[6], "score": r[4]} for r in rows]
    data = load(write(tmp_path / "stsb.tsv", table))
    assert len(data.examples) == len(table) > 5000
    assert data.formats == {"stsb": "scored"}
    assert min(e.score for e in data.examples) == 0.0 and max(e.score for e in data.examples) == 5.0


def test_real_banking77_labelled_texts_pair_within_a_label_and_batch_without_repeats():
    """Banking77's train.csv as it is (text, category): every text is once an anchor and once a positive of
    its own label, and no batch of the sampler holds one label twice — in-batch negatives are true negatives."""
    path = shared_path("data/classification/banking77/train.csv")
    data = load_training_data([TaskSource(path, task="banking", columns={"label": "category"})])
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    assert data.formats == {"banking": "labelled"}
    assert len(data.examples) == len(rows)
    label_of = {row["text"]: row["category"] for row in rows}
    assert all(label_of[e.query[1]] == label_of[e.pos[1]] == e.group for e in data.examples)
    assert all(e.query[1] != e.pos[1] for e in data.examples)
    assert Counter(e.query[1] for e in data.examples) == Counter(e.pos[1] for e in data.examples)
    sampler = TaskBatchSampler(data.tasks, 32, seed=1, groups=data.groups())
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0.9 * len(rows) / 32
    for batch in batches:
        assert len({data.examples[i].group for i in batch}) == len(batch) == 32
    used = Counter(i for batch in batches for i in batch)
    assert max(used.values()) == 1  # an epoch uses each row at most once


def test_a_label_with_one_text_is_left_out_with_a_note(tmp_path):
    rows = [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(6)] + [{"text": "alone", "label": "c"}]
    data = load(write(tmp_path / "intent.csv", rows))
    assert len(data.examples) == 6 and "1 labels have one text only" in data.notes[0] and "'c'" in data.notes[0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"anchor": "q", "positive": ""}], "line 3: column 'positive' is missing or empty"),
        ([{"sentence1": "a", "sentence2": "b", "score": "high"}], "line 3: column 'score' must be a number"),
        ([{"sentence1": "a", "sentence2": "b", "label": 2}], "line 3: column 'label' must be 0 or 1, got '2'"),
        ([{"anchor": "q", "positive": "p", "negatives": "not json"}], "column 'negatives' must be a list"),
        ([{"anchor": "q", "positive": "p", "negatives": '["a", ""]'}], "list of non-blank texts"),
        ([{"text": "t", "label": "x", "query_instruction": ""}], None),  # a row's own empty instruction is valid
    ],
)
def test_invalid_rows_name_the_line_and_the_column(tmp_path, rows, message):
    """CSV line numbers count the header: the second data row is line 3."""
    good = {key: ("x" if key != "score" else "1") for key in rows[0]}
    if "label" in good:
        good["label"] = 1 if "sentence1" in good else "x"
    if "negatives" in good:
        good["negatives"] = "[]"
    path = write(tmp_path / "data.csv", [good, *rows, good])
    if message is None:
        load(path)
        return
    with pytest.raises(InvalidDataError) as caught:
        load(path)
    assert message in str(caught.value) and "1 invalid rows of 3" in str(caught.value)
    assert len(load_training_data([TaskSource(path)], skip_invalid=True).skipped) == 1


def test_unknown_columns_say_which_shapes_exist():
    with pytest.raises(InputError, match=r"cannot tell the training format from the columns \['q', 'r'\]"):
        detect_format(["q", "r"], "f.csv, line 2")


def test_columns_and_format_override_detection(tmp_path):
    path = write(tmp_path / "faq.csv", [{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": "a2"}])
    with pytest.raises(InputError, match="cannot tell the training format"):
        load(path)
    data = load(path, columns={"anchor": "question", "positive": "answer"})
    assert [e.pos[1] for e in data.examples] == ["a1", "a2"]
    scored_as_pairs = write(tmp_path / "s.csv", [{"anchor": "a", "positive": "b", "sentence1": "c"}])
    assert load(scored_as_pairs, format="pairs").formats == {"s": "pairs"}


def test_rows_may_carry_their_own_instructions(tmp_path):
    rows = [
        {"anchor": "q1", "positive": "p1"},
        {"anchor": "q2", "positive": "p2", "instruction": "Both: "},
        {"anchor": "q3", "positive": "p3", "instruction": "Both: ", "document_instruction": "Doc: "},
    ]
    data = load(write(tmp_path / "faq.jsonl", rows))
    assert [(e.query[0], e.pos[0]) for e in data.examples] == [
        ("Q: ", "D: "),
        ("Both: ", "Both: "),
        ("Both: ", "Doc: "),
    ]
    assert data.instructions() == {"faq": {"query": "Both: ", "document": "D: "}}  # the most frequent, first on ties


def test_a_folder_is_one_task_per_file_and_a_task_may_come_from_one_file_only(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    write(folder / "faq.csv", PAIRS)
    write(folder / "sts.jsonl", [{"sentence1": "a", "sentence2": "b", "score": 1}] * 2)
    (folder / "notes.txt").write_text("ignored")
    data = load_training_data(sources_from([str(folder)]))
    assert data.formats == {"faq": "pairs", "sts": "scored"}
    copy = write(tmp_path / "faq.jsonl", PAIRS)
    with pytest.raises(InputError, match=r"task 'faq' is already read from .*faq.csv"):
        load_training_data(sources_from([str(folder / "faq.csv"), str(copy)]))


def test_a_task_file_names_tasks_their_files_formats_instructions_and_weights(tmp_path):
    write(tmp_path / "qa.csv", [{"question": "q", "answer": "a"}] * 3)
    write(tmp_path / "sts.jsonl", [{"sentence1": "a", "sentence2": "b", "score": 2}] * 3)
    spec = {
        "faq": {
            "file": "qa.csv",
            "columns": {"anchor": "question", "positive": "answer"},
            "query_instruction": "Represent the banking question for retrieving answers: ",
            "document_instruction": "Represent the banking answer for retrieval: ",
            "weight": 2,
        },
        "similar": {"file": "sts.jsonl", "instruction": "Represent the sentence: "},
    }
    (tmp_path / "tasks.json").write_text(json.dumps(spec))
    sources = read_tasks_file(tmp_path / "tasks.json")
    assert [(s.task, s.weight) for s in sources] == [("faq", 2), ("similar", None)]
    data = load_training_data(sources, defaults=Sides("unused", "unused"))
    assert data.instructions() == {
        "faq": {
            "query": "Represent the banking question for retrieving answers: ",
            "document": "Represent the banking answer for retrieval: ",
        },
        "similar": {"query": "Represent the sentence: ", "document": "Represent the sentence: "},
    }
    yaml = pytest.importorskip("yaml")
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump(spec))
    assert read_tasks_file(tmp_path / "tasks.yaml") == sources
    (tmp_path / "bad.yml").write_text("faq: {file: qa.csv\n")
    with pytest.raises(InputError, match="bad.yml: not a YAML task file"):
        read_tasks_file(tmp_path / "bad.yml")
    (tmp_path / "bad.json").write_text(json.dumps({"faq": {"file": "qa.csv", "instructions": "x"}}))
    with pytest.raises(InputError, match=r"task 'faq': unknown keys \['instructions'\]"):
        read_tasks_file(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text(json.dumps({"faq": {"file": "qa.csv", "weight": -1}}))
    with pytest.raises(InputError, match="weight must be a number >= 0, got -1"):
        read_tasks_file(tmp_path / "bad.json")
