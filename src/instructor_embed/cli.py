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

input files:
  .txt    one text per line (every line is a row, blank lines too)
  .jsonl  one JSON object per line: {"text": ..., "id": ... (optional), "instruction": ... (optional)}
  .csv    a header row with a 'text' column, optional 'id' and 'instruction' columns

output files:
  .npy      an (n, dim) float32 matrix, rows in input order
  .parquet  columns 'id' (the input's id, or the row number) and 'embedding' (needs pyarrow)

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
    encode.add_argument("--model", required=True, help="Hugging Face Hub id or local model directory")
    encode.add_argument("--input", required=True, type=Path, help="texts to embed: .txt, .jsonl or .csv")
    encode.add_argument("--output", required=True, type=Path, help="where to write: .npy or .parquet")
    encode.add_argument("--instruction", help='instruction for rows without their own, e.g. "Represent the sentence:"')
    encode.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    encode.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    encode.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    encode.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    return parser


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
        commands = {"train": _train, "evaluate": _evaluate, "encode": _encode}
        return commands[args.command](args)
    except InstructorEmbedError as exc:
        print(f"instructor-embed: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("instructor-embed: interrupted; no output written", file=sys.stderr)
        return 130


def _encode(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .errors import InputError
    from .model import INSTRUCTOR
    from .records import check_output_path, read_records, write_embeddings
    from .tokenization import Item

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}", param="batch_size")
    check_output_path(args.output, args.overwrite)
    records = read_records(args.input, args.instruction)  # every line checked before the model loads
    model = INSTRUCTOR(args.model, device=args.device)
    engine = model.engine
    tokenized = engine.tokenize([Item(record.instruction, record.text) for record in records])
    with tqdm(total=len(records), unit="text", disable=args.quiet, desc="Embedding") as progress:
        embeddings = engine.run(tokenized, batch_size=args.batch_size, on_batch=progress.update)
    write_embeddings(args.output, [r.id for r in records], embeddings.numpy())
    if not args.quiet:
        dimension = model.get_sentence_embedding_dimension()
        print(f"wrote {len(records)} embeddings of {dimension} dims to {args.output}", file=sys.stderr)
    return 0


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
