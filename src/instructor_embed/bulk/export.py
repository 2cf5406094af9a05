"""A finished bulk job's vectors into a vector database: ``instructor-embed export --index DIR --to lancedb://...``.

The shards stream into the table one at a time (never the whole job in memory), with columns ``id``, ``vector``
(the job's embeddings) and, when present, ``instruction`` and the chunk columns; given the job's input, also
``text`` (for chunked output, each chunk's own span). Once the table holds ``ann_min_rows`` rows or more, an ANN
index (LanceDB's IVF-PQ, cosine) is built; a smaller table is searched exactly, which is as fast there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..dependencies import require
from ..errors import InputError
from ..records import Fields, iter_rows
from .folder import INVALID_ROWS, JobFolder
from .search import complete_manifest

ANN_MIN_ROWS = 10_000  # below this LanceDB's exact search is as fast as an index, and IVF-PQ trains poorly


@dataclass(frozen=True)
class ExportSummary:
    table: str
    rows: int
    indexed: bool  # an ANN index was built


def parse_lancedb_target(target: str) -> tuple[str, str]:
    """``lancedb://PATH/TABLE`` → (database path, table name)."""
    if not target.startswith("lancedb://"):
        raise InputError(f"--to {target!r}: expected lancedb://PATH/TABLE", param="to")
    database, _, table = target.removeprefix("lancedb://").rstrip("/").rpartition("/")
    if not database or not table:
        raise InputError(f"--to {target!r}: expected lancedb://PATH/TABLE (a database folder and a table)", param="to")
    return database, table


def export_to_lancedb(
    index: str | Path,
    database: str | Path,
    table: str,
    *,
    source: str | Path | None = None,
    overwrite: bool = False,
    ann_min_rows: int = ANN_MIN_ROWS,
) -> ExportSummary:
    """Stream the job in ``index`` into LanceDB table ``table`` of ``database`` (see the module docstring);
    an existing table is refused unless ``overwrite``."""
    lancedb = require("lancedb", "lancedb", "export to LanceDB")
    pa = require("parquet", "pyarrow", "export")
    parquet = require("parquet", "pyarrow.parquet", "export")
    folder = JobFolder(index)
    manifest = complete_manifest(folder.path)
    texts = _texts(folder, manifest, Path(source)) if source is not None else None
    db = lancedb.connect(str(database))
    created, rows = None, 0
    for shard in manifest["shards"]:
        data = parquet.read_table(folder.path / shard["file"]).rename_columns(
            {"embedding": "vector"}  # LanceDB's default vector column
        )
        if texts is not None:
            data = data.append_column("text", pa.array(_shard_texts(data, texts), pa.string()))
        if created is None:
            try:
                created = db.create_table(table, data=data, mode="overwrite" if overwrite else "create")
            except ValueError as exc:  # LanceDB's "Table 'docs' already exists"
                raise InputError(f"{database}: {exc}; pass --overwrite to replace it", param="to") from exc
        else:
            created.add(data)
        rows += data.num_rows
    if created is None:
        raise InputError(f"{folder.path}: the job stored no vectors to export", path=folder.path)
    indexed = rows >= ann_min_rows
    if indexed:
        created.create_index(metric="cosine", vector_column_name="vector")
    return ExportSummary(table, rows, indexed)


def _texts(folder: JobFolder, manifest: dict, source: Path) -> Iterator[tuple[object, str]]:
    """``(id, text)`` of the job's rows, in the job's order, read again from its input (checked unchanged)."""
    from .job import _file_digest

    if not source.is_file() or _file_digest(source) != manifest["identity"]["input"]:
        raise InputError(f"{source} is not the input {folder.path} was embedded from (its bytes differ)", path=source)
    invalid_path = folder.path / INVALID_ROWS
    invalid = set()
    if invalid_path.is_file():
        invalid = {json.loads(line)["line"] for line in invalid_path.read_text(encoding="utf-8").splitlines() if line}
    fields = Fields(**manifest["identity"]["fields"])
    number = 0
    for line, row_id, _, text in iter_rows(source, fields, on_error=lambda _: None):
        if line in invalid:
            continue
        key = number if manifest["ids"] == "row_number" else (str(row_id) if manifest["ids"] == "string" else row_id)
        yield key, text
        number += 1


def _shard_texts(data, texts: Iterator[tuple[object, str]]) -> list[str]:
    """Each stored row's text: its input row's, or (chunked output) its chunk's span of it; a chunked row's first
    window (chunk 0) starts the next input row."""
    names = data.column_names
    ids = data.column("id").to_pylist()
    chunks = data.column("chunk_index").to_pylist() if "chunk_index" in names else None
    spans = (
        list(zip(data.column("char_start").to_pylist(), data.column("char_end").to_pylist(), strict=True))
        if chunks
        else None
    )
    found, text = [], ""
    for position, row_id in enumerate(ids):
        if chunks is None or chunks[position] == 0:
            key, text = next(texts, (None, ""))
            if key != row_id:
                raise InputError(
                    f"the input's rows do not line up with the job's: id {key!r} where the job has {row_id!r}"
                )
        found.append(text if spans is None else text[spans[position][0] : spans[position][1]])
    return found
