"""Evaluation data from local files: tables (.csv, .tsv, .jsonl), reranking tables and BEIR retrieval folders.

Everything is read and checked before a model runs; each problem names the file and line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..records import TableReader, fail, iter_jsonl, text_lines

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")


def read_table(path: Path, columns: Sequence[str]) -> list[tuple[int, dict]]:
    """``(line number, row)`` for each row of a .csv/.tsv file (with a header row; .tsv without quoting) or a
    .jsonl file of objects; every row must have all of ``columns``."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path}: unsupported table type {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if suffix == ".jsonl":
        rows = list(iter_jsonl(text_lines(path), path))
    else:
        reader = TableReader(path)
        rows = list(reader)
        if reader.fieldnames is None:
            raise InputError(f"{path}: empty file; expected a header row with columns {', '.join(columns)}", path=path)
    if not rows:
        raise InputError(f"{path}: no rows", path=path)
    for line, row in rows:
        if not isinstance(row, dict):
            raise fail(path, line, f"expected an object with {', '.join(columns)}")
        missing = [column for column in columns if row.get(column) is None]
        if missing:
            raise fail(path, line, f"missing {', '.join(missing)} (has {', '.join(map(str, row))})", missing[0])
    return rows


def text_field(row: dict, column: str, path: Path, line: int) -> str:
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        raise fail(path, line, f"{column} must be a non-empty string, got {value!r}", column)
    return value


def number_field(row: dict, column: str, path: Path, line: int) -> float:
    value = row[column]
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise fail(path, line, f"{column} must be a number, got {value!r}", column) from None


def read_reranking(path: Path, names: dict[str, str]) -> dict:
    """A table of ``query``, ``positive``, ``negative`` rows (``names`` maps these to the file's columns) as mteb's
    reranking split data: each query ranks only its own candidates, its positives above its negatives. In .jsonl a
    positive or negative may be a list of texts; in .csv/.tsv each cell is one text. A text that is a candidate of
    several queries is embedded once."""
    from datasets import Dataset

    rows = read_table(path, [names[column] for column in ("query", "positive", "negative")])
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}  # text -> its document id
    relevant_docs: dict[str, dict[str, int]] = {}
    top_ranked: dict[str, list[str]] = {}
    for number, (line, row) in enumerate(rows):
        query_id = f"q{number}"
        queries[query_id] = text_field(row, names["query"], path, line)
        positives = _texts_field(row, names["positive"], path, line)
        negatives = _texts_field(row, names["negative"], path, line)
        both = set(positives) & set(negatives)
        if both:
            raise fail(path, line, f"{next(iter(both))!r} is both a positive and a negative", names["negative"])
        candidates = [corpus.setdefault(text, f"d{len(corpus)}") for text in dict.fromkeys(positives + negatives)]
        relevant_docs[query_id] = {corpus[text]: 1 for text in positives}
        top_ranked[query_id] = candidates
    return {
        "corpus": Dataset.from_dict({"id": list(corpus.values()), "title": [""] * len(corpus), "text": list(corpus)}),
        "queries": Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
        "relevant_docs": relevant_docs,
        "top_ranked": top_ranked,
    }


def _texts_field(row: dict, column: str, path: Path, line: int) -> list[str]:
    """One non-empty text, or (from .jsonl) a non-empty list of them."""
    value = row[column]
    if not isinstance(value, list):
        return [text_field(row, column, path, line)]
    if not value or not all(isinstance(text, str) and text.strip() for text in value):
        raise fail(path, line, f"{column} must be a text or a non-empty list of non-empty texts, got {value!r}", column)
    return value


def read_beir(folder: Path, split: str = "test") -> dict:
    """A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) as mteb's retrieval split data:
    ``corpus`` and ``queries`` datasets (``id``, ``text``, corpus ``title``), ``relevant_docs``
    ({query id: {document id: grade}}), ``top_ranked`` None. Queries without judgements are left out, as mteb does."""
    from datasets import Dataset

    if not folder.is_dir():
        raise InputError(f"{folder}: no such BEIR folder")
    corpus = _read_beir_texts(folder / "corpus.jsonl", with_title=True)
    queries = _read_beir_texts(folder / "queries.jsonl", with_title=False)
    relevant_docs = _read_qrels(folder / "qrels" / f"{split}.tsv", set(queries), set(corpus))
    judged = [query_id for query_id in queries if query_id in relevant_docs]
    return {
        "corpus": Dataset.from_dict(
            {
                "id": list(corpus),
                "title": [title for title, _ in corpus.values()],
                "text": [text for _, text in corpus.values()],
            }
        ),
        "queries": Dataset.from_dict({"id": judged, "text": [queries[query_id][1] for query_id in judged]}),
        "relevant_docs": relevant_docs,
        "top_ranked": None,
    }


def _read_beir_texts(path: Path, with_title: bool) -> dict[str, tuple[str, str]]:
    """{id: (title, text)} from a BEIR corpus or queries file."""
    texts: dict[str, tuple[str, str]] = {}
    for line, row in read_table(path, ("_id", "text")):
        row_id = str(row["_id"])
        if row_id in texts:
            raise fail(path, line, f"duplicate _id {row_id!r}")
        title = (row.get("title") or "") if with_title else ""
        if not isinstance(title, str):
            raise fail(path, line, f"title must be a string, got {title!r}")
        texts[row_id] = (title, text_field(row, "text", path, line))
    return texts


def _read_qrels(path: Path, query_ids: set[str], corpus_ids: set[str]) -> dict[str, dict[str, int]]:
    """{query id: {document id: grade}} from a BEIR qrels TSV (``query-id``, ``corpus-id``, ``score``; the
    header row is optional)."""
    if not path.is_file():
        raise InputError(f"{path}: no such qrels file")
    relevant: dict[str, dict[str, int]] = {}
    lines = "".join(text_lines(path)).split("\n")
    for line_number, line in enumerate(lines, start=1):
        fields = line.rstrip("\r").split("\t")
        if not line.strip() or (line_number == 1 and fields[:2] == ["query-id", "corpus-id"]):
            continue
        if len(fields) != 3:
            raise fail(path, line_number, "expected query-id, corpus-id, score separated by tabs")
        query_id, corpus_id, grade = fields
        if query_id not in query_ids:
            raise fail(path, line_number, f"query {query_id!r} is not in queries.jsonl")
        if corpus_id not in corpus_ids:
            raise fail(path, line_number, f"document {corpus_id!r} is not in corpus.jsonl")
        try:
            relevant.setdefault(query_id, {})[corpus_id] = int(grade)
        except ValueError:
            raise fail(path, line_number, f"score must be an integer, got {grade!r}") from None
    if not relevant:
        raise InputError(f"{path}: no relevance judgements")
    return relevant
