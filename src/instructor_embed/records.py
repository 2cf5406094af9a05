"""Read texts to embed from .txt / .jsonl / .csv / .tsv files and write embeddings to .npy / .parquet.

Every problem in an input file is reported with its line number (:class:`InputError` with ``path``, ``line``
and ``param``); a UTF-8 byte-order mark (Excel's CSV) is ignored; output is written durably (:mod:`~instructor_embed.durable`), so a failed run leaves nothing half-written.
Text holding an unpaired UTF-16 surrogate (a JSON ``\\ud800`` escape without its pair) is refused at its line,
as ``encode`` refuses it naming the item.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import durable
from .dependencies import require
from .errors import InputError
from .unicode_text import surrogate_problem

INPUT_SUFFIXES = (".txt", ".jsonl", ".csv", ".tsv", ".parquet")
OUTPUT_SUFFIXES = (".npy", ".parquet")


@dataclass(frozen=True)
class Record:
    """One text to embed. ``id``: the file's id (JSONL integers stay integers when every id is one; otherwise
    ids are strings), or the 0-based row number when the file has no ids."""

    id: str | int
    instruction: str | None
    text: str


def fail(path: Path, line: int, message: str, param: str | None = None) -> InputError:
    """An :class:`InputError` for ``path``, line ``line``, with the place in its message and attributes."""
    return InputError(f"{path}, line {line}: {message}", path=path, line=line, param=param)


ErrorHandler = Callable[[InputError], None]


@dataclass(frozen=True)
class Fields:
    """The names of an input file's columns (CSV/TSV/Parquet) or keys (JSONL)."""

    text: str = "text"
    id: str = "id"
    instruction: str = "instruction"


DEFAULT_FIELDS = Fields()


def text_lines(path: Path, on_error: ErrorHandler | None = None) -> Iterator[str]:
    """The lines of a UTF-8 text file, line endings kept, a leading byte-order mark dropped. A line that is not
    UTF-8 raises an error naming its line and column, or with ``on_error`` is reported to it and skipped."""
    return (line for _, line in numbered_lines(path, on_error))


def numbered_lines(path: Path, on_error: ErrorHandler | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for each line of a UTF-8 text file, as :func:`text_lines`."""
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                error = fail(
                    path,
                    line_number,
                    f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                    "save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 IN > OUT",
                )
                if on_error is None:
                    raise error from None
                on_error(error)
                continue
            yield line_number, line.removeprefix("\ufeff") if line_number == 1 else line


def read_records(path: Path, default_instruction: str | None = None, fields: Fields = DEFAULT_FIELDS) -> list[Record]:
    """All records of a file, checked before any embedding starts (for files that fit in memory; large ones go
    through :func:`iter_rows` in a bulk job).

    ``.txt``: one text per line. ``.jsonl``: objects with ``text`` and optional ``id`` and ``instruction``.
    ``.csv``/``.tsv``/``.parquet``: a ``text`` column and optional ``id`` and ``instruction`` columns (names as
    ``fields`` says). A row's own instruction wins over ``default_instruction``. Ids must be unique.
    """
    rows = list(iter_rows(path, fields))
    with_ids = [line for line, row_id, _, _ in rows if row_id is not None]
    if with_ids and len(with_ids) != len(rows):
        missing = next(line for line, row_id, _, _ in rows if row_id is None)
        raise fail(path, missing, "no id, while other rows have one; give every row an id or none", "id")
    if with_ids and not all(isinstance(row_id, int) for _, row_id, _, _ in rows):
        rows = [(line, str(row_id), instruction, text) for line, row_id, instruction, text in rows]
    _check_unique_ids(path, rows)
    return [
        Record(
            row_id if row_id is not None else index,
            instruction if instruction is not None else default_instruction,
            text,
        )
        for index, (_, row_id, instruction, text) in enumerate(rows)
    ]


Row = tuple[int, "str | int | None", "str | None", str]  # line (or row) number, id, instruction, text


def iter_rows(path: Path, fields: Fields = DEFAULT_FIELDS, on_error: ErrorHandler | None = None) -> Iterator[Row]:
    """Each row of an input file as ``(line, id, instruction, text)``, read as a stream. A bad row raises an
    :class:`InputError` naming its line, or with ``on_error`` is reported to it and skipped."""
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise InputError(
            f"{path}: unsupported input type {suffix!r}; use one of {', '.join(INPUT_SUFFIXES)}", path=path
        )
    if not path.is_file():
        raise InputError(f"{path}: no such input file", path=path)
    if suffix == ".txt":
        for line_number, line in numbered_lines(path, on_error):
            yield line_number, None, None, line.rstrip("\r\n")
        return
    reader = {".jsonl": _jsonl_rows, ".csv": _table_rows, ".tsv": _table_rows, ".parquet": _parquet_rows}[suffix]
    for line_number, row in reader(path, fields, on_error):
        try:
            yield line_number, *_fields(row, path, line_number, fields)
        except InputError as error:
            if on_error is None:
                raise
            on_error(error)


def _check_unique_ids(path: Path, rows: list[Row]) -> None:
    first_line: dict[str | int, int] = {}
    for line, row_id, _, _ in rows:
        if row_id is None:
            return
        if row_id in first_line:
            raise fail(
                path, line, f"id {row_id!r} repeats the id of line {first_line[row_id]}; ids must be unique", "id"
            )
        first_line[row_id] = line


def iter_jsonl(lines: Iterable[str], path: Path, on_error: ErrorHandler | None = None) -> Iterator[tuple[int, object]]:
    """``(line number, value)`` for each non-blank line; invalid JSON stops with the file and line named (or with
    ``on_error`` is reported and skipped)."""
    return _decode_jsonl(enumerate(lines, start=1), path, on_error)


def _decode_jsonl(
    numbered: Iterable[tuple[int, str]], path: Path, on_error: ErrorHandler | None
) -> Iterator[tuple[int, object]]:
    for line_number, line in numbered:
        if line.strip():
            try:
                yield line_number, json.loads(line.removeprefix("\ufeff") if line_number == 1 else line)
            except json.JSONDecodeError as exc:
                error = fail(path, line_number, f"invalid JSON ({exc.msg})")
                if on_error is None:
                    raise error from exc
                on_error(error)


def read_json_object(path: Path, expected: str) -> dict:
    """A JSON file holding one object; ``expected`` says what it should hold, for the error messages."""
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected {expected})", path=path)
    try:
        value = json.loads("".join(text_lines(path)))
    except ValueError as exc:
        raise InputError(f"{path}: invalid JSON ({exc})", path=path) from exc
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected a JSON object: {expected}", path=path)
    return value


def _jsonl_rows(path: Path, fields: Fields, on_error: ErrorHandler | None) -> Iterator[tuple[int, object]]:
    return _decode_jsonl(numbered_lines(path, on_error), path, on_error)


class TableReader:
    """The rows of a .csv (RFC 4180 quoting) or .tsv file (tabs, no quoting: a field may start with a quote
    character) as ``(line, row)``: ``line`` is the file's line number of the row's last line, also after lines
    skipped for bad UTF-8, and ``row`` a dict of the header's columns. ``fieldnames``: the header (None: empty)."""

    def __init__(self, path: Path, on_error: ErrorHandler | None = None):
        self._numbered = numbered_lines(path, on_error)
        self._line = 0
        if path.suffix.lower() == ".tsv":
            self._reader = csv.DictReader(self._lines(), delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            self._reader = csv.DictReader(self._lines())

    def _lines(self) -> Iterator[str]:
        for number, line in self._numbered:
            self._line = number
            yield line

    @property
    def fieldnames(self) -> list[str] | None:
        return self._reader.fieldnames

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        for row in self._reader:
            yield self._line, row


def _table_rows(path: Path, fields: Fields, on_error: ErrorHandler | None) -> Iterator[tuple[int, dict]]:
    reader = TableReader(path, on_error)
    if reader.fieldnames is None or fields.text not in reader.fieldnames:
        raise fail(path, 1, f"the header has no {fields.text!r} column (found {reader.fieldnames})", "text")
    for line_number, row in reader:
        if None in row or None in row.values():
            error = fail(path, line_number, f"expected {len(reader.fieldnames)} fields")
            if on_error is None:
                raise error
            on_error(error)
            continue
        # CSV has no types and no nulls: an empty id or instruction means none
        yield line_number, {key: value for key, value in row.items() if value != "" or key == fields.text}


def _parquet_rows(path: Path, fields: Fields, on_error: ErrorHandler | None) -> Iterator[tuple[int, dict]]:
    pa = require("parquet", "pyarrow", "Parquet input")
    parquet = require("parquet", "pyarrow.parquet", "Parquet input")
    try:
        source = parquet.ParquetFile(path)
        names = source.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})", path=path) from None
    if fields.text not in names:
        raise InputError(f"{path}: no {fields.text!r} column (found {names})", path=path, param="text")
    columns = [name for name in (fields.text, fields.id, fields.instruction) if name in names]
    number = 0
    batches = source.iter_batches(batch_size=4096, columns=columns)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: damaged after row {number} ({exc})", path=path, line=number + 1) from None
        if batch is None:
            return
        for row in batch.to_pylist():
            number += 1
            yield number, {key: value for key, value in row.items() if value is not None}


def _fields(row: object, path: Path, line_number: int, fields: Fields) -> tuple[str | int | None, str | None, str]:
    if not isinstance(row, dict):
        raise fail(path, line_number, f"expected a JSON object, got {type(row).__name__}")
    if fields.text not in row:
        raise fail(path, line_number, f"no {fields.text!r} field", "text")
    text, instruction, row_id = row[fields.text], row.get(fields.instruction), row.get(fields.id)
    if not isinstance(text, str):
        raise fail(path, line_number, f"{fields.text!r} must be a string, not {type(text).__name__}", "text")
    if instruction is not None and not isinstance(instruction, str):
        raise fail(
            path,
            line_number,
            f"{fields.instruction!r} must be a string, not {type(instruction).__name__}",
            "instruction",
        )
    if isinstance(row_id, bool) or (row_id is not None and not isinstance(row_id, (str, int))):
        raise fail(path, line_number, f"{fields.id!r} must be a string or an integer", "id")
    for name, value in ((fields.text, text), (fields.instruction, instruction), (fields.id, row_id)):
        problem = surrogate_problem(value) if isinstance(value, str) else None
        if problem:
            raise fail(path, line_number, f"{name!r} {problem}", name)
    return row_id, instruction, text


def check_output_path(path: Path, overwrite: bool) -> None:
    """Fail before any work when the output cannot be written."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(
            f"{path}: unsupported output type {path.suffix!r}; use one of {', '.join(OUTPUT_SUFFIXES)}", path=path
        )
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it", path=path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist", path=path)
    if path.suffix.lower() == ".parquet":
        _pyarrow()


def write_embeddings(path: Path, ids: list[str | int], embeddings: np.ndarray) -> None:
    """Write durably (:func:`~instructor_embed.durable.write_file`): ``.npy`` holds the (n, dim) float32 matrix;
    ``.parquet`` has columns ``id``, ``embedding``."""
    if path.suffix.lower() == ".npy":

        def write(temporary: Path) -> None:
            with open(temporary, "wb") as out:
                np.save(out, embeddings.astype(np.float32, copy=False))

    else:
        pa, pq = _pyarrow()
        values = pa.array(embeddings.astype(np.float32, copy=False).reshape(-1))
        table = pa.table(
            {"id": pa.array(ids), "embedding": pa.FixedSizeListArray.from_arrays(values, embeddings.shape[1])}
        )

        def write(temporary: Path) -> None:
            pq.write_table(table, temporary)

    durable.write_file(path, write, fault="embeddings")


def _pyarrow():
    return require("parquet", "pyarrow", "Parquet output"), require("parquet", "pyarrow.parquet", "Parquet output")
