"""``instructor-embed encode``: a file of texts to .npy/.parquet, or to a resumable folder of shards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import add_model_options, model_spec

EPILOG = """\
examples:
  instructor-embed encode --model hkunlp/instructor-large --input titles.txt --output titles.npy \\
      --instruction "Represent the Science title:"
  instructor-embed encode --model ./my-model --input docs.jsonl --output docs.parquet --batch-size 64
  instructor-embed encode --model hkunlp/instructor-large --input corpus.parquet --output corpus-vectors/ \\
      --instruction "Represent the document for retrieval: "      # resumable: run it again after a crash

input files (UTF-8; a byte-order mark is ignored; column/key names: --text-field, --id-field, --instruction-field):
  .txt      one text per line (every line is a row, blank lines too)
  .jsonl    one JSON object per line: {"text": ..., "id": ... (optional), "instruction": ... (optional)}
  .csv      a header row with a 'text' column, optional 'id' and 'instruction' columns
  .tsv      the same, tab-separated, without quoting
  .parquet  the same columns

outputs:
  .npy      an (n, dim) float32 matrix, rows in input order
  .parquet  columns 'id' (the input's id, or the row number) and 'embedding' (needs pyarrow)
  FOLDER/   a resumable job: Parquet shards part-NNNNN.parquet (id, embedding, instruction when rows have their
            own) and _manifest.json, a folder that pyarrow, pandas, polars, DuckDB, Ray and Spark read as a
            dataset; the input is streamed, each shard committed durably; the same command continues after a
            crash or Ctrl-C; other settings against an existing folder are refused (--overwrite starts again);
            files of yours in the folder are never touched, and a second job on the same folder stops at once

A row's own instruction wins over --instruction; rows with neither are embedded without one.
"""


def add_parser(commands) -> None:
    encode = commands.add_parser(
        "encode",
        help="embed the texts of a file",
        description="Embed every text of an input file, each with its instruction, and write the vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    encode.add_argument("--model", required=True, help="Hugging Face Hub id or local model directory (required)")
    encode.add_argument(
        "--input", required=True, type=Path, help="texts to embed: .txt, .jsonl, .csv, .tsv or .parquet (required)"
    )
    encode.add_argument(
        "--output",
        required=True,
        type=Path,
        help="a .npy or .parquet file (small jobs), or a folder: a resumable job writing Parquet shards (required)",
    )
    encode.add_argument("--instruction", help='instruction for rows without their own, e.g. "Represent the sentence:"')
    encode.add_argument("--text-field", default="text", help="the texts' column or key (default: text)")
    encode.add_argument("--id-field", default="id", help="the ids' column or key (default: id)")
    encode.add_argument(
        "--instruction-field", default="instruction", help="per-row instructions (default: instruction)"
    )
    encode.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    encode.add_argument(
        "--max-batch-tokens", type=int, help="tokens per forward pass, padding included (default: no cap)"
    )
    add_model_options(encode)
    encode.add_argument("--normalize", action="store_true", help="scale vectors to unit length")
    encode.add_argument("--truncate-dim", type=int, help="keep the first N dimensions")
    encode.add_argument("--max-seq-length", type=int, help="the model's window in tokens (default: the checkpoint's)")
    encode.add_argument(
        "--long-text",
        choices=["truncate", "chunk", "mean"],
        default="truncate",
        help="folder output: texts over the window are cut (truncate), split into overlapping windows with a row "
        "each (chunk: chunk_index, char_start, char_end columns), or embedded as the token-weighted mean of their "
        "windows (mean) (default: truncate)",
    )
    encode.add_argument(
        "--chunk-overlap", type=int, default=32, help="tokens shared by consecutive windows (default: 32)"
    )
    encode.add_argument(
        "--skip-invalid", action="store_true", help="folder output: skip bad rows, listed in _invalid_rows.jsonl"
    )
    encode.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="folder output: embed in this process, or on a Ray actor pool (extra ray) (default: local)",
    )
    encode.add_argument("--ray-address", help="--engine ray: a running cluster, e.g. auto (default: a local instance)")
    encode.add_argument("--num-workers", type=int, default=1, help="--engine ray: actors, one model each (default: 1)")
    encode.add_argument("--gpus-per-worker", type=float, default=0, help="--engine ray: GPUs per actor (default: 0)")
    encode.add_argument("--shard-rows", type=int, default=10_000, help="folder output: rows per shard (default: 10000)")
    encode.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the output if it exists (a folder: remove the job's own files and start again)",
    )
    encode.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..records import Fields

    fields = Fields(args.text_field, args.id_field, args.instruction_field)
    if args.output.suffix == "" or args.output.is_dir():
        return _encode_folder(args, fields)
    if args.long_text != "truncate" or args.skip_invalid or args.engine != "local":
        from ..errors import InputError

        option = "--skip-invalid" if args.skip_invalid else f"--long-text {args.long_text}"
        option = f"--engine {args.engine}" if args.engine != "local" else option
        raise InputError(f"{option} needs a folder as --output (a resumable job), not {args.output}", param="output")
    from tqdm.auto import tqdm

    from ..errors import InputError
    from ..records import check_output_path, read_records, write_embeddings
    from ..tokenization import Item

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}", param="batch_size")
    check_output_path(args.output, args.overwrite)
    records = read_records(args.input, args.instruction, fields)  # every line checked before the model loads
    model = model_spec(args).load()
    engine = model.engine
    tokenized = engine.tokenize([Item(record.instruction, record.text) for record in records])
    with tqdm(total=len(records), unit="text", disable=args.quiet, desc="Embedding") as progress:
        embeddings = engine.run(
            tokenized, batch_size=args.batch_size, max_batch_tokens=args.max_batch_tokens, on_batch=progress.update
        )
    embeddings = _postprocess(embeddings, args)
    write_embeddings(args.output, [r.id for r in records], embeddings)
    if not args.quiet:
        print(f"wrote {len(records)} embeddings of {embeddings.shape[1]} dims to {args.output}", file=sys.stderr)
    return 0


def _postprocess(embeddings, args: argparse.Namespace):
    from ..encode import postprocess

    return postprocess(embeddings, truncate_dim=args.truncate_dim, normalize=args.normalize).numpy()


def _encode_folder(args: argparse.Namespace, fields) -> int:
    from ..bulk import JobConfig, embed_file

    summary = embed_file(
        JobConfig(
            input=args.input,
            output=args.output,
            model=model_spec(args),
            instruction=args.instruction,
            fields=fields,
            batch_size=args.batch_size,
            max_batch_tokens=args.max_batch_tokens,
            shard_rows=args.shard_rows,
            normalize=args.normalize,
            long_text=args.long_text,
            chunk_overlap=args.chunk_overlap,
            skip_invalid=args.skip_invalid,
            overwrite=args.overwrite,
            show_progress=not args.quiet,
            engine=args.engine,
            ray_address=args.ray_address,
            num_workers=args.num_workers,
            gpus_per_worker=args.gpus_per_worker,
        )
    )
    if not args.quiet:
        skipped = f", {summary.invalid_rows} invalid rows skipped (_invalid_rows.jsonl)" if summary.invalid_rows else ""
        print(
            f"{summary.output}: {summary.rows} rows in {summary.shards} shards; this run embedded "
            f"{summary.embedded_now} ({summary.rows_per_second:.1f} rows/s, {summary.tokens} tokens){skipped}",
            file=sys.stderr,
        )
    return 0
