"""Tasks on a user's own data, defined by a small JSON spec and scored by mteb's own evaluators.

A spec names the task, its type, its files (relative to the spec's folder) and, optionally, its instruction::

    {"name": "TicketIntent", "type": "classification", "train": "train.csv", "test": "test.csv",
     "instruction": "Represent the support ticket for classifying its intent: "}

=============== ===================================================== ==================================
type            files                                                 main score (mteb's)
=============== ===================================================== ==================================
sts             ``test``: sentence1, sentence2, score                 Spearman of cosine similarities
classification  ``train`` and ``test``: text, label                   accuracy (logistic regression)
clustering      ``test``: text, label                                 V-measure (mini-batch k-means)
retrieval       ``folder``: a BEIR folder; ``split`` (default test)   nDCG@10
reranking       ``test``: query, positive, negative (in .jsonl each   MAP (each query's positives ranked
                of the last two may be a list of texts)               among its own candidates)
=============== ===================================================== ==================================

Tables are .csv/.tsv with a header row, or .jsonl. Optional keys: ``description``; column names where the
data uses others (sts: ``sentence1_column``, ``sentence2_column``, ``score_column``; classification and
clustering: ``text_column``, ``label_column``; reranking: ``query_column``, ``positive_column``,
``negative_column``, e.g. ``"query_column": "anchor"`` to read a held-out part of ``train``'s pairs data); for sts
``min_score`` and ``max_score`` (default: the data's range); for classification ``samples_per_label`` (training
examples per label in each of mteb's 10 runs; default 8, as on MTEB); for clustering ``max_documents`` (embed a
random sample of that many rows instead of every row; the results say so); for retrieval and reranking an
``instruction`` may be ``{"query": …, "corpus": …}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError
from ..records import read_json_object
from .instruction_sets import Instruction, is_instruction
from .task_data import number_field, read_beir, read_reranking, read_table, text_field


class TaskKind(NamedTuple):
    base: str  # mteb's task class
    mteb_type: str
    main_score: str
    files: tuple[str, ...]  # the spec's required file keys
    options: tuple[str, ...]  # the spec's optional keys for this type


STS_COLUMNS = ("sentence1", "sentence2", "score")
LABELLED_COLUMNS = ("text", "label")
RERANKING_COLUMNS = ("query", "positive", "negative")
TASK_TYPES: dict[str, TaskKind] = {
    "sts": TaskKind(
        "AbsTaskSTS",
        "STS",
        "cosine_spearman",
        ("test",),
        ("min_score", "max_score", *(f"{c}_column" for c in STS_COLUMNS)),
    ),
    "classification": TaskKind(
        "AbsTaskClassification",
        "Classification",
        "accuracy",
        ("train", "test"),
        ("samples_per_label", *(f"{c}_column" for c in LABELLED_COLUMNS)),
    ),
    "clustering": TaskKind(
        "AbsTaskClustering",
        "Clustering",
        "v_measure",
        ("test",),
        ("max_documents", *(f"{c}_column" for c in LABELLED_COLUMNS)),
    ),
    "retrieval": TaskKind("AbsTaskRetrieval", "Retrieval", "ndcg_at_10", ("folder",), ("split",)),
    "reranking": TaskKind(
        "AbsTaskRetrieval", "Reranking", "map_at_1000", ("test",), tuple(f"{c}_column" for c in RERANKING_COLUMNS)
    ),
}
PAIRED_INSTRUCTIONS = ("retrieval", "reranking")  # types whose queries and documents may have instructions of their own
COMMON_KEYS = ("name", "type", "instruction", "description")
MIN_CLUSTERING_ROWS = 10


@dataclass(frozen=True)
class UserTask:
    """An mteb task object built from a spec, the instruction the spec gives it (None: plain text), and notes
    for the results (e.g. how many rows a sampled clustering task embedded)."""

    name: str
    instruction: Instruction | None
    task: object
    notes: dict = field(default_factory=dict)


def is_task_spec(name: str) -> bool:
    """Whether a ``--tasks`` entry names a spec file rather than a task."""
    return name.lower().endswith(".json")


def load_user_task(spec_path: str | Path) -> UserTask:
    """Read a spec and its data (all checked now, before any model runs) into an mteb task."""
    spec_path = Path(spec_path)
    spec = _read_spec(spec_path)
    kind = spec["type"]
    folder = spec_path.parent
    files = {key: folder / spec[key] for key in TASK_TYPES[kind].files}
    attributes: dict = {}
    notes: dict = {}
    columns = {name: spec.get(f"{name}_column", name) for name in (*STS_COLUMNS, *LABELLED_COLUMNS, *RERANKING_COLUMNS)}
    split = spec.get("split", "test")
    if kind == "retrieval":
        dataset = {split: read_beir(files["folder"], split)}
    elif kind == "reranking":
        dataset = {split: read_reranking(files["test"], columns)}
    else:
        from datasets import Dataset

        if kind == "sts":
            tables, attributes = _sts_table(files["test"], spec, columns)
        elif kind == "classification":
            tables = _labelled_tables(files, columns, text_column="text", label_column="label")
            attributes = {"samples_per_label": spec.get("samples_per_label", 8)}
        else:
            tables = _labelled_tables(files, columns, text_column="sentences", label_column="labels")
            attributes, notes = _clustering_sample(files["test"], tables["test"], spec.get("max_documents"))
        dataset = {name: Dataset.from_dict(columns) for name, columns in tables.items()}
    description = spec.get("description") or f"{spec['name']}: a local {kind} task from {spec_path}"
    task = mteb_task(kind, spec["name"], description, {"default": dataset}, split, **attributes)
    return UserTask(spec["name"], spec.get("instruction"), task, notes)


def _clustering_sample(path: Path, table: dict, max_documents: int | None) -> tuple[dict, dict]:
    """mteb's clustering settings for a user's file: embed every row (mteb's default embeds 4 % of a dataset,
    made for corpora of millions), or a random ``max_documents`` of them; each of the 10 k-means runs
    bootstraps as many rows as were embedded."""
    rows, labels = len(table["sentences"]), len(set(table["labels"]))
    if rows < max(MIN_CLUSTERING_ROWS, 2 * labels):
        raise InputError(
            f"{path}: a clustering task needs at least {max(MIN_CLUSTERING_ROWS, 2 * labels)} rows "
            f"({MIN_CLUSTERING_ROWS}, and two per label) for a meaningful score; it has {rows} rows and {labels} labels",
            path=path,
        )
    embedded = min(rows, max_documents or rows)
    attributes = {
        "max_fraction_of_documents_to_embed": None,
        "max_document_to_embed": max_documents,
        "max_documents_per_cluster": embedded,
    }
    notes = {"documents": rows, "embedded_documents": embedded} if embedded < rows else {"documents": rows}
    return attributes, notes


def mteb_task(kind: str, name: str, description: str, dataset: dict, eval_split: str = "test", **attributes):
    """An instance of mteb's task class for ``kind`` (see TASK_TYPES) holding ``dataset``
    ({subset: {split: data}}), so that mteb's evaluator and main score apply unchanged."""
    import mteb.abstasks
    from mteb.abstasks.task_metadata import TaskMetadata

    definition = TASK_TYPES[kind]
    metadata = TaskMetadata(
        name=name,
        description=description,
        dataset={"path": f"local/{name}", "revision": "local"},
        type=definition.mteb_type,
        category="t2t",
        modalities=["text"],
        eval_splits=[eval_split],
        eval_langs=["eng-Latn"],
        main_score=definition.main_score,
    )
    class_name = re.sub(r"\W", "", name) or "LocalTask"
    task = type(class_name, (getattr(mteb.abstasks, definition.base),), {"metadata": metadata, **attributes})()
    task.dataset = dataset
    task.data_loaded = True
    return task


def _read_spec(path: Path) -> dict:
    spec = read_json_object(path, "a task spec with name, type and files")
    kind = spec.get("type")
    if kind not in TASK_TYPES:
        raise InputError(f"{path}: type must be one of {', '.join(TASK_TYPES)}, got {kind!r}")
    file_keys = TASK_TYPES[kind].files
    allowed = (*COMMON_KEYS, *file_keys, *TASK_TYPES[kind].options)
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise InputError(
            f"{path}: unknown key(s) {', '.join(unknown)} for a {kind} task; allowed: {', '.join(allowed)}"
        )
    for key in ("name", *file_keys):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            raise InputError(f"{path}: {key!r} must be a non-empty string")
    instruction = spec.get("instruction")
    if instruction is not None and not is_instruction(instruction, pair_allowed=kind in PAIRED_INSTRUCTIONS):
        expected = "a string or {'query': ..., 'corpus': ...}" if kind in PAIRED_INSTRUCTIONS else "a string"
        raise InputError(f"{path}: instruction must be {expected}")
    for key in ("samples_per_label", "max_documents"):
        value = spec.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{path}: {key} must be a positive integer", path=path, param=key)
    for key in [key for key in spec if key.endswith("_column")]:
        if not isinstance(spec[key], str) or not spec[key]:
            raise InputError(f"{path}: {key} must be a column name (a non-empty string)", path=path, param=key)
    for key in ("min_score", "max_score"):
        if key in spec and (isinstance(spec[key], bool) or not isinstance(spec[key], (int, float))):
            raise InputError(f"{path}: {key} must be a number")
    return spec


def _sts_table(path: Path, spec: dict, names: dict[str, str]) -> tuple[dict[str, dict], dict[str, float]]:
    """The test table, and the score range (the spec's, else the data's)."""
    rows = read_table(path, [names[column] for column in STS_COLUMNS])
    columns = {
        "sentence1": [text_field(row, names["sentence1"], path, line) for line, row in rows],
        "sentence2": [text_field(row, names["sentence2"], path, line) for line, row in rows],
        "score": [number_field(row, names["score"], path, line) for line, row in rows],
    }
    low, high = spec.get("min_score", min(columns["score"])), spec.get("max_score", max(columns["score"]))
    if not low < high:
        raise InputError(f"{path}: scores need a range (min_score {low} must be below max_score {high})", path=path)
    return {"test": columns}, {"min_score": low, "max_score": high}


def _labelled_tables(
    files: dict[str, Path], names: dict[str, str], text_column: str, label_column: str
) -> dict[str, dict]:
    """Text and integer label columns per split; labels are numbered in sorted order over all splits."""
    text, label = names["text"], names["label"]
    rows = {split: read_table(path, (text, label)) for split, path in files.items()}
    texts = {split: [text_field(row, text, files[split], line) for line, row in got] for split, got in rows.items()}
    labels = {split: [str(row[label]) for _, row in got] for split, got in rows.items()}
    if "train" in labels:
        unseen = sorted(set(labels["test"]) - set(labels["train"]))
        if unseen:
            raise InputError(
                f"{files['test']}: label(s) {', '.join(unseen[:5])} never appear in {files['train']}",
                path=files["test"],
            )
    numbers = {value: number for number, value in enumerate(sorted({x for got in labels.values() for x in got}))}
    if len(numbers) < 2:
        raise InputError(f"{files['test']}: needs at least two different labels", path=files["test"])
    return {
        split: {text_column: texts[split], label_column: [numbers[value] for value in labels[split]]} for split in files
    }
