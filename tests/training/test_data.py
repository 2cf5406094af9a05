import json
from pathlib import Path

import pytest
from support import SHARED

from instructor_embed import InputError
from instructor_embed.training import data as medi
from instructor_embed.training.data import InvalidDataError, load_medi, prepare

ROW = {
    "query": ["Represent the question: ", "q"],
    "pos": ["Represent the answer: ", "a"],
    "neg": ["Represent the answer: ", "b"],
    "task_name": "qa",
}


def test_json_list_and_jsonl_give_the_same_examples(tmp_path):
    rows = [ROW, {**ROW, "task_name": "sts"}, {**ROW, "task_id": 3, "task_name": None}]
    rows[2].pop("task_name")
    (tmp_path / "d.json").write_text(json.dumps(rows, indent=2))
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    a, b = load_medi(tmp_path / "d.json"), load_medi(tmp_path / "d.jsonl")
    assert a.examples == b.examples
    assert a.tasks == {"qa": [0], "sts": [1], "3": [2]}
    assert a.examples[0].query == ("Represent the question: ", "q")


def test_json_list_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(medi, "_CHUNK", 7)
    rows = [{**ROW, "pos": ["Represent the answer: ", f"answer number {i}\nwith a newline"]} for i in range(50)]
    (tmp_path / "d.json").write_text(json.dumps(rows, indent=1))
    loaded = load_medi(tmp_path / "d.json")
    assert [e.pos[1] for e in loaded.examples] == [r["pos"][1] for r in rows]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({k: v for k, v in ROW.items() if k != "neg"}, "field 'neg' is missing"),
        ({**ROW, "pos": ["only one"]}, "field 'pos' must be [instruction, text], got 1 elements"),
        ({**ROW, "query": "text"}, "field 'query' must be [instruction, text], got str"),
        ({**ROW, "query": ["instr", 5]}, "field 'query': the text must be a string, not int"),
        ({k: v for k, v in ROW.items() if k != "task_name"}, "no task key"),
        ({**ROW, "task_name": [1]}, "the task key must be a string or an integer"),
    ],
)
def test_invalid_rows_are_reported_with_line_and_field(tmp_path, row, message):
    (tmp_path / "d.jsonl").write_text(json.dumps(ROW) + "\n\n" + json.dumps(row) + "\n")
    with pytest.raises(InvalidDataError) as caught:
        load_medi(tmp_path / "d.jsonl")
    assert f"d.jsonl, line 3: {message}" in str(caught.value)
    assert "1 invalid rows of 2" in str(caught.value)
    skipped = load_medi(tmp_path / "d.jsonl", skip_invalid=True)
    assert len(skipped.examples) == 1 and len(skipped.skipped) == 1


def test_json_list_rows_report_line_and_row(tmp_path):
    bad = {**ROW, "neg": ["x"]}
    (tmp_path / "d.json").write_text("[\n" + json.dumps(ROW) + ",\n" + json.dumps(bad) + "\n]\n")
    with pytest.raises(InvalidDataError, match=r"d.json, line 3, row 1: field 'neg'"):
        load_medi(tmp_path / "d.json")


def test_broken_json_names_the_line(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps(ROW) + "\n{broken\n")
    with pytest.raises(ValueError, match="d.jsonl, line 2: invalid JSON"):
        load_medi(tmp_path / "d.jsonl")
    (tmp_path / "d.json").write_text("[" + json.dumps(ROW) + ",\n" + json.dumps(ROW))
    with pytest.raises(ValueError, match="not closed|invalid JSON"):
        load_medi(tmp_path / "d.json")


def test_a_syntax_error_early_in_a_large_list_is_reported_without_reading_on():
    """Only a row cut by the end of the buffer makes the reader fetch more; a real error stops it at once."""
    import io

    class CountingReader(io.StringIO):
        characters = 0

        def read(self, size=-1):
            text = super().read(size)
            self.characters += len(text)
            return text

    good = json.dumps(ROW)
    handle = CountingReader(
        "[" + good + ",\n" + good.replace(":", " ", 1) + ",\n" + (good + ",\n") * 50_000 + good + "]"
    )
    with pytest.raises(ValueError, match="line 2: invalid JSON"):
        list(medi._json_array_rows(handle, Path("big.json")))
    assert handle.characters <= medi._CHUNK  # one chunk: the rows after the error were never read


MEDI_MINI = SHARED / "data" / "medi-mini" / "train.jsonl"


@pytest.mark.skipif(not MEDI_MINI.is_file(), reason="needs ../shared/data/medi-mini")
def test_instructions_removed_replaced_or_kept_and_rows_capped_on_medi_mini(tmp_path):
    """The ablation's knobs on the real multi-task stand-in: every instruction removed, or replaced per task from a
    file, and each task cut to a seeded sample (large tasks no longer dominate)."""
    data = load_medi(MEDI_MINI)
    kept = prepare(data)
    assert kept.examples == data.examples
    capped = prepare(data, instructions="none", max_rows_per_task=50, seed=1)
    assert {task: len(rows) for task, rows in capped.tasks.items()} == {
        task: min(50, len(rows)) for task, rows in data.tasks.items()
    }
    assert all(e.query[0] == e.pos[0] == e.negatives[0][0] == "" for e in capped.examples)
    originals = {(e.task, e.query[1], e.pos[1], e.negatives[0][1]) for e in data.examples}
    assert all((e.task, e.query[1], e.pos[1], e.negatives[0][1]) in originals for e in capped.examples)
    assert prepare(data, instructions="none", max_rows_per_task=50, seed=1).examples == capped.examples
    assert prepare(data, instructions="none", max_rows_per_task=50, seed=2).examples != capped.examples
    tasks = sorted(data.tasks)
    file = tmp_path / "instructions.json"
    file.write_text(
        json.dumps({tasks[0]: "Represent it: ", **{t: {"query": "Q: ", "document": "D: "} for t in tasks[1:]}})
    )
    replaced = prepare(data, instructions=str(file))
    first = next(e for e in replaced.examples if e.task == tasks[0])
    other = next(e for e in replaced.examples if e.task == tasks[1])
    assert (first.query[0], first.pos[0]) == ("Represent it: ", "Represent it: ")
    assert (other.query[0], other.pos[0], other.negatives[0][0]) == ("Q: ", "D: ", "D: ")
    file.write_text(json.dumps({tasks[0]: "Represent it: "}))
    with pytest.raises(InputError, match=r"gives no instructions for tasks \["):
        prepare(data, instructions=str(file))
    with pytest.raises(InputError, match="'keep', 'none' or a JSON task file"):
        prepare(data, instructions=str(tmp_path / "absent.json"))


@pytest.mark.skipif(not MEDI_MINI.is_file(), reason="needs ../shared/data/medi-mini")
def test_instruction_wordings_are_drawn_per_text_independently_and_seeded(tmp_path):
    """A task given several wordings: every text gets one of its side's, a query and its positive agree no more
    often than chance (the wording must not give the pair away), and the draw is fixed by the seed."""
    data = load_medi(MEDI_MINI)
    query_wordings = [f"Represent the question, wording {i}:" for i in range(4)]
    document_wordings = [f"Represent the answer, wording {i}:" for i in range(3)]
    file = tmp_path / "wordings.json"
    file.write_text(
        json.dumps(
            {
                task: {"query": query_wordings, "document": document_wordings}
                if task == "medquad_qa"
                else [f"Represent the {task} text:", f"Represent this {task} text:"]
                for task in data.tasks
            }
        )
    )
    drawn = prepare(data, instructions=str(file), seed=3)
    medquad = [e for e in drawn.examples if e.task == "medquad_qa"]
    assert {e.query[0] for e in medquad} == set(query_wordings)
    assert {e.pos[0] for e in medquad} | {n[0] for e in medquad for n in e.negatives} == set(document_wordings)
    symmetric = [e for e in drawn.examples if e.task == "sst2_sentiment"]
    same = sum(e.query[0] == e.pos[0] for e in symmetric) / len(symmetric)
    assert 0.4 < same < 0.6, same  # two wordings drawn independently: half the pairs agree
    assert [e.query[0] for e in prepare(data, instructions=str(file), seed=3).examples] == [
        e.query[0] for e in drawn.examples
    ]
    assert [e.query[0] for e in prepare(data, instructions=str(file), seed=4).examples] != [
        e.query[0] for e in drawn.examples
    ]
    file.write_text(json.dumps({task: {"query": [], "document": "D: "} for task in data.tasks}))
    with pytest.raises(InputError, match="non-empty list of strings"):
        prepare(data, instructions=str(file))
