"""Top-k search over a bulk job's output: exact (every stored vector, one shard at a time) or FAISS HNSW."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import durable
from ..checkpoint import fingerprint
from ..dependencies import require
from ..errors import InputError
from ..instructions import RETRIEVAL
from ..records import DEFAULT_FIELDS, Fields, iter_rows
from ..spec import ModelSpec
from .folder import FAISS, MANIFEST, JobFolder
from .legacy import LEGACY_MANIFEST


@dataclass(frozen=True)
class Hit:
    """One result: the stored row's id and its cosine similarity to the query; for chunked output, the best
    chunk of the document (its index and character span in the text)."""

    id: str | int
    score: float
    chunk_index: int | None = None
    char_start: int | None = None
    char_end: int | None = None


def search(
    index: str | Path,
    queries: list[str],
    *,
    k: int = 10,
    instruction: str | None = RETRIEVAL.query,
    model=None,
    device: str | None = None,
    faiss: bool = False,
) -> list[list[Hit]]:
    """The ``k`` stored documents most similar (cosine) to each query, best first, one hit per document (its best
    chunk, for chunked output). Queries are embedded with ``instruction`` (default: the authors' retrieval query
    instruction) by ``model``, default the job's own model loaded as the job ran it (its recorded
    :class:`~instructor_embed.spec.ModelSpec`; ``device`` may differ). A model whose checkpoint files differ from
    the job's (its recorded fingerprint) is refused: its vectors could not be compared with the stored ones.

    Exact by default, one shard in memory at a time. ``faiss=True`` (extra ``faiss``) builds an approximate
    HNSW index in the folder on first use (``_faiss/``) and reuses it while the job's shards stay the same.
    """
    index = Path(index)
    manifest = complete_manifest(index)
    if k < 1:
        raise InputError("k must be at least 1", param="k")
    if not queries:
        raise InputError("give at least one query", param="query")
    if model is None:
        recorded = ModelSpec.from_dict(manifest["model"])
        model = recorded.replace(device=device).load() if device else recorded.load()
    _check_model(index, manifest, model)
    items = [[instruction, query] for query in queries] if instruction else list(queries)
    vectors = _unit(model.encode(items, truncate_dim=manifest["identity"]["truncate_dim"]).astype(np.float32))
    if faiss:
        return _search_faiss(index, manifest, vectors, k)
    best: list[list[Hit]] = [[] for _ in queries]
    for shard in manifest["shards"]:
        rows, stored = _read_shard(index, shard, vectors.shape[1])
        for number, scores in enumerate(vectors @ stored.T):
            order = np.argsort(-scores, kind="stable")
            best[number] = _top_documents(best[number] + _hits(rows, order, scores[order], k), k)
    return best


def _check_model(index: Path, manifest: dict, model) -> None:
    directory = getattr(model, "checkpoint_dir", None)
    if directory is not None and fingerprint(directory) != manifest["identity"]["model"]:
        raise InputError(
            f"{index} was embedded with another model than {model.model_name_or_path!r} (the checkpoint's files "
            f"differ from the job's, {manifest['model']['model']!r}); queries must be embedded by the job's model",
            param="model",
        )


def _hits(rows: dict[str, list], positions, scores, k: int) -> list[Hit]:
    """Hits for rows at ``positions`` (best first), stopping at ``k`` distinct documents."""
    hits, seen = [], set()
    chunked = "chunk_index" in rows
    for position, score in zip(positions, scores, strict=False):
        row_id = rows["id"][position]
        if row_id in seen:
            continue  # a worse chunk of a document already listed
        seen.add(row_id)
        span = [rows[name][position] for name in ("chunk_index", "char_start", "char_end")] if chunked else []
        hits.append(Hit(row_id, float(score), *span))
        if len(hits) == k:
            break
    return hits


def _top_documents(hits: list[Hit], k: int) -> list[Hit]:
    """The ``k`` best hits, one per document (its best), best first; ties keep their order."""
    best, seen = [], set()
    for hit in sorted(hits, key=lambda hit: -hit.score):
        if hit.id not in seen:
            seen.add(hit.id)
            best.append(hit)
    return best[:k]


ROW_COLUMNS = ("id", "chunk_index", "char_start", "char_end")


def _read_shard(index: Path, shard: dict, dimensions: int | None = None) -> tuple[dict[str, list], np.ndarray]:
    """A shard's id (and chunk) columns and its unit-length vectors."""
    parquet = require("parquet", "pyarrow.parquet", "search")
    path = index / shard["file"]
    present = parquet.ParquetFile(path).schema_arrow.names
    table = parquet.read_table(path, columns=[name for name in (*ROW_COLUMNS, "embedding") if name in present])
    rows = {name: table.column(name).to_pylist() for name in ROW_COLUMNS if name in present}
    stored = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)
    if dimensions is not None and stored.shape[1] != dimensions:
        raise InputError(f"{index}: stored vectors have {stored.shape[1]} dimensions, queries {dimensions}")
    return rows, _unit(stored.astype(np.float32))


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


FAISS_INDEX, FAISS_INFO = f"{FAISS}/index.faiss", f"{FAISS}/info.json"
HNSW_NEIGHBOURS, HNSW_BUILD_DEPTH = 32, 80  # faiss's M and efConstruction


def _search_faiss(index: Path, manifest: dict, vectors: np.ndarray, k: int) -> list[list[Hit]]:
    faiss = require("faiss", "faiss", "search --faiss")
    ann = _faiss_index(faiss, index, manifest)
    chunked = bool(manifest["identity"].get("long_text") == "chunk")
    wanted = min(ann.ntotal, k * 8 if chunked else k)  # room for several chunks of one document
    ann.hnsw.efSearch = max(128, 2 * wanted)
    scores, positions = ann.search(vectors, wanted)
    starts = [shard["row_offset"] for shard in _row_offsets(index, manifest)]
    columns: dict[int, dict[str, list]] = {}  # shard number -> its id (and chunk) columns, read when a hit needs it
    results = []
    for row_scores, row_positions in zip(scores, positions, strict=True):
        rows: dict[str, list] = {}
        for position in row_positions[row_positions >= 0]:
            shard = int(np.searchsorted(starts, position, side="right")) - 1
            if shard not in columns:
                columns[shard] = _read_shard(index, manifest["shards"][shard])[0]
            for name, values in columns[shard].items():
                rows.setdefault(name, []).append(values[position - starts[shard]])
        found = row_scores[row_positions >= 0]
        results.append(_hits(rows, range(len(found)), found, k))
    return results


def _faiss_index(faiss, index: Path, manifest: dict):
    """The folder's HNSW index (inner product on unit vectors), built from the shards unless it matches them."""
    shards = [shard["sha256"] for shard in manifest["shards"]]
    info = {"shards": shards, "type": "HNSWFlat", "M": HNSW_NEIGHBOURS, "efConstruction": HNSW_BUILD_DEPTH}
    info_path = index / FAISS_INFO
    if (index / FAISS_INDEX).is_file() and info_path.is_file() and json.loads(info_path.read_text()) == info:
        return faiss.read_index(str(index / FAISS_INDEX))
    ann = None
    for shard in manifest["shards"]:
        _, stored = _read_shard(index, shard)
        if ann is None:
            ann = faiss.IndexHNSWFlat(stored.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
            ann.hnsw.efConstruction = HNSW_BUILD_DEPTH
        ann.add(np.ascontiguousarray(stored))
    if ann is None:
        raise InputError(f"{index}: the job stored no vectors to index", path=index)
    (index / FAISS).mkdir(exist_ok=True)
    durable.write_file(index / FAISS_INDEX, lambda partial: faiss.write_index(ann, str(partial)), fault="faiss")
    durable.write_text(info_path, json.dumps(info) + "\n", fault="faiss")
    return ann


def _row_offsets(index: Path, manifest: dict) -> list[dict]:
    """Each shard with the position of its first stored row among all stored rows (chunks count as rows)."""
    parquet = require("parquet", "pyarrow.parquet", "search")
    offset, shards = 0, []
    for shard in manifest["shards"]:
        shards.append({**shard, "row_offset": offset})
        offset += parquet.ParquetFile(index / shard["file"]).metadata.num_rows
    return shards


def texts_of(source: str | Path, ids: set, fields: Fields = DEFAULT_FIELDS) -> dict:
    """The texts of the rows with these ids (file ids, or row numbers where the file has none), streaming."""
    found = {}
    for number, (_, row_id, _, text) in enumerate(iter_rows(Path(source), fields, on_error=lambda _: None)):
        key = row_id if row_id is not None else number
        if key in ids or str(key) in ids:
            found[key if key in ids else str(key)] = text
    return found


def complete_manifest(index: Path) -> dict:
    """The manifest of a finished job in ``index``, or an error saying what to run."""
    folder = JobFolder(index)
    if not folder.holds_job():
        if (index / LEGACY_MANIFEST).is_file():
            raise InputError(
                f"{index} was written by instructor-embed 0.1: run the encode command that made it once more, "
                "which brings the folder up to date, then search",
                path=index,
            )
        raise InputError(f"{index}: no {MANIFEST}; --index is the output folder of instructor-embed encode", path=index)
    manifest = folder.read_manifest()
    if not manifest.get("complete"):
        done = manifest["shards"][-1]["end"] if manifest["shards"] else 0
        raise InputError(
            f"{index}: the job is not complete ({done} of {manifest['rows']} rows); run the same encode command again",
            path=index,
        )
    return manifest
