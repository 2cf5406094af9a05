"""``instructor-embed mine``: hard negatives for (query, positive) rows, with the model itself."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import add_model_options


def add_parser(commands) -> None:
    mine = commands.add_parser(
        "mine",
        help="mine hard negatives for (anchor, positive) rows; writes rows train reads",
        description="Embed each row's anchor (with --query-instruction) and every corpus text (--corpus, plus every "
        "row's positive; with --document-instruction), rank the corpus for each anchor, and keep as negatives the "
        "best --num-negatives of ranks --range-min..--range-max that are not too close to the positive "
        "(--absolute-margin, --relative-margin, --max-score: likely false negatives are skipped). Writes JSONL "
        "rows anchor, positive, negatives.",
    )
    mine.add_argument("--model", required=True, help="Hub id or local directory (required)")
    mine.add_argument("--data", required=True, type=Path, help="anchor/positive rows (.jsonl/.csv/...) (required)")
    mine.add_argument("--output", required=True, type=Path, help="the mined rows, JSONL (required)")
    mine.add_argument("--corpus", type=Path, help="more candidate texts: .txt lines, or a column of a table/JSONL")
    mine.add_argument("--corpus-column", default="text", help="the corpus texts' column or key (default: text)")
    mine.add_argument("--columns", help="FORMAT_COLUMN=FILE_COLUMN,...: e.g. anchor=question,positive=answer")
    mine.add_argument("--query-instruction", default="", help="the anchors' instruction (default: none)")
    mine.add_argument("--document-instruction", default="", help="the corpus texts' instruction (default: none)")
    mine.add_argument("--num-negatives", type=int, default=5, help="negatives per row (default: 5)")
    mine.add_argument("--range-min", type=int, default=0, help="skip this many best candidates (default: 0)")
    mine.add_argument("--range-max", type=int, default=50, help="consider candidates ranked below this (default: 50)")
    mine.add_argument("--absolute-margin", type=float, help="a negative's similarity <= the positive's minus this")
    mine.add_argument(
        "--relative-margin", type=float, help="a negative's similarity <= the positive's times (1 - this)"
    )
    mine.add_argument("--max-score", type=float, help="a negative's similarity <= this")
    mine.add_argument("--sampling", choices=["top", "random"], default="top", help="the best, or a seeded sample")
    mine.add_argument("--seed", type=int, default=0, help="of --sampling random (default: 0)")
    mine.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    mine.add_argument(
        "--faiss", action="store_true", help="search with FAISS's exact inner-product index (extra: faiss)"
    )
    mine.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    add_model_options(mine)
    mine.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..training.data import parse_columns
    from ..training.mining import MiningRules, mine_hard_negatives
    from .options import model_spec

    rules = MiningRules(
        num_negatives=args.num_negatives,
        range_min=args.range_min,
        range_max=args.range_max,
        absolute_margin=args.absolute_margin,
        relative_margin=args.relative_margin,
        max_score=args.max_score,
        sampling=args.sampling,
        seed=args.seed,
    )
    rules.check()  # before the model loads
    if args.output.suffix.lower() != ".jsonl":
        raise InputError(f"{args.output}: the mined rows are JSONL; name the file *.jsonl", param="output")
    if args.output.exists() and not args.overwrite:
        raise InputError(f"{args.output} exists; pass --overwrite to replace it", param="output")
    if not args.output.parent.is_dir():
        raise InputError(f"{args.output}: the folder {args.output.parent} does not exist", param="output")
    report = mine_hard_negatives(
        model_spec(args).load(),
        args.data,
        args.output,
        corpus=args.corpus,
        corpus_column=args.corpus_column,
        columns=parse_columns(args.columns),
        query_instruction=args.query_instruction,
        document_instruction=args.document_instruction,
        rules=rules,
        batch_size=args.batch_size,
        faiss=args.faiss,
        show_progress=not args.quiet,
    )
    print(f"{report.summary()}; written to {args.output}", file=sys.stderr)
    return 0
