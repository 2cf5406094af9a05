"""Exact top-k search over a bulk job's output: the queries against every stored vector, one shard at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dependencies import require
from ..errors import InputError
from ..instructions import RETRIEVAL
from ..records import DEFAULT_FIELDS, Fields, iter_rows
from .job import MANIFEST


@dataclass(frozen=True)
class Hit:
    """One result: the stored row's id and its cosine similarity to the query."""

    id: str | int
    score: float


def search(
    index: str | Path,
    queries: list[str],
    *,
    k: int = 10,
    instruction: str | None = RETRIEVAL.query,
    model=None,
    device: str | None = None,
) -> list[list[Hit]]:
    """The ``k`` stored rows most similar (cosine) to each query, best first. Queries are embedded with
    ``instruction`` (default: the authors' retrieval query instruction) by ``model``, default the job's own
    model as its manifest names it. Memory holds one shard at a time."""
    index = Path(index)
    manifest = _manifest(index)
    if k < 1:
        raise InputError("k must be at least 1", param="k")
    if not queries:
        raise InputError("give at least one query", param="query")
    if model is None:
        from ..model import INSTRUCTOR

        model = INSTRUCTOR(manifest["identity"]["model"]["name"], device=device)
    items = [[instruction, query] for query in queries] if instruction else list(queries)
    vectors = model.encode(items, truncate_dim=manifest["identity"]["truncate_dim"])
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    parquet = require("parquet", "pyarrow.parquet", "search")
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids: list[list] = [[] for _ in queries]
    for shard in manifest["shards"]:
        table = parquet.read_table(index / shard["file"], columns=["id", "embedding"])
        ids = table.column("id").to_pylist()
        stored = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
        if stored.shape[1] != vectors.shape[1]:
            raise InputError(f"{index}: stored vectors have {stored.shape[1]} dimensions, queries {vectors.shape[1]}")
        stored = stored / np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
        scores = np.concatenate([best_scores, vectors @ stored.T], axis=1)  # (queries, kept + shard rows)
        keep = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_ids = [[(best + ids)[j] for j in row] for best, row in zip(best_ids, keep, strict=True)]
        best_scores = np.take_along_axis(scores, keep, axis=1)
    return [
        [Hit(hit_id, float(score)) for hit_id, score in zip(ids, scores, strict=True)]
        for ids, scores in zip(best_ids, best_scores, strict=True)
    ]


def texts_of(source: str | Path, ids: set, fields: Fields = DEFAULT_FIELDS) -> dict:
    """The texts of the rows with these ids (file ids, or row numbers where the file has none), streaming."""
    found = {}
    for number, (_, row_id, _, text) in enumerate(iter_rows(Path(source), fields, on_error=lambda _: None)):
        key = row_id if row_id is not None else number
        if key in ids or str(key) in ids:
            found[key if key in ids else str(key)] = text
    return found


def _manifest(index: Path) -> dict:
    path = index / MANIFEST
    if not path.is_file():
        raise InputError(f"{index}: no {MANIFEST}; --index is the output folder of instructor-embed encode", path=index)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not manifest.get("complete"):
        done = manifest["shards"][-1]["end"] if manifest["shards"] else 0
        raise InputError(
            f"{index}: the job is not complete ({done} of {manifest['rows']} rows); run the same encode command again",
            path=index,
        )
    return manifest
