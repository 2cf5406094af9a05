"""MEDI-format training data: read (streaming), validate with line numbers, index by task.

A row is ``{"query": [instruction, text], "pos": [instruction, text], "neg": [instruction, text],
"task_id" or "task_name": ...}``, in a JSON list (as the INSTRUCTOR authors publish MEDI) or in JSONL.
Both are read incrementally, so a large file is never held as text and as objects at once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..records import iter_jsonl, text_lines

FIELDS = ("query", "pos", "neg")
_CHUNK = 1 << 20
_CUT_SLACK = 16  # characters from the end of the buffer within which a decoding error may be a cut row


class InvalidDataError(InputError):
    """Training data has invalid rows; ``problems`` lists them (file, line, row, field, what)."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class Example:
    """One training triple; each text comes with its instruction."""

    query: tuple[str, str]
    pos: tuple[str, str]
    neg: tuple[str, str]
    task: str


@dataclass
class MediData:
    """Valid examples, their indices per task, and the problems of rows that were skipped."""

    examples: list[Example] = field(default_factory=list)
    tasks: dict[str, list[int]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, example: Example) -> None:
        self.tasks.setdefault(example.task, []).append(len(self.examples))
        self.examples.append(example)


def load_medi(path: str | Path, skip_invalid: bool = False, max_reported: int = 20) -> MediData:
    """Read and check every row. Invalid rows stop the load with a summary, or with ``skip_invalid`` are
    skipped and listed in ``MediData.skipped``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such training data file")
    data = MediData()
    for where, row in iter_rows(path):
        problem = check_row(row)
        if problem:
            data.skipped.append(f"{where}: {problem}")
            continue
        data.add(Example(*(tuple(row[name]) for name in FIELDS), task=str(row.get("task_name", row.get("task_id")))))
    if data.skipped and not skip_invalid:
        shown = "\n  ".join(data.skipped[:max_reported])
        more = f"\n  ... and {len(data.skipped) - max_reported} more" if len(data.skipped) > max_reported else ""
        raise InvalidDataError(
            f"{path}: {len(data.skipped)} invalid rows of {len(data.skipped) + len(data.examples)} "
            f"(pass --skip-invalid to skip them):\n  {shown}{more}",
            data.skipped,
        )
    if not data.examples:
        raise InputError(f"{path}: no valid training rows")
    return data


def check_row(row: object) -> str | None:
    """What is wrong with a row, or None."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    for name in FIELDS:
        if name not in row:
            return f"field '{name}' is missing"
        value = row[name]
        if not isinstance(value, list) or len(value) not in (2, 3):
            size = f"{len(value)} elements" if isinstance(value, list) else type(value).__name__
            return f"field '{name}' must be [instruction, text], got {size}"
        for position, part in zip(("instruction", "text"), value[:2], strict=True):
            if not isinstance(part, str):
                return f"field '{name}': the {position} must be a string, not {type(part).__name__}"
    task = row.get("task_name", row.get("task_id"))
    if task is None:
        return "no task key: expected 'task_name' or 'task_id'"
    if isinstance(task, bool) or not isinstance(task, (str, int)):
        return f"the task key must be a string or an integer, not {type(task).__name__}"
    return None


def iter_rows(path: Path) -> Iterator[tuple[str, object]]:
    """``("FILE, line L, row R", row)`` for each row; bad JSON is reported with its line and stops the read."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:  # a sniff: decoding errors come later
        first = _first_char(handle)
    if first != "[":
        for line_number, row in iter_jsonl(text_lines(path), path):
            yield f"{path}, line {line_number}", row
        return
    with open(path, encoding="utf-8-sig") as handle:
        try:
            yield from _json_array_rows(handle, path)
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not valid UTF-8 ({exc.reason}); save the file as UTF-8", path=path) from None


def _first_char(handle) -> str:
    while True:
        char = handle.read(1)
        if not char or not char.isspace():
            handle.seek(0)
            return char


def _json_array_rows(handle, path: Path) -> Iterator[tuple[str, object]]:
    """Decode the objects of a top-level JSON array one at a time, holding at most one chunk of text."""
    decoder = json.JSONDecoder()
    buffer, line, row_index = handle.read(_CHUNK), 1, 0
    position = buffer.index("[") + 1
    line += buffer.count("\n", 0, position)
    while True:
        # skip whitespace and the comma between rows
        while True:
            if position >= len(buffer):
                more = handle.read(_CHUNK)
                if not more:
                    raise InputError(f"{path}, line {line}: the JSON list is not closed with ']'")
                buffer, position = buffer[position:] + more, 0
            char = buffer[position]
            if char == "]":
                return
            if char in " \t\r\n,":
                line += char == "\n"
                position += 1
                continue
            break
        while True:
            try:
                row, end = decoder.raw_decode(buffer, position)
                break
            except json.JSONDecodeError as exc:
                # A row cut by the end of the buffer may decode once more text is read; any other syntax error is
                # reported now, without reading (and holding) the rest of a file that may be gigabytes long.
                more = handle.read(_CHUNK) if _may_be_cut(buffer, exc) else ""
                if not more:
                    raise InputError(
                        f"{path}, line {line + buffer.count(chr(10), position, exc.pos)}: invalid JSON ({exc.msg})"
                    ) from exc
                buffer, position = buffer[position:] + more, 0
        yield f"{path}, line {line}, row {row_index}", row
        line += buffer.count("\n", position, end)
        row_index += 1
        position = end


def _may_be_cut(buffer: str, error: json.JSONDecodeError) -> bool:
    """Whether decoding failed only because the buffer ends inside the row: a string still open at the end
    ("Unterminated string"), or an error within the last few characters (a cut number, literal or delimiter)."""
    return error.msg.startswith("Unterminated string") or len(buffer) - error.pos <= _CUT_SLACK


def prepare(
    data: MediData, *, instructions: str = "keep", max_rows_per_task: int | None = None, seed: int = 0
) -> MediData:
    """The examples to train on: their instructions kept (``"keep"``), removed (``"none"``: every text without
    one, as the paper's ablation trains) or replaced from a JSON task file, and each task cut to a seeded sample of
    at most ``max_rows_per_task`` rows (MEDI is dominated by a few large tasks).

    The task file maps each task to ``{"query": instruction, "document": instruction}`` (the document's goes to
    ``pos`` and ``neg``), or to one string for both sides; every task in the data must be in it.
    """
    replacements = _instruction_file(instructions, data.tasks) if instructions not in ("keep", "none") else None
    if max_rows_per_task is not None and max_rows_per_task < 1:
        raise InputError(f"max_rows_per_task must be at least 1, got {max_rows_per_task}", param="max_rows_per_task")
    if instructions == "keep" and max_rows_per_task is None:
        return data
    prepared = MediData(skipped=data.skipped)
    generator = random.Random(f"{seed}/rows")
    for task, indices in sorted(data.tasks.items()):
        chosen = indices
        if max_rows_per_task is not None and len(indices) > max_rows_per_task:
            chosen = sorted(generator.sample(indices, max_rows_per_task))
        for index in chosen:
            example = data.examples[index]
            if instructions == "none":
                query, document = "", ""
            elif replacements is not None:
                query, document = replacements[task]
            else:
                prepared.add(example)
                continue
            prepared.add(
                Example((query, example.query[1]), (document, example.pos[1]), (document, example.neg[1]), task)
            )
    return prepared


def _instruction_file(path: str, tasks: dict[str, list[int]]) -> dict[str, tuple[str, str]]:
    """Task -> (query instruction, document instruction), read from ``path`` and checked against ``tasks``."""
    file = Path(path)
    if not file.is_file():
        raise InputError(
            f"instructions must be 'keep', 'none' or a JSON task file; {path}: no such file", param="instructions"
        )
    try:
        given = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a JSON object of task instructions ({error})", param="instructions") from None
    if not isinstance(given, dict):
        raise InputError(
            f"{path}: expected a JSON object task -> instructions, got {type(given).__name__}", param="instructions"
        )
    missing = sorted(set(tasks) - set(given))
    if missing:
        raise InputError(f"{path} gives no instructions for tasks {missing[:10]} of the data", param="instructions")
    found = {}
    for task in tasks:
        value = given[task]
        if isinstance(value, str):
            found[task] = (value, value)
        elif isinstance(value, dict) and all(isinstance(value.get(side), str) for side in ("query", "document")):
            found[task] = (value["query"], value["document"])
        else:
            raise InputError(
                f'{path}: task {task!r} must map to a string or to {{"query": ..., "document": ...}} strings',
                param="instructions",
            )
    return found
