"""A resumable embedding job: input file (streamed) → Parquet shards + ``manifest.json`` in an output folder.

Two passes over the input, neither holding it in memory. The first checks every row before any model loads
(bad rows stop the job with their line numbers, or with ``skip_invalid`` are listed in ``invalid_rows.jsonl``).
The second embeds the valid rows in order, ``shard_rows`` at a time: each shard is written under a temporary
name, renamed into place, then recorded (with its SHA-256) in the manifest, which is itself replaced
atomically. Killed at any moment, the folder holds only complete shards that the manifest lists (a shard
renamed but not yet recorded is redone; a recorded shard whose bytes no longer match is redone from there).
Run again with the same settings, the job continues after the last recorded shard; shards always cover the
same rows, so the vectors equal an uninterrupted run's. Other settings against an existing output are
refused, naming what changed; ``overwrite`` starts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..dependencies import require
from ..encode import postprocess
from ..errors import InputError
from ..records import Fields, fail, iter_rows
from ..tokenization import Item
from .long_text import LONG_TEXT_MODES, Chunk, chunk_table_columns, mean_of_chunks, split_long

MANIFEST = "manifest.json"
INVALID_ROWS = "invalid_rows.jsonl"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class JobConfig:
    """What to embed, with which model and settings, and where to write it."""

    input: str | os.PathLike[str]
    output: str | os.PathLike[str]  # a folder: Parquet shards and manifest.json
    model: str | os.PathLike[str]  # Hub id or directory
    instruction: str | None = None  # for rows without their own
    fields: Fields = field(default_factory=Fields)
    batch_size: int = 32
    max_batch_tokens: int | None = None
    shard_rows: int = 10_000
    device: str | None = None
    dtype: str | None = None
    backend: str = "torch"
    quantize: str | None = None
    normalize: bool = False
    truncate_dim: int | None = None
    max_seq_length: int | None = None  # the model's window (default: the checkpoint's)
    long_text: str = "truncate"  # texts over the window: "truncate", "chunk" (a row per window) or "mean"
    chunk_overlap: int = 32  # tokens shared by consecutive windows
    skip_invalid: bool = False
    overwrite: bool = False
    show_progress: bool = True
    engine: str = "local"  # "local", or "ray": each shard's forward passes on a Ray actor pool (extra ray)
    ray_address: str | None = None  # a running cluster ("auto", "ray://head:10001"); None: a local instance
    num_workers: int = 1  # Ray actors, one model each
    gpus_per_worker: float = 0


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


@dataclass
class _Scan:
    """The first pass: how many rows are valid, their ids' kind, and the invalid ones."""

    valid: int = 0
    ids: str = "row_number"  # "row_number" (the file has none), "int" or "string"
    row_instructions: bool = False
    problems: list[InputError] = field(default_factory=list)


def embed_file(config: JobConfig) -> JobSummary:
    """Embed every valid row of ``config.input`` into ``config.output``, continuing a previous run if there is one."""
    started = time.perf_counter()
    pa, pq = require("parquet", "pyarrow", "bulk embedding"), require("parquet", "pyarrow.parquet", "bulk embedding")
    source, output = Path(config.input), Path(config.output)
    _check_config(config, output)
    scan = _scan(source, config.fields)
    if scan.problems and not config.skip_invalid:
        shown = "\n  ".join(str(problem) for problem in scan.problems[:20])
        more = f"\n  ... and {len(scan.problems) - 20} more" if len(scan.problems) > 20 else ""
        raise InvalidInputError(
            f"{source}: {len(scan.problems)} invalid rows (pass --skip-invalid to skip them and list them in "
            f"{INVALID_ROWS}); nothing was embedded:\n  {shown}{more}",
            scan.problems,
        )
    from ..model import INSTRUCTOR

    model = INSTRUCTOR(
        config.model,
        device=config.device,
        dtype=config.dtype,
        backend=config.backend,
        quantize=config.quantize,
        max_seq_length=config.max_seq_length,
    )
    ray_engine = None
    if config.engine == "ray":
        from .ray import ActorPoolEngine, start_ray

        start_ray(config)
        ray_engine = ActorPoolEngine(config)
    identity = _identity(config, model, source)
    manifest = _open_output(output, identity, scan, config.overwrite)
    if config.skip_invalid:
        _write_invalid_rows(output, scan.problems)
    committed = manifest["shards"][-1]["end"] if manifest["shards"] else 0
    embedded_now, tokens = 0, 0
    progress = _progress(config, scan.valid, committed)
    try:
        for start, rows in _pending_shards(source, config, committed):
            end = start + len(rows)
            vectors, count, chunks = _embed(model, rows, config, progress, ray_engine)
            name = f"part-{len(manifest['shards']):05d}.parquet"
            table = _table(pa, rows, vectors, scan, start, chunks)
            digest = _write_atomically(output / name, lambda path, table=table: pq.write_table(table, path))
            manifest["shards"].append({"file": name, "start": start, "end": end, "sha256": digest})
            manifest["complete"] = end == scan.valid
            _write_manifest(output, manifest)
            embedded_now, tokens = embedded_now + len(rows), tokens + count
            progress.set_postfix(
                tokens_per_s=f"{tokens / (time.perf_counter() - started):.0f}", shards=len(manifest["shards"])
            )
    finally:
        progress.close()
        if ray_engine is not None:
            ray_engine.close()
    if scan.valid == 0 or (manifest["shards"] and manifest["shards"][-1]["end"] == scan.valid):
        manifest["complete"] = True
        _write_manifest(output, manifest)
    return JobSummary(
        output,
        scan.valid,
        embedded_now,
        len(scan.problems),
        len(manifest["shards"]),
        time.perf_counter() - started,
        tokens,
    )


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


def _scan(source: Path, fields: Fields) -> _Scan:
    scan, with_ids, ints, first_without = _Scan(), 0, 0, None
    for line, row_id, instruction, _ in iter_rows(source, fields, on_error=scan.problems.append):
        scan.valid += 1
        scan.row_instructions |= instruction is not None
        if row_id is None:
            first_without = first_without or line
        else:
            with_ids, ints = with_ids + 1, ints + isinstance(row_id, int)
    if with_ids and first_without is not None:
        raise fail(source, first_without, "no id, while other rows have one; give every row an id or none", "id")
    if with_ids:
        scan.ids = "int" if ints == with_ids else "string"
    return scan


def _identity(config: JobConfig, model, source: Path) -> dict:
    """What must not change between runs of one job."""
    return {
        "model": {"name": os.fspath(config.model), "fingerprint": _model_fingerprint(model)},
        "runtime": model.transformer.runtime.describe(),
        "max_seq_length": model.max_seq_length,
        "instruction": config.instruction,
        "fields": asdict(config.fields),
        "normalize": config.normalize,
        "truncate_dim": config.truncate_dim,
        "dimension": min(model.get_sentence_embedding_dimension(), config.truncate_dim or 1 << 30),
        "shard_rows": config.shard_rows,
        "long_text": config.long_text,
        "chunk_overlap": config.chunk_overlap if config.long_text != "truncate" else None,
        "input": {"path": str(source.resolve()), "fingerprint": _file_digest(source)},
    }


def _open_output(output: Path, identity: dict, scan: _Scan, overwrite: bool) -> dict:
    """The manifest to continue (its recorded shards checked), or a new one in an empty folder."""
    manifest_path = output / MANIFEST
    if overwrite and output.exists():
        shutil.rmtree(output)
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        changed = [key for key in identity if manifest.get("identity", {}).get(key) != identity[key]]
        if changed:
            details = "; ".join(
                f"{key}: {manifest.get('identity', {}).get(key)!r} -> {identity[key]!r}" for key in changed
            )
            raise InputError(
                f"{output} holds a job with other settings ({details}); pass --overwrite to start again, "
                "or choose another output folder",
                path=output,
            )
        manifest["shards"] = _verified_shards(output, manifest["shards"])
        _remove_unrecorded(output, manifest["shards"])
        return manifest
    if output.exists() and any(output.iterdir()):
        raise InputError(
            f"{output} is not empty and holds no job; pass --overwrite or choose another folder", path=output
        )
    output.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT_VERSION,
        "identity": identity,
        "rows": scan.valid,
        "invalid_rows": len(scan.problems),
        "ids": scan.ids,
        "shards": [],
        "complete": False,
    }
    _write_manifest(output, manifest)
    return manifest


def _verified_shards(output: Path, shards: list[dict]) -> list[dict]:
    """The recorded shards up to the first that is missing or whose bytes differ from the recorded digest."""
    good = []
    for shard in shards:
        path = output / shard["file"]
        if not path.is_file() or _file_digest(path) != shard["sha256"]:
            break
        good.append(shard)
    return good


def _remove_unrecorded(output: Path, shards: list[dict]) -> None:
    """Shards renamed but never recorded, or recorded after a damaged one, and temporary files: redone."""
    keep = {shard["file"] for shard in shards} | {MANIFEST, INVALID_ROWS}
    for path in output.iterdir():
        if path.name not in keep:
            path.unlink()


def _pending_shards(source: Path, config: JobConfig, committed: int):
    """``(first row index, rows)`` for each shard after the first ``committed`` valid rows."""
    rows: list[tuple] = []
    start = committed
    for index, row in enumerate(iter_rows(source, config.fields, on_error=lambda _: None)):
        if index < committed:
            continue
        rows.append(row)
        if len(rows) == config.shard_rows:
            yield start, rows
            start, rows = start + len(rows), []
    if rows:
        yield start, rows


def _embed(
    model, rows: list[tuple], config: JobConfig, progress, ray_engine=None
) -> tuple[np.ndarray, int, list[Chunk] | None]:
    """The shard's vectors (one per row, or per chunk with ``long_text="chunk"``), its tokens, and its chunks;
    the forward passes run here, or on ``ray_engine``'s actors."""
    engine = model.engine
    items = [
        Item(instruction if instruction is not None else config.instruction, text) for _, _, instruction, text in rows
    ]
    chunks = None if config.long_text == "truncate" else split_long(items, engine.tokenizer, config.chunk_overlap)
    embedded = items if chunks is None else [chunk.item for chunk in chunks]
    tokenized = engine.tokenize(embedded)  # the token counts; and the batches, when this process embeds
    done = progress.update if chunks is None else None  # progress counts rows; chunks would overshoot
    if ray_engine is not None:
        vectors = ray_engine.embed(embedded, on_part=done)
    else:
        vectors = engine.run(
            tokenized, batch_size=config.batch_size, max_batch_tokens=config.max_batch_tokens, on_batch=done
        )
    if chunks is not None:
        progress.update(len(rows))
    if config.long_text == "mean":
        vectors, chunks = mean_of_chunks(chunks, vectors, len(rows)), None
    vectors = postprocess(vectors, truncate_dim=config.truncate_dim, normalize=config.normalize)
    return vectors.numpy(), sum(tokenized.token_counts), chunks


def _table(pa, rows: list[tuple], vectors: np.ndarray, scan: _Scan, start: int, chunks: list[Chunk] | None = None):
    """The shard as a table: a row per input row, or per chunk (with its number and character span)."""
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


def _write_atomically(path: Path, write) -> str:
    """Write via a temporary name in the same folder, flush it to disk, rename; returns the file's SHA-256."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    digest = _file_digest(temporary)
    os.replace(temporary, path)
    return digest


def _write_manifest(output: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2) + "\n"
    _write_atomically(output / MANIFEST, lambda path: path.write_text(text, encoding="utf-8"))


def _write_invalid_rows(output: Path, problems: list[InputError]) -> None:
    lines = "".join(json.dumps({"line": p.line, "field": p.param, "error": str(p)}) + "\n" for p in problems)
    _write_atomically(output / INVALID_ROWS, lambda path: path.write_text(lines, encoding="utf-8"))


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model_fingerprint(model) -> str:
    """A digest of the encoder's and head's weights (their values, so a retrained checkpoint at the same path
    differs); sampled from each tensor so that a 5 GB model takes a moment, not minutes."""
    import torch

    digest = hashlib.sha256(repr(model).split(":", 1)[-1].encode())
    for key, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // 4096)
        sample = flat[::step].to("cpu", torch.float32).numpy()
        digest.update(key.encode() + str(tuple(tensor.shape)).encode() + sample.tobytes())
    return digest.hexdigest()[:32]


def _progress(config: JobConfig, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=initial, unit="row", desc="Embedding", disable=not config.show_progress, smoothing=0.1
    )
