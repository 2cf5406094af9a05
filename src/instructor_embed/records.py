"""Read texts to embed from .txt / .jsonl / .csv files and write embeddings to .npy / .parquet.

Every problem in an input file is reported with its line number; output is written to a
temporary file and moved into place only when complete, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

INPUT_SUFFIXES = (".txt", ".jsonl", ".csv")
OUTPUT_SUFFIXES = (".npy", ".parquet")


@dataclass(frozen=True)
class Record:
    """One text to embed; ``id`` is the caller's id, or the row number (0-based) when the file has none."""

    id: str | int
    instruction: str | None
    text: str


def read_records(path: Path, default_instruction: str | None = None) -> list[Record]:
    """All records of a file, checked before any embedding starts.

    ``.txt``: one text per line. ``.jsonl``: objects with ``text`` and optional ``id`` and ``instruction``.
    ``.csv``: a header row with a ``text`` column and optional ``id`` and ``instruction`` columns.
    A row's own instruction wins over ``default_instruction``.
    """
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise InputError(f"{path}: unsupported input type {suffix!r}; use one of {', '.join(INPUT_SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"{path}: no such input file")
    reader = {".txt": _txt_rows, ".jsonl": _jsonl_rows, ".csv": _csv_rows}[suffix]
    rows = list(reader(path))
    with_ids = [line for line, row_id, _, _ in rows if row_id is not None]
    if with_ids and len(with_ids) != len(rows):
        missing = next(line for line, row_id, _, _ in rows if row_id is None)
        raise InputError(f"{path}, line {missing}: no id, while other rows have one; give every row an id or none")
    return [
        Record(
            row_id if row_id is not None else index,
            instruction if instruction is not None else default_instruction,
            text,
        )
        for index, (_, row_id, instruction, text) in enumerate(rows)
    ]


Row = tuple[int, "str | None", "str | None", str]  # line number, id, instruction, text


def _txt_rows(path: Path) -> Iterator[Row]:
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            yield line_number, None, None, line.rstrip("\r\n")


def iter_jsonl(lines: Iterable[str], path: Path) -> Iterator[tuple[int, object]]:
    """``(line number, value)`` for each non-blank line; invalid JSON stops with the file and line named."""
    for line_number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield line_number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {line_number}: invalid JSON ({exc.msg})") from exc


def read_json_object(path: Path, expected: str) -> dict:
    """A JSON file holding one object; ``expected`` says what it should hold, for the error messages."""
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected {expected})")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path}: invalid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected a JSON object: {expected}")
    return value


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with open(path, encoding="utf-8") as handle:
        for line_number, row in iter_jsonl(handle, path):
            if not isinstance(row, dict):
                raise InputError(f"{path}, line {line_number}: expected a JSON object, got {type(row).__name__}")
            yield line_number, *_fields(row, path, line_number)


def _csv_rows(path: Path) -> Iterator[Row]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise InputError(f"{path}, line 1: the header has no 'text' column (found {reader.fieldnames})")
        for row in reader:
            line_number = reader.line_num
            if None in row or None in row.values():
                raise InputError(f"{path}, line {line_number}: expected {len(reader.fieldnames)} fields")
            yield line_number, row.get("id") or None, row.get("instruction") or None, row["text"]


def _fields(row: dict, path: Path, line_number: int) -> tuple[str | None, str | None, str]:
    if "text" not in row:
        raise InputError(f"{path}, line {line_number}: no 'text' field")
    text, instruction, row_id = row["text"], row.get("instruction"), row.get("id")
    if not isinstance(text, str):
        raise InputError(f"{path}, line {line_number}: 'text' must be a string, not {type(text).__name__}")
    if instruction is not None and not isinstance(instruction, str):
        raise InputError(
            f"{path}, line {line_number}: 'instruction' must be a string, not {type(instruction).__name__}"
        )
    if isinstance(row_id, bool) or (row_id is not None and not isinstance(row_id, (str, int))):
        raise InputError(f"{path}, line {line_number}: 'id' must be a string or an integer")
    return (None if row_id is None else str(row_id)), instruction, text


def check_output_path(path: Path, overwrite: bool) -> None:
    """Fail before any work when the output cannot be written."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{path}: unsupported output type {path.suffix!r}; use one of {', '.join(OUTPUT_SUFFIXES)}")
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    if path.suffix.lower() == ".parquet":
        _pyarrow()


def write_embeddings(path: Path, ids: list[str | int], embeddings: np.ndarray) -> None:
    """Write atomically: ``.npy`` holds the (n, dim) float32 matrix; ``.parquet`` has columns ``id``, ``embedding``."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    try:
        if path.suffix.lower() == ".npy":
            with open(temporary, "wb") as out:
                np.save(out, embeddings.astype(np.float32, copy=False))
        else:
            pa, pq = _pyarrow()
            values = pa.array(embeddings.astype(np.float32, copy=False).reshape(-1))
            column = pa.FixedSizeListArray.from_arrays(values, embeddings.shape[1])
            pq.write_table(pa.table({"id": pa.array(ids), "embedding": column}), temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InputError("Parquet output needs pyarrow: pip install 'instructor-embed[parquet]'") from exc
    return pa, pq
