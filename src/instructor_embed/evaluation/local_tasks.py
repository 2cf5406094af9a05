"""Offline MTEB tasks: mteb's own task definitions (metadata, evaluator, main score) fed with local files.

Scores are therefore computed exactly as on the MTEB leaderboard; only where the data comes from changes.
``data_dir`` is the shared data folder (``../shared/data`` or ``--data-dir``). ``MSMARCO-sample`` has no mteb
counterpart (50 TREC-DL queries over 5000 passages): it is an mteb retrieval task built like a user's own,
scored by mteb's retrieval evaluator, and takes the MSMARCO instructions.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError
from .task_data import read_beir
from .user_tasks import mteb_task

STS_YEARS = {"STS12": "2012", "STS13": "2013", "STS14": "2014", "STS15": "2015", "STS16": "2016"}


def _sts_columns(rows: list[tuple[str, str, float]]) -> dict:
    from datasets import Dataset

    return Dataset.from_dict(
        {"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows], "score": [r[2] for r in rows]}
    )


def _stsbenchmark(data_dir: Path) -> dict:
    lines = (data_dir / "sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    rows = [(f[5], f[6], float(f[4])) for f in (line.split("\t") for line in lines)]
    return {"default": {"test": _sts_columns(rows)}}


def _semeval(year: str) -> Callable[[Path], dict]:
    def load(data_dir: Path) -> dict:
        rows = []
        for path in sorted((data_dir / "sts/semeval" / year).glob("*.test.tsv")):
            for line in path.read_text(encoding="utf-8").strip("\n").split("\n"):
                fields = line.split("\t")
                if len(fields) >= 3 and fields[0].strip():  # rows without a score are unscored
                    rows.append((fields[1], fields[2], float(fields[0])))
        return {"default": {"test": _sts_columns(rows)}}

    return load


def _sick_r(data_dir: Path) -> dict:
    with open(data_dir / "sts/sick2014/SICK_test_annotated.txt", encoding="utf-8") as handle:
        rows = [
            (r["sentence_A"], r["sentence_B"], float(r["relatedness_score"]))
            for r in csv.DictReader(handle, delimiter="\t")
        ]
    return {"default": {"test": _sts_columns(rows)}}


def _banking77(data_dir: Path) -> dict:
    from datasets import Dataset

    splits = {}
    for split in ("train", "test"):
        with open(data_dir / f"classification/banking77/{split}.csv", encoding="utf-8") as handle:
            splits[split] = list(csv.DictReader(handle))
    labels = sorted({row["category"] for row in splits["train"]})
    index = {label: number for number, label in enumerate(labels)}
    return {
        "default": {
            split: Dataset.from_dict({"text": [r["text"] for r in rows], "label": [index[r["category"]] for r in rows]})
            for split, rows in splits.items()
        }
    }


class SampledTask(NamedTuple):
    """A local task with no mteb counterpart: built as an mteb task of ``kind``, taking the instructions of
    the mteb task it samples."""

    kind: str
    description: str
    instructions_from: str


SAMPLED_TASKS = {
    "MSMARCO-sample": SampledTask(
        "retrieval",
        "50 TREC Deep Learning queries with graded judgements over a 5000-passage sample of MS MARCO; "
        "not comparable with MSMARCO or TRECDL2019 on the leaderboard, which search the full 8.8M passages.",
        "MSMARCO",
    )
}

LOCAL_TASKS: dict[str, Callable[[Path], dict]] = {
    "STSBenchmark": _stsbenchmark,
    **{name: _semeval(year) for name, year in STS_YEARS.items()},
    "SICK-R": _sick_r,
    "Banking77Classification": _banking77,
    "MSMARCO-sample": lambda data_dir: {"default": {"test": read_beir(data_dir / "retrieval/msmarco-sample")}},
}


def uses_local_data(name: str, data_dir: Path) -> bool:
    """Whether ``name`` runs on local data: a local task whose data folder exists, or one mteb does not know
    (which then fails naming the missing folder); mteb's own tasks otherwise load from the Hub."""
    return name in LOCAL_TASKS and (data_dir.is_dir() or name in SAMPLED_TASKS)


def local_task(name: str, data_dir: Path):
    """The mteb task ``name`` with its data loaded from ``data_dir``."""
    import mteb

    if name not in LOCAL_TASKS:
        raise InputError(f"no local data for task {name!r}; local tasks: {', '.join(LOCAL_TASKS)}")
    if not data_dir.is_dir():
        raise InputError(f"data folder {data_dir} does not exist (use --data-dir)")
    try:
        dataset = LOCAL_TASKS[name](data_dir)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise InputError(f"{name}: cannot read its local data under {data_dir}: {exc}") from exc
    if name in SAMPLED_TASKS:
        return mteb_task(SAMPLED_TASKS[name].kind, name, SAMPLED_TASKS[name].description, dataset)
    task = mteb.get_task(name)
    task.dataset = dataset
    task.data_loaded = True
    return task
