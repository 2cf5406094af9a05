"""The ``instructor-embed`` command line: a thin layer over the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import InstructorEmbedError

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
  FOLDER/   a resumable job: Parquet shards (id, embedding, instruction when rows have their own) and
            manifest.json; the input is streamed, each shard committed atomically; the same command continues
            after a crash; other settings against an existing folder are refused (--overwrite starts again)

A row's own instruction wins over --instruction; rows with neither are embedded without one.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="instructor-embed",
        description="Instruction-conditioned text embeddings (INSTRUCTOR).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    encode.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    encode.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], help="encoder precision (default: float32)"
    )
    encode.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="(default: torch)")
    encode.add_argument("--quantize", choices=["int8"], help="dynamic int8 encoder")
    encode.add_argument("--normalize", action="store_true", help="scale vectors to unit length")
    encode.add_argument("--truncate-dim", type=int, help="keep the first N dimensions")
    encode.add_argument(
        "--skip-invalid", action="store_true", help="folder output: skip bad rows, listed in invalid_rows.jsonl"
    )
    encode.add_argument("--shard-rows", type=int, default=10_000, help="folder output: rows per shard (default: 10000)")
    encode.add_argument(
        "--overwrite", action="store_true", help="replace the output if it exists (a folder: start again)"
    )
    encode.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    _add_serve_parser(commands)
    _add_search_parser(commands)
    return parser


def _add_search_parser(commands) -> None:
    search = commands.add_parser(
        "search",
        help="exact top-k search over the output folder of encode",
        description="Embed queries with an instruction and list the stored rows most similar to each (cosine, "
        "exact: every stored vector is compared, one shard at a time).",
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
    search.add_argument("--model", help="embed the queries with this model (default: the one the index was made with)")
    search.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    search.add_argument("--show-text", type=Path, help="the input file the index was made from: print each hit's text")
    search.add_argument("--text-field", default="text", help="with --show-text: the texts' column or key")
    search.add_argument("--id-field", default="id", help="with --show-text: the ids' column or key")
    search.add_argument("--json", action="store_true", help="print one JSON object per query")
    search.add_argument("--quiet", action="store_true", help="no progress output")


def _add_serve_parser(commands) -> None:
    from .server.settings import ServerSettings  # no FastAPI here: the parser stays light

    defaults = ServerSettings(models=())
    serve = commands.add_parser(
        "serve",
        help="an OpenAI-compatible embedding server with per-request instructions",
        description="Serve models over HTTP: POST /v1/embeddings (OpenAI's API; 'instruction' extension), "
        "POST /embed ([instruction, text] items), GET /v1/models, /health, /info, /metrics, /docs. Inputs of "
        "concurrent requests share token-budgeted batches. Needs the 'server' extra.",
        epilog="example: instructor-embed serve --model hkunlp/instructor-large --default-instruction "
        '"Represent the document for retrieval: "',
    )
    serve.add_argument(
        "--model",
        action="append",
        required=True,
        help="PATH_OR_ID or NAME=PATH_OR_ID (repeat to serve several; requests choose by name) (required)",
    )
    serve.add_argument("--host", default=defaults.host, help=f"address to bind (default: {defaults.host})")
    serve.add_argument("--port", type=int, default=defaults.port, help=f"port (default: {defaults.port})")
    serve.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (default: $INSTRUCTOR_EMBED_API_KEY, else none)"
    )
    serve.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    serve.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], help="encoder precision (default: float32)"
    )
    serve.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="(default: torch)")
    serve.add_argument("--quantize", choices=["int8"], help="dynamic int8 encoder")
    serve.add_argument(
        "--max-batch-tokens",
        type=int,
        help="tokens per forward pass, padding included (default: 4096 on CPU, 16384 on GPU)",
    )
    for name, help in [
        ("max_batch_size", "inputs per forward pass"),
        ("max_concurrent_inputs", "inputs in flight before requests get 429"),
        ("max_client_batch", "inputs per request"),
        ("payload_limit", "request body bytes"),
    ]:
        serve.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=getattr(defaults, name),
            help=f"{help} (default: {getattr(defaults, name)})",
        )
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="how long an idle model waits for more requests' inputs before it runs; inputs that arrive while a "
        f"batch runs join the next one anyway (default: {defaults.max_wait_ms:g})",
    )
    serve.add_argument("--max-input-tokens", type=int, help="tokens per input (default: the model's max_seq_length)")
    serve.add_argument("--truncate", action="store_true", help="cut longer inputs instead of refusing them")
    serve.add_argument("--default-instruction", help="instruction for requests that give none (default: none)")
    serve.add_argument("--quiet", action="store_true", help="log warnings and errors only")


def _add_evaluate_parser(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate on MTEB tasks (offline: local tasks from the shared data)",
        description="Evaluate models on MTEB tasks with each task's instruction, using mteb's own evaluators. "
        "Tasks with local data (see 'all-local') are read from --data-dir; others are fetched by mteb; a .json "
        "entry is a task spec on your own data (sts, classification, clustering or retrieval). "
        "Writes OUTPUT/results.json and results.md (several models: one folder each, plus comparison.md and "
        "comparison.png). Needs the 'eval' extra.",
    )
    evaluate.add_argument("--model", action="append", required=True, help="Hub id or directory; repeat to compare")
    evaluate.add_argument(
        "--tasks",
        required=True,
        help="comma-separated MTEB task names, task spec files (.json), or all-local (STSBenchmark, STS12-16, "
        "SICK-R, Banking77Classification, MSMARCO-sample, Billboard-cnndm, Billboard-mscoco)",
    )
    evaluate.add_argument("--output-dir", required=True)
    evaluate.add_argument(
        "--instructions",
        help="hkunlp/instructor-{base,large,xl}, a JSON file, or none "
        "(default: the set matching the model id, else none)",
    )
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument(
        "--data-dir", help="local task data (default: $INSTRUCTOR_EMBED_SHARED/data or ../shared/data)"
    )
    evaluate.add_argument("--device")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_train_parser(commands) -> None:
    from .training.config import TrainConfig  # torch-free: the parser never loads the training stack

    defaults = TrainConfig(model="", data="", output_dir="")
    train = commands.add_parser(
        "train",
        help="train on MEDI-format data",
        description="Train an INSTRUCTOR model on MEDI-format data (query / pos / neg, each [instruction, text], "
        "plus task_name or task_id). Every batch comes from one task. Runs under accelerate launch or torchrun "
        "for several processes. Needs the 'train' extra.",
    )

    def option(flag: str, help: str, **kwargs) -> None:
        name = flag.removeprefix("--").replace("-", "_")
        if kwargs.get("required"):
            help += " (required)"
        elif kwargs.get("action") != "store_true":
            default = getattr(defaults, name)
            kwargs["default"] = default
            help += f" (default: {default})" if default is not None else ""
        train.add_argument(flag, help=help, **kwargs)

    option("--model", "starting checkpoint: Hub id or local directory", required=True)
    option("--data", "MEDI .json (a list) or .jsonl", required=True)
    option("--output-dir", "final model, checkpoint-N folders, train_log.jsonl", required=True)
    option("--max-steps", "optimizer steps (default: as many as --epochs takes)", type=int)
    option("--epochs", "passes over the data", type=float)
    option("--batch-size", "rows per device per step", type=int)
    option("--learning-rate", "AdamW learning rate", type=float)
    option("--warmup-ratio", "fraction of steps with a linear warm-up", type=float)
    option("--weight-decay", "AdamW weight decay", type=float)
    option("--cl-temperature", "contrastive loss temperature", type=float)
    option("--max-seq-length", "tokens per text (default: the starting checkpoint's own)", type=int)
    option("--seed", "seed of the batch order and initialisation", type=int)
    option("--save-steps", "write checkpoint-N every this many steps", type=int)
    option("--logging-steps", "log the mean loss every this many steps", type=int)
    option("--resume", "continue from the last checkpoint in --output-dir", action="store_true")
    option("--skip-invalid", "skip and count invalid rows instead of stopping", action="store_true")
    option("--gradient-checkpointing", "recompute activations in the backward pass to save memory", action="store_true")
    option("--mixed-precision", "bf16 autocast", choices=["no", "bf16"])
    option("--cache-chunk-size", "GradCache chunk: large batches in small memory", type=int)
    option(
        "--gather-across-processes",
        "let each row compete with the queries and hard negatives of every process's batch",
        action="store_true",
    )
    option("--tensorboard", "also log to TensorBoard in --output-dir", action="store_true")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    """Run a command; errors meant for people become one line on stderr and exit code 2 (130 on Ctrl-C)."""
    try:
        args = build_parser().parse_args(argv)
        _quiet_third_parties(args.quiet)
        commands = {"train": _train, "evaluate": _evaluate, "encode": _encode, "serve": _serve, "search": _search}
        return commands[args.command](args)
    except InstructorEmbedError as exc:
        print(f"instructor-embed: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("instructor-embed: interrupted; no output written", file=sys.stderr)
        return 130


# Loggers of packages that report, at every start, things that do not concern a user of this command:
# torchao's optional CUDA kernels it cannot load on a CPU machine, torch's deprecation notes about them.
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


def _quiet_third_parties(quiet: bool) -> None:
    """A normal run prints what helps (our progress, results, warnings that need action); ``--quiet`` prints
    errors only: no progress bars, including transformers' weight-loading bar."""
    import logging

    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if quiet:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def _encode(args: argparse.Namespace) -> int:
    from .records import Fields

    fields = Fields(args.text_field, args.id_field, args.instruction_field)
    if args.output.suffix == "" or args.output.is_dir():
        return _encode_folder(args, fields)
    from tqdm.auto import tqdm

    from .errors import InputError
    from .model import INSTRUCTOR
    from .records import check_output_path, read_records, write_embeddings
    from .tokenization import Item

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}", param="batch_size")
    check_output_path(args.output, args.overwrite)
    records = read_records(args.input, args.instruction, fields)  # every line checked before the model loads
    model = INSTRUCTOR(args.model, device=args.device, dtype=args.dtype, backend=args.backend, quantize=args.quantize)
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
    from .encode import postprocess

    return postprocess(embeddings, truncate_dim=args.truncate_dim, normalize=args.normalize).numpy()


def _encode_folder(args: argparse.Namespace, fields) -> int:
    from .bulk import JobConfig, embed_file

    summary = embed_file(
        JobConfig(
            input=args.input,
            output=args.output,
            model=args.model,
            instruction=args.instruction,
            fields=fields,
            batch_size=args.batch_size,
            max_batch_tokens=args.max_batch_tokens,
            shard_rows=args.shard_rows,
            device=args.device,
            dtype=args.dtype,
            backend=args.backend,
            quantize=args.quantize,
            normalize=args.normalize,
            truncate_dim=args.truncate_dim,
            skip_invalid=args.skip_invalid,
            overwrite=args.overwrite,
            show_progress=not args.quiet,
        )
    )
    if not args.quiet:
        skipped = f", {summary.invalid_rows} invalid rows skipped (invalid_rows.jsonl)" if summary.invalid_rows else ""
        print(
            f"{summary.output}: {summary.rows} rows in {summary.shards} shards; this run embedded "
            f"{summary.embedded_now} ({summary.rows_per_second:.1f} rows/s, {summary.tokens} tokens){skipped}",
            file=sys.stderr,
        )
    return 0


def _search(args: argparse.Namespace) -> int:
    import json

    from .bulk.search import search, texts_of
    from .errors import InputError
    from .instructions import RETRIEVAL
    from .records import Fields, text_lines

    queries = list(args.query)
    if args.query_file:
        if not args.query_file.is_file():
            raise InputError(f"{args.query_file}: no such query file", path=args.query_file)
        queries += [line.strip() for line in text_lines(args.query_file) if line.strip()]
    model = None
    if args.model:
        from .model import INSTRUCTOR

        model = INSTRUCTOR(args.model, device=args.device)
    instruction = RETRIEVAL.query if args.instruction is None else (args.instruction or None)
    results = search(args.index, queries, k=args.k, instruction=instruction, model=model, device=args.device)
    texts = {}
    if args.show_text:
        wanted = {hit.id for hits in results for hit in hits}
        texts = texts_of(args.show_text, wanted, Fields(text=args.text_field, id=args.id_field))
    for query, hits in zip(queries, results, strict=True):
        if args.json:
            found = [
                {"id": h.id, "score": round(h.score, 6), **({"text": texts.get(h.id)} if texts else {})} for h in hits
            ]
            print(json.dumps({"query": query, "hits": found}))
            continue
        print(f"query: {query}")
        for rank, hit in enumerate(hits, start=1):
            text = f"  {texts.get(hit.id, '')[:100]}" if texts else ""
            print(f"  {rank:>3}. {hit.score:.4f}  {hit.id}{text}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging
    import os

    from .dependencies import require
    from .inputs import check_device
    from .server.settings import ServedModel, ServerSettings

    uvicorn = require("server", "uvicorn", "instructor-embed serve")
    require("server", "fastapi", "instructor-embed serve")
    require("server", "prometheus_client", "instructor-embed serve")
    from .server.app import create_app

    if args.device:
        check_device(args.device)
    settings = ServerSettings(
        models=tuple(ServedModel.parse(option) for option in args.model),
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get("INSTRUCTOR_EMBED_API_KEY") or None,
        device=args.device,
        dtype=args.dtype,
        backend=args.backend,
        quantize=args.quantize,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_concurrent_inputs=args.max_concurrent_inputs,
        max_client_batch=args.max_client_batch,
        max_input_tokens=args.max_input_tokens,
        truncate=args.truncate,
        payload_limit=args.payload_limit,
        default_instruction=args.default_instruction,
    )
    app = create_app(settings)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    server_logger = logging.getLogger("instructor_embed.server")
    server_logger.addHandler(handler)
    server_logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning" if args.quiet else "info",
        access_log=False,  # our own log line per request carries the request id and timings
        timeout_graceful_shutdown=60,
    )
    server = uvicorn.Server(config)
    state = app.state.server
    _stop_when_loading_fails(server, state)
    server.run()
    if state.load_error:
        raise ModelLoadFailed(state.load_error)
    return 0


def _stop_when_loading_fails(server, state) -> None:
    """A model that cannot load ends the server (after /health has said so) rather than leaving it up unusable."""
    import threading

    def watch() -> None:
        while not state.ready.wait(0.2):
            if state.load_error:
                server.should_exit = True
                return

    threading.Thread(target=watch, name="load-watch", daemon=True).start()


class ModelLoadFailed(InstructorEmbedError):
    """serve could not load a model."""


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluation.runner import EvalConfig, evaluate

    config = EvalConfig(
        models=tuple(args.model),
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        output_dir=args.output_dir,
        instructions=args.instructions,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        device=args.device,
        show_progress=not args.quiet,
    )
    results = evaluate(config)
    failed = [f"{model}: {task}" for model, tasks in results.items() for task, s in tasks.items() if "error" in s]
    print(
        f"results written to {args.output_dir}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr
    )
    return 1 if failed else 0


def _train(args: argparse.Namespace) -> int:
    from .training.config import TrainConfig
    from .training.loop import train

    options = {k: v for k, v in vars(args).items() if k not in ("command", "quiet")}
    output = train(TrainConfig(**options, show_progress=not args.quiet))
    print(f"trained model written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
