"""Training data: files of any :mod:`.formats` shape, read as streams, checked with line numbers, indexed by task.

A MEDI row is ``{"query": [instruction, text], "pos": [instruction, text], "neg": [instruction, text],
"task_name" or "task_id": ...}``, in a JSON list (as the INSTRUCTOR authors publish MEDI) or in JSONL; its rows
name their tasks. Any other file is one task (named by the file, or by a task file): .jsonl, .json, .csv, .tsv or
.parquet, its shape detected from its columns. JSON lists are read incrementally, so a large file is never held
as text and as objects at once.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..dependencies import require
from ..errors import InputError
from ..records import TableReader, iter_jsonl, text_lines
from .formats import LOSS_OF_FORMAT, Example, Sides, check_format, detect_format, renamed, to_example

FIELDS = ("query", "pos", "neg")
SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
_CHUNK = 1 << 20
_CUT_SLACK = 16  # characters from the end of the buffer within which a decoding error may be a cut row


class InvalidDataError(InputError):
    """Training data has invalid rows; ``problems`` lists them (file, line, row, field, what)."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class TaskSource:
    """One training file. ``task``: the task its rows form (None: a MEDI file's rows name theirs; default the
    file's name); ``format``: None to detect; ``columns``: the format's column names -> the file's;
    ``sides``: the task's instructions (None: the run's defaults); ``weight``: its sampling weight."""

    path: Path
    task: str | None = None
    format: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    sides: Sides | None = None
    weight: float | None = None


@dataclass
class TrainingData:
    """Valid examples, their indices per task, each task's format and file, and the rows that were skipped."""

    examples: list[Example] = field(default_factory=list)
    tasks: dict[str, list[int]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, example: Example) -> None:
        self.tasks.setdefault(example.task, []).append(len(self.examples))
        self.examples.append(example)

    def loss_of(self, task: str) -> str:
        """The loss a task's batches take: ``instructor``, ``in-batch`` or ``cosent`` (see :mod:`.formats`)."""
        return LOSS_OF_FORMAT[self.formats[task]]

    def groups(self) -> dict[int, str]:
        """Example index -> label, for the rows whose in-batch negatives must not share their label."""
        return {index: example.group for index, example in enumerate(self.examples) if example.group is not None}

    def instructions(self) -> dict[str, dict[str, str]]:
        """Each task's instructions as trained: its most frequent query and document instruction."""
        found = {}
        for task, indices in sorted(self.tasks.items()):
            rows = [self.examples[i] for i in indices]
            found[task] = {
                "query": Counter(row.query[0] for row in rows).most_common(1)[0][0],
                "document": Counter(row.pos[0] for row in rows).most_common(1)[0][0],
            }
        return found


MediData = TrainingData  # the name of instructor-embed 0.1, when MEDI was the only format


def load_medi(path: str | Path, skip_invalid: bool = False, max_reported: int = 20) -> TrainingData:
    """Read and check every row of a MEDI file (see :func:`load_training_data`)."""
    return load_training_data([TaskSource(Path(path), format="medi")], skip_invalid, max_reported)


def load_training_data(
    sources: Sequence[TaskSource],
    skip_invalid: bool = False,
    max_reported: int = 20,
    *,
    defaults: Sides | None = None,
    seed: int = 0,
) -> TrainingData:
    """Read and check every row of every source. Invalid rows stop the load with a summary naming file and line,
    or with ``skip_invalid`` are skipped and listed in ``TrainingData.skipped``. ``defaults``: the instructions
    of tasks whose source gives none; ``seed``: how ``labelled`` texts are paired."""
    data = TrainingData()
    rows_read = 0
    for source in sources:
        path = source.path
        if not path.is_file():
            raise InputError(f"{path}: no such training data file")
        fmt = None if source.format is None else check_format(source.format)
        task = source.task or path.stem
        sides = source.sides or defaults or Sides()
        earlier = dict(data.files)
        for where, row in read_rows(path):
            rows_read += 1
            if fmt is None:
                fmt = "medi" if isinstance(row, dict) and set(FIELDS) <= set(row) else None
                fmt = fmt or detect_format(list(renamed(row, source.columns)) if isinstance(row, dict) else [], where)
            problem, example = _example(row, fmt, task, sides, source.columns)
            if problem:
                data.skipped.append(f"{where}: {problem}")
                continue
            if example.task in earlier or data.formats.get(example.task, fmt) != fmt:
                raise InputError(
                    f"{where}: task {example.task!r} is already read from {data.files[example.task]}; "
                    "give each file its own task name (a task file names them)"
                )
            data.formats.setdefault(example.task, fmt)
            data.files.setdefault(example.task, str(path))
            data.add(example)
    if data.skipped and not skip_invalid:
        shown = "\n  ".join(data.skipped[:max_reported])
        more = f"\n  ... and {len(data.skipped) - max_reported} more" if len(data.skipped) > max_reported else ""
        where = sources[0].path if len(sources) == 1 else f"{len(sources)} files"
        raise InvalidDataError(
            f"{where}: {len(data.skipped)} invalid rows of {rows_read} (pass --skip-invalid to skip them):\n  "
            f"{shown}{more}",
            data.skipped,
        )
    data = _paired_labelled(data, seed)
    if not data.examples:
        raise InputError(f"{', '.join(str(s.path) for s in sources)}: no valid training rows")
    return data


def _example(row: object, fmt: str, task: str, sides: Sides, columns: Mapping[str, str]):
    """(problem, None) or (None, the row's Example)."""
    if fmt == "medi":
        problem = check_row(row)
        if problem:
            return problem, None
        query, pos, neg = (tuple(row[name][:2]) for name in FIELDS)
        return None, Example(query, pos, (neg,), task=str(row.get("task_name", row.get("task_id"))))
    if not isinstance(row, dict):
        return f"expected an object with columns, got {type(row).__name__}", None
    try:
        return None, to_example(renamed(row, columns), fmt, task, sides)
    except ValueError as error:
        return str(error), None


def _paired_labelled(data: TrainingData, seed: int) -> TrainingData:
    """``labelled`` tasks as (text, another text of its label) rows: each label's texts shuffled (seeded) and
    each paired with the next, so every text is once an anchor and once a positive. A label with one text has no
    pair; its text is left out, with a note."""
    if "labelled" not in data.formats.values():
        return data
    paired = TrainingData(skipped=data.skipped, formats=data.formats, files=data.files, notes=data.notes)
    for task, indices in data.tasks.items():
        rows = [data.examples[i] for i in indices]
        if data.formats[task] != "labelled":
            for row in rows:
                paired.add(row)
            continue
        by_label: dict[str, list[Example]] = {}
        for row in rows:
            by_label.setdefault(row.group, []).append(row)
        generator = random.Random(f"{seed}/pairs/{task}")
        alone = []
        for label, texts in sorted(by_label.items()):
            if len(texts) < 2:
                alone.append(label)
                continue
            generator.shuffle(texts)
            for anchor, positive in zip(texts, texts[1:] + texts[:1], strict=True):
                paired.add(Example(anchor.query, positive.pos, (), task, group=label))
        if alone:
            data.notes.append(f"{task}: {len(alone)} labels have one text only and are left out: {alone[:10]}")
    return paired


def read_rows(path: Path) -> Iterator[tuple[str, object]]:
    """``("FILE, line L", row)`` for each row of a .jsonl, .json, .csv, .tsv or .parquet file."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield from _table_rows(path)
    elif suffix == ".parquet":
        yield from _parquet_rows(path)
    elif suffix in (".json", ".jsonl"):
        yield from iter_rows(path)
    else:
        raise InputError(f"{path}: unsupported training file type {suffix!r}; use one of {', '.join(SUFFIXES)}")


def _table_rows(path: Path) -> Iterator[tuple[str, dict]]:
    reader = TableReader(path)
    if reader.fieldnames is None:
        raise InputError(f"{path}: empty file; expected a header row naming the columns", path=path)
    for line, row in reader:
        if None in row or None in row.values():
            raise InputError(f"{path}, line {line}: expected {len(reader.fieldnames)} fields", path=path, line=line)
        yield f"{path}, line {line}", row


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict]]:
    pa = require("parquet", "pyarrow", "Parquet training data")
    parquet = require("parquet", "pyarrow.parquet", "Parquet training data")
    try:
        batches = parquet.ParquetFile(path).iter_batches(batch_size=4096)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield f"{path}, row {number}", row
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})", path=path) from None


def sources_from(
    data: Sequence[str], *, tasks_file: str | None = None, fmt: str | None = None, columns: str | None = None
) -> list[TaskSource]:
    """The files to train on: each ``data`` entry a file or a folder (its files, each a task, in name order),
    then the tasks of ``tasks_file``. ``fmt`` and ``columns`` (``"anchor=question,positive=answer"``) apply to
    the ``data`` files."""
    mapping = parse_columns(columns)
    found = []
    for entry in data:
        path = Path(entry)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not files:
                raise InputError(f"{path}: a folder with no training files ({', '.join(SUFFIXES)})", param="data")
            found += [TaskSource(file, format=fmt, columns=mapping) for file in files]
        else:
            found.append(TaskSource(path, format=fmt, columns=mapping))
    if tasks_file:
        found += read_tasks_file(Path(tasks_file))
    if not found:
        raise InputError("no training data: pass --data or --tasks", param="data")
    return found


def parse_columns(columns: str | None) -> dict[str, str]:
    """``"anchor=question,positive=answer"`` -> {format's column: file's column}."""
    mapping = {}
    for entry in filter(None, (part.strip() for part in (columns or "").split(","))):
        ours, _, theirs = entry.partition("=")
        if not ours.strip() or not theirs.strip():
            raise InputError(f"--columns: {entry!r} is not FORMAT_COLUMN=FILE_COLUMN", param="columns")
        mapping[ours.strip()] = theirs.strip()
    return mapping


TASK_KEYS = ("file", "format", "columns", "instruction", "query_instruction", "document_instruction", "weight")


def _parse_tasks_file(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such task file", param="tasks") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a text file ({error})", param="tasks") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # PyYAML: a dependency of transformers and huggingface_hub

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise InputError(f"{path}: not a YAML task file ({error})", param="tasks") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not a JSON task file ({error})", param="tasks") from None


def read_tasks_file(path: Path) -> list[TaskSource]:
    """A JSON (or YAML: ``.yaml``/``.yml``) task file: ``{"TASK": {"file": ..., "format"?, "columns"?: {...},
    "instruction"? (both sides) or "query_instruction"?/"document_instruction"?, "weight"?}}``; files relative
    to the task file."""
    given = _parse_tasks_file(path)
    if not isinstance(given, dict) or not given:
        raise InputError(f'{path}: expected a mapping TASK -> {{"file": ...}}', param="tasks")
    sources = []
    for task, entry in given.items():
        where = f"{path}: task {task!r}"
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise InputError(f'{where} needs {{"file": PATH, ...}}', param="tasks")
        unknown = sorted(set(entry) - set(TASK_KEYS))
        if unknown:
            raise InputError(f"{where}: unknown keys {unknown} (known: {', '.join(TASK_KEYS)})", param="tasks")
        instructions = {key: entry.get(key) for key in ("instruction", "query_instruction", "document_instruction")}
        if not all(value is None or isinstance(value, str) for value in instructions.values()):
            raise InputError(f"{where}: instructions must be strings", param="tasks")
        sides = None
        if any(value is not None for value in instructions.values()):
            both = instructions["instruction"] or ""
            sides = Sides(instructions["query_instruction"] or both, instructions["document_instruction"] or both)
        columns = entry.get("columns", {})
        if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
            raise InputError(f'{where}: "columns" must map format columns to the file\'s', param="tasks")
        weight = entry.get("weight")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0):
            raise InputError(f"{where}: weight must be a number >= 0, got {weight!r}", param="tasks")
        file = Path(entry["file"])
        sources.append(
            TaskSource(
                file if file.is_absolute() else path.parent / file,
                task=task,
                format=entry.get("format"),
                columns=columns,
                sides=sides,
                weight=weight,
            )
        )
    return sources


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
    data: TrainingData, *, instructions: str = "keep", max_rows_per_task: int | None = None, seed: int = 0
) -> TrainingData:
    """The examples to train on: their instructions kept (``"keep"``), removed (``"none"``: every text without
    one, as the paper's ablation trains) or replaced from a JSON task file, and each task cut to a seeded sample of
    at most ``max_rows_per_task`` rows (MEDI is dominated by a few large tasks).

    The task file maps each task to ``{"query": instruction, "document": instruction}`` (the document's goes to
    ``pos`` and ``neg``), or to one instruction for both sides; every task in the data must be in it. An
    instruction may be a list of wordings: each text then gets one of its side's wordings, drawn independently
    with ``seed`` (so a query and its positive share a wording no more often than any two texts of the task, and
    the wording cannot give the pair away).
    """
    replacements = _instruction_file(instructions, data.tasks) if instructions not in ("keep", "none") else None
    if max_rows_per_task is not None and max_rows_per_task < 1:
        raise InputError(f"max_rows_per_task must be at least 1, got {max_rows_per_task}", param="max_rows_per_task")
    if instructions == "keep" and max_rows_per_task is None:
        return data
    prepared = TrainingData(skipped=data.skipped, formats=data.formats, files=data.files, notes=data.notes)
    generator = random.Random(f"{seed}/rows")
    wordings = random.Random(f"{seed}/wordings")
    for task, indices in sorted(data.tasks.items()):
        chosen = indices
        if max_rows_per_task is not None and len(indices) > max_rows_per_task:
            chosen = sorted(generator.sample(indices, max_rows_per_task))
        for index in chosen:
            example = data.examples[index]
            if instructions == "none":
                query, document = ("",), ("",)
            elif replacements is not None:
                query, document = replacements[task]
            else:
                prepared.add(example)
                continue
            prepared.add(
                Example(
                    (wordings.choice(query), example.query[1]),
                    (wordings.choice(document), example.pos[1]),
                    tuple((wordings.choice(document), text) for _, text in example.negatives),
                    task,
                    example.score,
                    example.group,
                )
            )
    return prepared


def _instruction_file(path: str, tasks: dict[str, list[int]]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Task -> (query wordings, document wordings), read from ``path`` and checked against ``tasks``."""
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
        sides = (value, value) if not isinstance(value, dict) else (value.get("query"), value.get("document"))
        found[task] = tuple(_wordings(side) for side in sides)
        if None in found[task]:
            raise InputError(
                f'{path}: task {task!r} must map to an instruction or to {{"query": ..., "document": ...}}, '
                "each a string or a non-empty list of strings",
                param="instructions",
            )
    return found


def _wordings(value: object) -> tuple[str, ...] | None:
    """An instruction as its tuple of wordings (one for a string); None if it is neither a string nor a non-empty
    list of strings."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None
