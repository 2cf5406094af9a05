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
=============== ===================================================== ==================================

Tables are .csv/.tsv with a header row, or .jsonl. Optional keys: ``description``; for sts ``min_score`` and
``max_score`` (default: the data's range); for classification ``samples_per_label`` (training examples per
label in each of mteb's 10 runs; default 8, as on MTEB); for retrieval an ``instruction`` may be
``{"query": …, "corpus": …}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError
from ..records import read_json_object
from .instruction_sets import Instruction, is_instruction
from .task_data import number_field, read_beir, read_table, text_field


class TaskKind(NamedTuple):
    base: str  # mteb's task class
    mteb_type: str
    main_score: str
    files: tuple[str, ...]  # the spec's required file keys
    options: tuple[str, ...]  # the spec's optional keys for this type


TASK_TYPES: dict[str, TaskKind] = {
    "sts": TaskKind("AbsTaskSTS", "STS", "cosine_spearman", ("test",), ("min_score", "max_score")),
    "classification": TaskKind(
        "AbsTaskClassification", "Classification", "accuracy", ("train", "test"), ("samples_per_label",)
    ),
    "clustering": TaskKind("AbsTaskClustering", "Clustering", "v_measure", ("test",), ()),
    "retrieval": TaskKind("AbsTaskRetrieval", "Retrieval", "ndcg_at_10", ("folder",), ("split",)),
}
COMMON_KEYS = ("name", "type", "instruction", "description")


@dataclass(frozen=True)
class UserTask:
    """An mteb task object built from a spec, and the instruction the spec gives it (None: plain text)."""

    name: str
    instruction: Instruction | None
    task: object


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
    if kind == "retrieval":
        split = spec.get("split", "test")
        dataset = {split: read_beir(files["folder"], split)}
    else:
        from datasets import Dataset

        split = "test"
        if kind == "sts":
            tables, attributes = _sts_table(files["test"], spec)
        elif kind == "classification":
            tables = _labelled_tables(files, text_column="text", label_column="label")
            attributes = {"samples_per_label": spec.get("samples_per_label", 8)}
        else:
            tables = _labelled_tables(files, text_column="sentences", label_column="labels")
        dataset = {name: Dataset.from_dict(columns) for name, columns in tables.items()}
    description = spec.get("description") or f"{spec['name']}: a local {kind} task from {spec_path}"
    task = mteb_task(kind, spec["name"], description, {"default": dataset}, split, **attributes)
    return UserTask(spec["name"], spec.get("instruction"), task)


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
    if instruction is not None and not is_instruction(instruction, pair_allowed=kind == "retrieval"):
        expected = "a string or {'query': ..., 'corpus': ...}" if kind == "retrieval" else "a string"
        raise InputError(f"{path}: instruction must be {expected}")
    samples = spec.get("samples_per_label", 8)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InputError(f"{path}: samples_per_label must be a positive integer")
    for key in ("min_score", "max_score"):
        if key in spec and (isinstance(spec[key], bool) or not isinstance(spec[key], (int, float))):
            raise InputError(f"{path}: {key} must be a number")
    return spec


def _sts_table(path: Path, spec: dict) -> tuple[dict[str, dict], dict[str, float]]:
    """The test table, and the score range (the spec's, else the data's)."""
    rows = read_table(path, ("sentence1", "sentence2", "score"))
    columns = {
        "sentence1": [text_field(row, "sentence1", path, line) for line, row in rows],
        "sentence2": [text_field(row, "sentence2", path, line) for line, row in rows],
        "score": [number_field(row, "score", path, line) for line, row in rows],
    }
    low, high = spec.get("min_score", min(columns["score"])), spec.get("max_score", max(columns["score"]))
    if not low < high:
        raise InputError(f"{path}: scores need a range (min_score {low} must be below max_score {high})")
    return {"test": columns}, {"min_score": low, "max_score": high}


def _labelled_tables(files: dict[str, Path], text_column: str, label_column: str) -> dict[str, dict]:
    """Text and integer label columns per split; labels are numbered in sorted order over all splits."""
    rows = {split: read_table(path, ("text", "label")) for split, path in files.items()}
    texts = {split: [text_field(row, "text", files[split], line) for line, row in got] for split, got in rows.items()}
    labels = {split: [str(row["label"]) for _, row in got] for split, got in rows.items()}
    if "train" in labels:
        unseen = sorted(set(labels["test"]) - set(labels["train"]))
        if unseen:
            raise InputError(f"{files['test']}: label(s) {', '.join(unseen[:5])} never appear in {files['train']}")
    numbers = {label: number for number, label in enumerate(sorted({x for got in labels.values() for x in got}))}
    if len(numbers) < 2:
        raise InputError(f"{files['test']}: needs at least two different labels")
    return {
        split: {text_column: texts[split], label_column: [numbers[label] for label in labels[split]]} for split in files
    }
