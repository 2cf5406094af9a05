"""``instructor-embed export``: a finished bulk job's vectors into a vector database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        help="stream a bulk job's vectors into a vector database",
        description="Stream the shards of a finished encode job (its output folder) into a LanceDB table: columns "
        "id, vector, instruction and chunk columns when present, and text when --input names the job's input. "
        "An ANN index (IVF-PQ, cosine) is built once the table holds --ann-min-rows rows. Needs the lancedb extra.",
    )
    export.add_argument("--index", required=True, type=Path, help="the output folder of encode (required)")
    export.add_argument("--to", required=True, help="lancedb://PATH/TABLE: the database folder and table (required)")
    export.add_argument("--input", type=Path, help="the job's input file: store each row's text too")
    export.add_argument("--overwrite", action="store_true", help="replace the table if it exists")
    export.add_argument(
        "--ann-min-rows", type=int, default=10_000, help="build an ANN index from this many rows (default: 10000)"
    )
    export.add_argument("--quiet", action="store_true", help="no summary")


def run(args: argparse.Namespace) -> int:
    from ..bulk.export import export_to_lancedb, parse_lancedb_target

    database, table = parse_lancedb_target(args.to)
    summary = export_to_lancedb(
        args.index, database, table, source=args.input, overwrite=args.overwrite, ann_min_rows=args.ann_min_rows
    )
    if not args.quiet:
        index = "with an ANN index" if summary.indexed else "without an index (exact search)"
        print(f"{database}: table {table!r}, {summary.rows} rows, {index}", file=sys.stderr)
    return 0
