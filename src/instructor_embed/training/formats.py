"""The row shapes ``train`` reads, detected from a file's columns, each turned into :class:`Example` rows.

========================= ============================================ ==========================================
format                    columns                                      trained with
========================= ============================================ ==========================================
``medi``                  ``query``, ``pos``, ``neg``: [instruction,   the INSTRUCTOR loss (query vs its positive
                          text]; ``task_name`` or ``task_id``          and the batch's hard negatives)
``pairs``                 ``anchor``, ``positive``; optional           the INSTRUCTOR loss with the batch's other
                          ``negative`` or ``negatives`` (a list)       positives as negatives too
``scored``                ``sentence1``, ``sentence2``, ``score``      CoSENT: pairs ranked by their cosine as by
                                                                       their score
``labelled-pairs``        ``sentence1``, ``sentence2``, ``label``      CoSENT on the 0/1 labels: every duplicate
                          (0 or 1)                                     pair above every non-duplicate
``labelled``              ``text``, ``label``                          each text paired with another of its label;
                                                                       a batch never holds one label twice, so
                                                                       its in-batch negatives are true negatives
========================= ============================================ ==========================================

Rows other than MEDI's may carry their own ``instruction`` (both sides), ``query_instruction`` or
``document_instruction``; otherwise the task's instructions apply (``sentence1``/``anchor``/``text`` take the
query's, ``sentence2``/``positive``/negatives the document's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InputError

REQUIRED: dict[str, tuple[str, ...]] = {
    "medi": ("query", "pos", "neg"),
    "pairs": ("anchor", "positive"),
    "scored": ("sentence1", "sentence2", "score"),
    "labelled-pairs": ("sentence1", "sentence2", "label"),
    "labelled": ("text", "label"),
}
FORMATS = tuple(REQUIRED)
LOSS_OF_FORMAT = {
    "medi": "instructor",
    "pairs": "in-batch",
    "labelled": "in-batch",
    "scored": "cosent",
    "labelled-pairs": "cosent",
}
OPTIONAL = ("negative", "negatives", "instruction", "query_instruction", "document_instruction")


@dataclass(frozen=True)
class Example:
    """One training row; each text comes with its instruction. ``negatives`` may be empty (in-batch negatives
    only); ``score`` is a pair's similarity (``scored``, ``labelled-pairs``); ``group`` a text's label
    (``labelled``: rows of one group are never each other's negatives)."""

    query: tuple[str, str]
    pos: tuple[str, str]
    negatives: tuple[tuple[str, str], ...]
    task: str
    score: float | None = None
    group: str | None = None


@dataclass(frozen=True)
class Sides:
    """A task's instructions: the query side's and the document side's."""

    query: str = ""
    document: str = ""


def detect_format(columns: list[str] | tuple[str, ...], where: str) -> str:
    """The format whose required columns ``columns`` has (the first in :data:`FORMATS` order)."""
    present = set(columns)
    for name, required in REQUIRED.items():
        if present.issuperset(required):
            return name
    shapes = "; ".join(f"{name}: {', '.join(required)}" for name, required in REQUIRED.items())
    raise InputError(
        f"{where}: cannot tell the training format from the columns {sorted(present)}; expected one of: {shapes} "
        "(or name the columns with --columns, the format with --format)"
    )


def check_format(name: str) -> str:
    if name not in REQUIRED:
        raise InputError(f"unknown training format {name!r}; use one of {', '.join(FORMATS)}", param="format")
    return name


def renamed(row: Mapping, columns: Mapping[str, str]) -> dict:
    """``row`` with the file's column names mapped to the format's (``columns``: format's name -> file's)."""
    if not columns:
        return dict(row)
    reverse = {theirs: ours for ours, theirs in columns.items()}
    return {reverse.get(key, key): value for key, value in row.items()}


def to_example(row: dict, fmt: str, task: str, sides: Sides) -> Example:
    """One row of ``fmt`` (not ``medi``, which :mod:`.data` reads) as an :class:`Example`; a problem raises a
    ``ValueError`` whose message names the column."""
    missing = [column for column in REQUIRED[fmt] if row.get(column) is None or row.get(column) == ""]
    if missing:
        raise ValueError(f"column '{missing[0]}' is missing or empty")
    query_side = _instruction(row, "query_instruction", sides.query)
    document_side = _instruction(row, "document_instruction", sides.document)
    if fmt == "pairs":
        negatives = _negatives(row)
        return Example(
            (query_side, _text(row, "anchor")),
            (document_side, _text(row, "positive")),
            tuple((document_side, text) for text in negatives),
            task,
        )
    if fmt == "labelled":
        label = row["label"]
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise ValueError(f"column 'label' must be a string or an integer, not {type(label).__name__}")
        text = _text(row, "text")
        return Example((query_side, text), (document_side, text), (), task, group=str(label))
    pair = ((query_side, _text(row, "sentence1")), (document_side, _text(row, "sentence2")))
    if fmt == "scored":
        return Example(*pair, (), task, score=_number(row, "score"))
    label = _number(row, "label")
    if label not in (0.0, 1.0):
        raise ValueError(f"column 'label' must be 0 or 1, got {row['label']!r}")
    return Example(*pair, (), task, score=label)


def _instruction(row: dict, side_column: str, default: str) -> str:
    value = row.get(side_column, row.get("instruction", default))
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"column '{side_column}' must be a string, not {type(value).__name__}")
    return value


def _text(row: dict, column: str) -> str:
    value = row[column]
    if not isinstance(value, str):
        raise ValueError(f"column '{column}' must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"column '{column}' is blank")
    return value


def _number(row: dict, column: str) -> float:
    value = row[column]
    try:
        if isinstance(value, bool):
            value = int(value)
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"column '{column}' must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"column '{column}' must be a finite number, got {value!r}")
    return number


def _negatives(row: dict) -> list[str]:
    if row.get("negatives") not in (None, ""):  # a CSV row without negatives has an empty cell
        value = row["negatives"]
        if isinstance(value, str):  # a CSV cell holding a JSON list
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("column 'negatives' must be a list of texts (in CSV: a JSON list)") from None
        if not isinstance(value, (list, tuple)) or not all(isinstance(text, str) and text.strip() for text in value):
            raise ValueError("column 'negatives' must be a list of non-blank texts")
        return list(value)
    if row.get("negative") not in (None, ""):
        return [_text(row, "negative")]
    return []
