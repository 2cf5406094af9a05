"""``instructor-embed search``: exact top-k over the output folder of ``encode``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> None:
    search = commands.add_parser(
        "search",
        help="top-k search over the output folder of encode",
        description="Embed queries with an instruction and list the stored documents most similar to each (cosine; "
        "exact by default: every stored vector is compared, one shard at a time). With chunked output (encode "
        "--long-text chunk) each document is listed once, with its best chunk's span.",
    )
    search.add_argument("--index", required=True, type=Path, help="the output folder of encode (required)")
    search.add_argument("--query", action="append", default=[], help="a query (repeat for several)")
    search.add_argument("--query-file", type=Path, help="queries, one per line")
    search.add_argument(
        "--instruction",
        default=None,
        help="the queries' instruction (default: 'Represent the question for retrieving supporting documents: '; "
        "'' for none)",
    )
    search.add_argument("-k", type=int, default=10, help="results per query (default: 10)")
    search.add_argument(
        "--model",
        help="embed the queries with this copy of the job's model, e.g. moved to another folder (default: the model "
        "as the job ran it; a model with other weights is refused)",
    )
    search.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    search.add_argument("--show-text", type=Path, help="the input file the index was made from: print each hit's text")
    search.add_argument("--text-field", default="text", help="with --show-text: the texts' column or key")
    search.add_argument("--id-field", default="id", help="with --show-text: the ids' column or key")
    search.add_argument(
        "--faiss",
        action="store_true",
        help="approximate search with a FAISS HNSW index, built in the index folder on first use and reused while "
        "the job's shards stay the same (extra: faiss)",
    )
    search.add_argument("--json", action="store_true", help="print one JSON object per query")
    search.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    import json

    from ..bulk.search import search, texts_of
    from ..errors import InputError
    from ..instructions import RETRIEVAL
    from ..records import Fields, text_lines

    queries = list(args.query)
    if args.query_file:
        if not args.query_file.is_file():
            raise InputError(f"{args.query_file}: no such query file", path=args.query_file)
        queries += [line.strip() for line in text_lines(args.query_file) if line.strip()]
    model = None
    if args.model:
        from .options import model_spec

        model = model_spec(args).load()
    instruction = RETRIEVAL.query if args.instruction is None else (args.instruction or None)
    results = search(
        args.index, queries, k=args.k, instruction=instruction, model=model, device=args.device, faiss=args.faiss
    )
    texts = {}
    if args.show_text:
        wanted = {hit.id for hits in results for hit in hits}
        texts = texts_of(args.show_text, wanted, Fields(text=args.text_field, id=args.id_field))
    for query, hits in zip(queries, results, strict=True):
        if args.json:
            found = [{"id": h.id, "score": round(h.score, 6), **_span(h), **_text(h, texts)} for h in hits]
            print(json.dumps({"query": query, "hits": found}))
            continue
        print(f"query: {query}")
        for rank, hit in enumerate(hits, start=1):
            span = f" [chunk {hit.chunk_index}, chars {hit.char_start}-{hit.char_end}]" if _span(hit) else ""
            text = f"  {_text(hit, texts).get('text', '')[:100]}" if texts else ""
            print(f"  {rank:>3}. {hit.score:.4f}  {hit.id}{span}{text}")
    return 0


def _span(hit) -> dict:
    if hit.chunk_index is None:
        return {}
    return {"chunk_index": hit.chunk_index, "char_start": hit.char_start, "char_end": hit.char_end}


def _text(hit, texts: dict) -> dict:
    """The hit's text (its best chunk's span, for chunked output), when --show-text gave the input."""
    if not texts:
        return {}
    text = texts.get(hit.id)
    if text is not None and hit.chunk_index is not None:
        text = text[hit.char_start : hit.char_end]
    return {"text": text}
