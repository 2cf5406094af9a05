"""Hard negatives for (query, positive) rows, mined with the model itself: ``instructor-embed mine``.

Each query (with the query instruction) is compared with every corpus text (with the document instruction):
the corpus file's texts and every row's positive. A candidate is a corpus text other than the row's own positive
and query, ranked by cosine similarity; the candidates ranked ``range_min`` to ``range_max`` (0-based, after
those exclusions) that are not too close to the positive — similarity at most ``positive - absolute_margin``, at
most ``positive * (1 - relative_margin)`` and at most ``max_score`` — are likely true negatives; the most
similar ``num_negatives`` of them (``sampling="top"``) or a seeded sample (``"random"``) become the row's
``negatives``. The same rules as ``sentence_transformers.util.mine_hard_negatives`` and FlagEmbedding's
``hn_mine.py`` (whose ``range_for_sampling`` is ``range_min``-``range_max`` here).

Search is exact (every corpus vector, in blocks of queries) or, with ``faiss``, FAISS's exact inner-product
index; the vectors are unit length, so inner product is cosine similarity.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import durable
from ..dependencies import require
from ..errors import InputError
from .data import TaskSource, load_training_data, read_rows
from .formats import Sides

_QUERY_BLOCK = 256  # queries scored against the whole corpus at a time (exact search)


@dataclass(frozen=True)
class MiningRules:
    """Which candidates become negatives (see the module docstring)."""

    num_negatives: int = 5
    range_min: int = 0
    range_max: int = 50
    absolute_margin: float | None = None
    relative_margin: float | None = None
    max_score: float | None = None
    sampling: str = "top"
    seed: int = 0

    def check(self) -> None:
        if self.num_negatives < 1:
            raise InputError(f"num_negatives must be at least 1, got {self.num_negatives}", param="num_negatives")
        if not 0 <= self.range_min < self.range_max:
            raise InputError(
                f"the rank range must have 0 <= range_min < range_max, got {self.range_min}..{self.range_max}",
                param="range_min",
            )
        if self.range_max - self.range_min < self.num_negatives:
            raise InputError(
                f"ranks {self.range_min}..{self.range_max} hold fewer than num_negatives ({self.num_negatives}) "
                "candidates; widen the range",
                param="range_max",
            )
        if self.relative_margin is not None and not 0 <= self.relative_margin < 1:
            raise InputError(f"relative_margin must be in [0, 1), got {self.relative_margin}", param="relative_margin")
        if self.sampling not in ("top", "random"):
            raise InputError(f"sampling must be 'top' or 'random', got {self.sampling!r}", param="sampling")


@dataclass(frozen=True)
class MiningReport:
    """What a mining run found: rows written, negatives per row, and rows that got fewer than asked."""

    rows: int
    negatives: int
    short_rows: int
    corpus: int

    def summary(self) -> str:
        mean = self.negatives / self.rows if self.rows else 0.0
        short = f"; {self.short_rows} rows had fewer candidates that pass the rules" if self.short_rows else ""
        return f"{self.rows} rows, {mean:.2f} hard negatives per row from a corpus of {self.corpus} texts{short}"


def select_negatives(
    scores: np.ndarray, positive_score: float, excluded: set[int], rules: MiningRules, generator: random.Random
) -> list[int]:
    """The corpus positions of one query's negatives, from its similarities to the whole corpus (``scores``)
    or to the candidates searched (then ``scores`` holds -inf elsewhere)."""
    ceiling = math.inf
    if rules.absolute_margin is not None:
        ceiling = min(ceiling, positive_score - rules.absolute_margin)
    if rules.relative_margin is not None:
        ceiling = min(ceiling, positive_score * (1 - rules.relative_margin))
    if rules.max_score is not None:
        ceiling = min(ceiling, rules.max_score)
    depth = min(len(scores), rules.range_max + len(excluded))  # enough candidates once the exclusions are dropped
    best = np.argpartition(-scores, depth - 1)[:depth] if depth < len(scores) else np.arange(len(scores))
    order = best[np.argsort(-scores[best], kind="stable")]  # only the top of the corpus is sorted
    ranked = [int(position) for position in order if int(position) not in excluded and np.isfinite(scores[position])]
    window = [position for position in ranked[rules.range_min : rules.range_max] if scores[position] <= ceiling]
    if rules.sampling == "random":
        return sorted(generator.sample(window, min(rules.num_negatives, len(window))), key=lambda p: -scores[p])
    return window[: rules.num_negatives]


def mine_hard_negatives(
    model,
    data: str | Path,
    output: str | Path,
    *,
    corpus: str | Path | None = None,
    corpus_column: str = "text",
    columns: dict[str, str] | None = None,
    query_instruction: str = "",
    document_instruction: str = "",
    rules: MiningRules = MiningRules(),  # noqa: B008 (frozen: one shared default is safe)
    batch_size: int = 32,
    faiss: bool = False,
    show_progress: bool = False,
) -> MiningReport:
    """Write ``output`` (JSONL rows ``anchor``, ``positive``, ``negatives``, which ``train`` reads) for the
    ``pairs`` rows of ``data`` (negatives they already have are replaced), with negatives mined from ``corpus``
    and the rows' positives. A row's own ``query_instruction`` applies to its query."""
    rules.check()
    source = TaskSource(Path(data), format="pairs", columns=columns or {})
    examples = load_training_data([source], defaults=Sides(query_instruction, document_instruction)).examples
    texts = list(dict.fromkeys([*_corpus_texts(corpus, corpus_column), *(e.pos[1] for e in examples)]))
    position = {text: index for index, text in enumerate(texts)}
    encode = dict(batch_size=batch_size, show_progress_bar=show_progress, convert_to_numpy=True)
    documents = model.encode([[document_instruction, text] for text in texts], **encode).astype(np.float32)
    queries = [list(e.query) for e in examples]
    query_vectors = model.encode(queries, **encode).astype(np.float32)
    positives = np.stack([documents[position[e.pos[1]]] for e in examples])
    positive_scores = (query_vectors * positives).sum(axis=1)
    depth = min(len(texts), rules.range_max + 2)  # + the row's positive and its query, excluded from the ranks
    generator = random.Random(rules.seed)
    found, short = 0, 0
    lines = []
    for start, block in _blocks(query_vectors, documents, depth, faiss):
        for offset, scores in enumerate(block):
            example = examples[start + offset]
            excluded = {position[example.pos[1]]}
            if example.query[1] in position:
                excluded.add(position[example.query[1]])
            chosen = select_negatives(scores, float(positive_scores[start + offset]), excluded, rules, generator)
            found += len(chosen)
            short += len(chosen) < rules.num_negatives
            row = {"anchor": example.query[1], "positive": example.pos[1], "negatives": [texts[i] for i in chosen]}
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    durable.write_text(Path(output), "".join(lines))
    return MiningReport(len(examples), found, short, len(texts))


def _blocks(queries: np.ndarray, documents: np.ndarray, depth: int, use_faiss: bool):
    """(first query's index, similarities of a block of queries to the corpus: full rows, or -inf beyond the
    ``depth`` best when FAISS answers)."""
    if use_faiss:
        faiss = require("faiss", "faiss", "instructor-embed mine --faiss")
        index = faiss.IndexFlatIP(documents.shape[1])
        index.add(np.ascontiguousarray(documents))
        for start in range(0, len(queries), _QUERY_BLOCK):
            scores, ids = index.search(np.ascontiguousarray(queries[start : start + _QUERY_BLOCK]), depth)
            block = np.full((len(ids), len(documents)), -np.inf, dtype=np.float32)
            np.put_along_axis(block, np.maximum(ids, 0), np.where(ids >= 0, scores, -np.inf), axis=1)
            yield start, block
        return
    for start in range(0, len(queries), _QUERY_BLOCK):
        yield start, queries[start : start + _QUERY_BLOCK] @ documents.T


def _corpus_texts(corpus: str | Path | None, column: str) -> Sequence[str]:
    """The corpus file's texts (a .jsonl/.json/.csv/.tsv/.parquet column, or a .txt file's lines)."""
    if corpus is None:
        return []
    path = Path(corpus)
    if not path.is_file():
        raise InputError(f"{path}: no such corpus file", param="corpus")
    if path.suffix.lower() == ".txt":
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = []
    for where, row in read_rows(path):
        value = row.get(column) if isinstance(row, dict) else None
        if not isinstance(value, str):
            found = "no such key" if not isinstance(row, dict) or column not in row else type(value).__name__
            raise InputError(f"{where}: the corpus text column {column!r} must be a string ({found})", param="corpus")
        if value.strip():
            texts.append(value)
    if not texts:
        raise InputError(f"{path}: no texts in column {column!r}", param="corpus_column")
    return texts
