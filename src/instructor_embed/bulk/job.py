"""A resumable embedding job: input file (streamed) → Parquet shards + ``_manifest.json`` in an output folder.

Two passes over the input, neither holding it in memory. The first checks every row before the model's weights
load — its fields, and with the model's tokenizer that its text can be embedded — so bad rows stop the job with
their line numbers, or with ``skip_invalid`` are listed in ``_invalid_rows.jsonl``. The second embeds the valid
rows in order, ``shard_rows`` at a time, and commits each shard in two durable writes
(:mod:`~instructor_embed.durable`): the shard under its final name, then the manifest that records it with its
SHA-256. Killed at any moment, the folder holds complete shards and a manifest listing some of them: a shard
renamed but not yet recorded is redone, and so is a recorded shard whose bytes no longer match, with every shard
after it. Shards always cover the same rows, so the vectors equal an uninterrupted run's.

Run again with the same settings, the job continues after the last recorded shard. Other settings are refused,
naming what changed; ``overwrite`` starts again. The folder's layout, what the job owns there and its lock:
:mod:`~instructor_embed.bulk.folder`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..dependencies import require
from ..encode import postprocess
from ..errors import InputError, InstructorEmbedError, OutputError
from ..records import Fields, fail, iter_rows
from ..spec import ModelSpec, as_spec, resolve_instruction
from ..tokenization import InstructionTokenizer, Item
from . import legacy
from .folder import INVALID_ROWS, MANIFEST, JobFolder, is_shard_name, shard_name
from .long_text import LONG_TEXT_MODES, Chunk, chunk_table_columns, instruction_overhead, mean_of_chunks, split_long

FORMAT_VERSION = 2
_CHECK_ROWS = 1024  # rows tokenized at a time by the first pass's check


@dataclass(frozen=True)
class JobConfig:
    """What to embed, with which model and settings, and where to write it."""

    input: str | os.PathLike[str]
    output: str | os.PathLike[str]  # a folder: Parquet shards and _manifest.json
    model: ModelSpec | str | os.PathLike[str]  # a spec, or a Hub id / directory with the default options
    instruction: str | None = None  # for rows without their own
    fields: Fields = field(default_factory=Fields)
    batch_size: int = 32
    max_batch_tokens: int | None = None
    shard_rows: int = 10_000
    normalize: bool = False
    long_text: str = "truncate"  # texts over the window: "truncate", "chunk" (a row per window) or "mean"
    chunk_overlap: int = 32  # tokens shared by consecutive windows
    skip_invalid: bool = False
    overwrite: bool = False
    show_progress: bool = True
    engine: str = "local"  # "local", or "ray": each shard's forward passes on a Ray actor pool (extra ray)
    ray_address: str | None = None  # a running cluster ("auto", "ray://head:10001"); None: a local instance
    num_workers: int = 1  # Ray actors, one model each
    gpus_per_worker: float = 0

    @property
    def spec(self) -> ModelSpec:
        return as_spec(self.model)


@dataclass(frozen=True)
class JobSummary:
    """What a run did."""

    output: Path
    rows: int  # valid rows in the input, all embedded once the job is complete
    embedded_now: int  # rows this run embedded (the rest were already committed)
    invalid_rows: int
    shards: int
    seconds: float
    tokens: int  # tokens this run embedded

    @property
    def rows_per_second(self) -> float:
        return self.embedded_now / self.seconds if self.seconds else 0.0


class InvalidInputError(InputError):
    """Rows of the input are invalid; ``problems`` holds every one (file, line, what)."""

    def __init__(self, message: str, problems: list[InputError]):
        super().__init__(message)
        self.problems = problems


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C during a job: the shards committed so far are kept, and the same command continues."""


@dataclass
class _Scan:
    """The first pass: how many rows are valid, their ids' kind, and the invalid ones."""

    valid: int = 0
    ids: str = "row_number"  # "row_number" (the file has none), "int" or "string"
    row_instructions: bool = False
    problems: list[InputError] = field(default_factory=list)

    @property
    def invalid_lines(self) -> set[int]:
        return {problem.line for problem in self.problems}


def embed_file(config: JobConfig) -> JobSummary:
    """Embed every valid row of ``config.input`` into ``config.output``, continuing a previous run if there is one."""
    started = time.perf_counter()
    require("parquet", "pyarrow", "bulk embedding")
    spec, source, folder = config.spec, Path(config.input), JobFolder(config.output)
    _check_config(config, folder.path)
    with folder.locked():
        if not folder.holds_job() and not legacy.needs_migration(folder) and not folder.is_empty():
            raise InputError(
                f"{folder.path} is not empty and holds no job; choose another folder (--overwrite replaces a "
                "job's own output, never other files)",
                path=folder.path,
            )
        scan = _scan(source, config, spec.instruction_tokenizer())
        if scan.problems and not config.skip_invalid:
            shown = "\n  ".join(str(problem) for problem in scan.problems[:20])
            more = f"\n  ... and {len(scan.problems) - 20} more" if len(scan.problems) > 20 else ""
            raise InvalidInputError(
                f"{source}: {len(scan.problems)} invalid rows (pass --skip-invalid to skip them and list them in "
                f"{INVALID_ROWS}); nothing was embedded:\n  {shown}{more}",
                scan.problems,
            )
        runner = _Runner(config, spec)
        try:
            return _run(config, folder, source, scan, runner, started)
        finally:
            runner.close()


def _run(config: JobConfig, folder: JobFolder, source: Path, scan: _Scan, runner: _Runner, started: float):
    with _writing(folder, None, MANIFEST):
        manifest = _open_output(folder, _identity(config, runner, source), runner, scan, config)
    if config.skip_invalid:
        with _writing(folder, manifest, INVALID_ROWS):
            folder.write_invalid_rows(
                "".join(json.dumps({"line": p.line, "field": p.param, "error": str(p)}) + "\n" for p in scan.problems)
            )
    committed = manifest["shards"][-1]["end"] if manifest["shards"] else 0
    embedded_now, tokens = 0, 0
    progress = _progress(config, scan.valid, committed)

    def commit(start: int, rows: list[tuple], pending: _Pending) -> None:
        """Collect a shard's vectors, write it, and record it in the manifest."""
        nonlocal embedded_now, tokens
        vectors, count, chunks = runner.finish(pending, config, progress)
        name = shard_name(len(manifest["shards"]))
        with _writing(folder, manifest, name):
            folder.write_shard(name, _table(rows, vectors, scan, start, chunks))
        digest = _file_digest(folder.path / name)
        manifest["shards"].append({"file": name, "start": start, "end": start + len(rows), "sha256": digest})
        manifest["complete"] = start + len(rows) == scan.valid
        try:
            with _writing(folder, manifest, MANIFEST):
                folder.write_manifest(manifest)
        except OutputError:
            manifest["shards"].pop()
            raise
        embedded_now, tokens = embedded_now + len(rows), tokens + count
        progress.set_postfix(
            tokens_per_s=f"{tokens / (time.perf_counter() - started):.0f}", shards=len(manifest["shards"])
        )

    ahead: deque = deque()  # (start, rows, pending) of the shards handed to the runner, oldest first
    try:
        for start, rows in _pending_shards(source, config, scan, committed):
            ahead.append((start, rows, runner.begin(rows, config)))
            if len(ahead) > runner.lookahead:
                commit(*ahead.popleft())
        while ahead:
            commit(*ahead.popleft())
    except KeyboardInterrupt:
        raise JobInterrupted(_interrupted(folder, manifest)) from None
    finally:
        progress.close()
    if not manifest["complete"] and (scan.valid == 0 or manifest["shards"][-1]["end"] == scan.valid):
        manifest["complete"] = True
        folder.write_manifest(manifest)
    return JobSummary(
        folder.path,
        scan.valid,
        embedded_now,
        len(scan.problems),
        len(manifest["shards"]),
        time.perf_counter() - started,
        tokens,
    )


@dataclass
class _Pending:
    """A shard being embedded: its row count, the items run (rows or chunks), and its parts on the workers."""

    rows: int
    items: list[Item]
    chunks: list[Chunk] | None
    parts: int


class _Runner:
    """Where the forward passes run: the model in this process, or a Ray actor pool (this process then loads
    only the tokenizer)."""

    def __init__(self, config: JobConfig, spec: ModelSpec):
        self.model, self.pool = None, None
        if config.engine == "ray":
            from .ray import ActorPoolEngine, start_ray

            start_ray(config)
            self.pool = ActorPoolEngine(config, spec)
            self.tokenizer = spec.instruction_tokenizer()
            self.runtime, self.dimension = self.pool.describe()
        else:
            self.model = spec.load()
            self.tokenizer = self.model.instruction_tokenizer
            self.runtime = self.model.transformer.runtime.identity()
            self.dimension = self.model.get_sentence_embedding_dimension()
        self.fingerprint = spec.fingerprint()

    @property
    def lookahead(self) -> int:
        """Shards handed to the workers before the oldest is written: Ray's actors embed the next shard while this
        process collects and writes the current one; in-process, the model is this process."""
        return 1 if self.pool is not None else 0

    def begin(self, rows: list[tuple], config: JobConfig) -> _Pending:
        """Start embedding a shard: its items (or chunks), queued on the Ray workers when there are any."""
        items = [_item(row, config) for row in rows]
        chunks = None if config.long_text == "truncate" else split_long(items, self.tokenizer, config.chunk_overlap)
        embedded = items if chunks is None else [chunk.item for chunk in chunks]
        parts = self.pool.submit(embedded) if self.pool is not None else 0
        return _Pending(len(rows), embedded, chunks, parts)

    def finish(self, pending: _Pending, config: JobConfig, progress) -> tuple[np.ndarray, int, list[Chunk] | None]:
        """The shard's vectors (one per row, or per chunk with ``long_text="chunk"``), its tokens, its chunks."""
        chunks = pending.chunks
        done = progress.update if chunks is None else None  # progress counts rows; chunks would overshoot
        if self.pool is not None:
            vectors, count = self.pool.collect(pending.parts, on_part=done)
        else:
            engine = self.model.engine
            tokenized = engine.tokenize(pending.items)
            count = sum(tokenized.token_counts)
            vectors = engine.run(
                tokenized, batch_size=config.batch_size, max_batch_tokens=config.max_batch_tokens, on_batch=done
            )
        if chunks is not None:
            progress.update(pending.rows)
        if config.long_text == "mean":
            vectors, chunks = mean_of_chunks(chunks, vectors, pending.rows), None
        vectors = postprocess(vectors, truncate_dim=config.spec.truncate_dim, normalize=config.normalize)
        return vectors.numpy(), count, chunks

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def _item(row: tuple, config: JobConfig) -> Item:
    _, _, instruction, text = row
    return Item(resolve_instruction(instruction, config.instruction), text)


def _check_config(config: JobConfig, output: Path) -> None:
    for name in ("batch_size", "shard_rows"):
        if getattr(config, name) < 1:
            raise InputError(f"{name} must be at least 1", param=name)
    if config.long_text not in LONG_TEXT_MODES:
        raise InputError(
            f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, got {config.long_text!r}", param="long_text"
        )
    if config.chunk_overlap < 0:
        raise InputError("chunk_overlap must not be negative", param="chunk_overlap")
    if config.engine not in ("local", "ray"):
        raise InputError(f"engine must be 'local' or 'ray', got {config.engine!r}", param="engine")
    if config.num_workers < 1:
        raise InputError("num_workers must be at least 1", param="num_workers")
    if output.exists() and not output.is_dir():
        raise InputError(f"{output} is a file; the output of a bulk job is a folder", path=output)


def _scan(source: Path, config: JobConfig, tokenizer: InstructionTokenizer) -> _Scan:
    """Every row's fields, and with the tokenizer that each can be embedded, in chunks of rows."""
    scan, pending, ints, with_ids, first_without = _Scan(), [], 0, 0, None
    overheads: dict[str | None, int] = {}

    def check(rows: list[tuple]) -> None:
        nonlocal ints, with_ids, first_without
        bad = _unembeddable(rows, config, tokenizer, overheads)
        for position, (line, row_id, instruction, _) in enumerate(rows):
            if position in bad:
                scan.problems.append(fail(source, line, bad[position][1], bad[position][0]))
                continue
            scan.valid += 1
            scan.row_instructions |= instruction is not None
            if row_id is None:
                first_without = first_without or line
            else:
                with_ids, ints = with_ids + 1, ints + isinstance(row_id, int)

    for row in iter_rows(source, config.fields, on_error=scan.problems.append):
        pending.append(row)
        if len(pending) == _CHECK_ROWS:
            check(pending)
            pending = []
    check(pending)
    scan.problems.sort(key=lambda problem: problem.line)
    if with_ids and first_without is not None:
        raise fail(source, first_without, "no id, while other rows have one; give every row an id or none", "id")
    if with_ids:
        scan.ids = "int" if ints == with_ids else "string"
    return scan


def _unembeddable(rows: list[tuple], config: JobConfig, tokenizer: InstructionTokenizer, overheads: dict) -> dict:
    """``{position: (field, what is wrong)}`` for the rows that ``encode`` would refuse. Texts over the window
    are split in the chunk and mean modes, so there only the instruction must leave room for some text."""
    items = [_item(row, config) for row in rows]
    if config.long_text == "truncate":
        problems = tokenizer.problems(items)
    else:
        problems = tokenizer.problems(items, max_length=1 << 30)
        for position, item in enumerate(items):
            if item.instruction not in overheads:
                overheads[item.instruction] = instruction_overhead(tokenizer, item.instruction)
            if overheads[item.instruction] >= tokenizer.max_length - 2:
                why = f"the instruction leaves no room for text in the {tokenizer.max_length}-token window"
                problems.append((position, "instruction", why))
    found: dict[int, tuple[str, str]] = {}
    for position, param, why in problems:
        found.setdefault(position, (param, why))
    return found


def _identity(config: JobConfig, runner: _Runner, source: Path) -> dict:
    """What must not change between runs of one job, as data: the checkpoint's files, the settings that decide
    the vectors, and the input's bytes. Where the job runs (device, machine, paths) may change."""
    spec = config.spec
    return {
        "model": runner.fingerprint,
        "runtime": runner.runtime,
        "max_seq_length": runner.tokenizer.max_length,
        "instruction": config.instruction,
        "fields": asdict(config.fields),
        "normalize": config.normalize,
        "truncate_dim": spec.truncate_dim,
        "dimension": runner.dimension,
        "shard_rows": config.shard_rows,
        "long_text": config.long_text,
        "chunk_overlap": config.chunk_overlap if config.long_text != "truncate" else None,
        "input": _file_digest(source),
    }


def _open_output(folder: JobFolder, identity: dict, runner: _Runner, scan: _Scan, config: JobConfig) -> dict:
    """The manifest to continue (its recorded shards checked), or a new one in an empty folder."""
    if config.overwrite:
        folder.clear()
    if legacy.needs_migration(folder):
        manifest = legacy.migrate(folder, identity, runner.model)
        manifest["model"], manifest["source"] = config.spec.to_dict(), str(source_path(config))
        folder.write_manifest(manifest)
    if folder.holds_job():
        legacy.finish(folder)
        manifest = folder.read_manifest()
        _check_identity(folder, manifest, identity)
        shards = _checked_records(folder, manifest, config.shard_rows, scan.valid)
        manifest["shards"] = _verified_shards(folder, shards)
        folder.remove_unrecorded({shard["file"] for shard in manifest["shards"]})
        manifest |= {"model": config.spec.to_dict(), "source": str(source_path(config))}
        manifest |= {"rows": scan.valid, "invalid_rows": len(scan.problems), "ids": scan.ids}
        manifest["complete"] = bool(manifest["shards"]) and manifest["shards"][-1]["end"] == scan.valid
        return manifest
    folder.remove_unrecorded(set())
    manifest = {
        "format": FORMAT_VERSION,
        "identity": identity,
        "model": config.spec.to_dict(),  # how search loads the model again
        "source": str(source_path(config)),
        "rows": scan.valid,
        "invalid_rows": len(scan.problems),
        "ids": scan.ids,
        "shards": [],
        "complete": False,
    }
    folder.write_manifest(manifest)
    return manifest


def source_path(config: JobConfig) -> Path:
    return Path(config.input).resolve()


def _check_identity(folder: JobFolder, manifest: dict, identity: dict) -> None:
    if manifest.get("format") != FORMAT_VERSION:
        raise folder.damaged(f"{MANIFEST} has format {manifest.get('format')!r}, this release writes {FORMAT_VERSION}")
    recorded = manifest.get("identity")
    if not isinstance(recorded, dict):
        raise folder.damaged(f"{MANIFEST} has no identity")
    changed = _differences(recorded, identity)
    if changed:
        raise InputError(
            f"{folder.path} holds a job with other settings ({'; '.join(changed)}); pass --overwrite to start "
            "again, or choose another output folder",
            path=folder.path,
        )


def _differences(recorded: dict, current: dict, prefix: str = "") -> list[str]:
    """``"key: old -> new"`` for each setting that differs, naming the field inside nested settings."""
    changed = []
    for key in list(current) + [key for key in recorded if key not in current]:
        old, new = recorded.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            what = "the checkpoint's files differ" if prefix + key == "model" else f"{old!r} -> {new!r}"
            changed.append(f"{prefix}{key}: {what}")
    return changed


def _checked_records(folder: JobFolder, manifest: dict, shard_rows: int, rows: int) -> list[dict]:
    """The manifest's shard records, refused as damaged where they cannot be what a job wrote (a hand edit)."""
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise folder.damaged(f"{MANIFEST} has no list of shards")
    start = 0
    for number, shard in enumerate(shards):
        expected_end = min(start + shard_rows, rows)
        if (
            not isinstance(shard, dict)
            or shard.get("file") != shard_name(number)
            or not is_shard_name(shard.get("file"))
            or shard.get("start") != start
            or shard.get("end") != expected_end
            or not isinstance(shard.get("sha256"), str)
        ):
            raise folder.damaged(
                f"{MANIFEST}: shard record {number} ({json.dumps(shard)[:120]}) is not the one this job writes "
                f"({shard_name(number)}, rows {start}..{expected_end})"
            )
        start = expected_end
    return shards


def _verified_shards(folder: JobFolder, shards: list[dict]) -> list[dict]:
    """The recorded shards up to the first that is missing or whose bytes differ from the recorded digest."""
    good = []
    for shard in shards:
        path = folder.path / shard["file"]
        if not path.is_file() or _file_digest(path) != shard["sha256"]:
            break
        good.append(shard)
    return good


def _pending_shards(source: Path, config: JobConfig, scan: _Scan, committed: int):
    """``(first row index, rows)`` for each shard after the first ``committed`` valid rows."""
    rows: list[tuple] = []
    start, invalid = committed, scan.invalid_lines
    valid_rows = (row for row in iter_rows(source, config.fields, on_error=lambda _: None) if row[0] not in invalid)
    for index, row in enumerate(valid_rows):
        if index < committed:
            continue
        rows.append(row)
        if len(rows) == config.shard_rows:
            yield start, rows
            start, rows = start + len(rows), []
    if rows:
        yield start, rows


def _table(rows: list[tuple], vectors: np.ndarray, scan: _Scan, start: int, chunks: list[Chunk] | None = None):
    """The shard as a table: a row per input row, or per chunk (with its number and character span)."""
    pa = require("parquet", "pyarrow", "bulk embedding")
    owners = list(range(len(rows))) if chunks is None else [chunk.row for chunk in chunks]
    if scan.ids == "row_number":
        ids = pa.array([start + owner for owner in owners], pa.int64())
    elif scan.ids == "int":
        ids = pa.array([rows[owner][1] for owner in owners], pa.int64())
    else:
        ids = pa.array([str(rows[owner][1]) for owner in owners], pa.string())
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).reshape(-1)), vectors.shape[1])
    columns = {"id": ids, "embedding": embedding}
    if scan.row_instructions:
        columns["instruction"] = pa.array([rows[owner][2] for owner in owners], pa.string())
    if chunks is not None:
        columns |= {name: pa.array(values) for name, values in chunk_table_columns(chunks).items()}
    return pa.table(columns)


@contextmanager
def _writing(folder: JobFolder, manifest: dict, name: str) -> Iterator[None]:
    """A failed write (a full disk, a read-only folder) stops the job with what is kept and how to continue."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, InstructorEmbedError):
            raise
        kept = f"{_committed(manifest)} are committed and kept" if manifest else "nothing was committed yet"
        raise OutputError(
            f"{folder.path}: cannot write {name} ({exc.strerror or exc}); {kept}. Fix the cause (e.g. free disk "
            "space) and run the same command again to continue",
            path=folder.path,
        ) from exc


def _committed(manifest: dict) -> str:
    done = manifest["shards"][-1]["end"] if manifest["shards"] else 0
    return f"{len(manifest['shards'])} shards ({done} of {manifest['rows']} rows)"


def _interrupted(folder: JobFolder, manifest: dict) -> str:
    return f"interrupted: {_committed(manifest)} are committed in {folder.path}; run the same command again to continue"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _progress(config: JobConfig, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=initial, unit="row", desc="Embedding", disable=not config.show_progress, smoothing=0.1
    )
