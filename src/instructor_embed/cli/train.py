"""``instructor-embed train``: fine-tuning on MEDI rows, pairs, scored or labelled pairs, or labelled texts."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands) -> None:
    from ..training.config import TrainConfig  # torch-free: the parser never loads the training stack
    from ..training.formats import FORMATS

    defaults = TrainConfig(model="", data="", output_dir="")
    train = commands.add_parser(
        "train",
        help="fine-tune on your data (MEDI rows, pairs, scored pairs, labelled texts)",
        description="Fine-tune an INSTRUCTOR model. Each --data file (.jsonl, .json, .csv, .tsv, .parquet) is one "
        "task, its shape told by its columns: MEDI rows (query, pos, neg as [instruction, text], task_name); "
        "anchor, positive [, negative | negatives]; sentence1, sentence2, score (CoSENT); sentence1, sentence2, "
        "label 0/1; text, label (texts of one label are positives, never in-batch negatives). A folder is one "
        "task per file. Every batch comes from one task. Runs under accelerate launch or torchrun for several "
        "processes. Needs the 'train' extra.",
    )

    def option(flag: str, help: str, **kwargs) -> None:
        name = flag.removeprefix("--").replace("-", "_")
        if kwargs.get("required"):
            help += " (required)"
        elif kwargs.get("action") != "store_true":
            default = getattr(defaults, name)
            kwargs["default"] = default
            help += f" (default: {default})" if default not in (None, ()) else ""
        train.add_argument(flag, help=help, **kwargs)

    option("--model", "starting checkpoint: Hub id or local directory", required=True)
    option("--data", "training files or folders (each file one task; MEDI files name their tasks)", nargs="+")
    option(
        "--tasks",
        'a JSON or YAML task file: {"TASK": {"file": ..., "format"?, "columns"?, "instruction"? or "query_instruction"? '
        '/ "document_instruction"?, "weight"?}} (files relative to it)',
    )
    option("--format", "the --data files' format (default: told by their columns)", choices=FORMATS)
    option("--columns", "FORMAT_COLUMN=FILE_COLUMN,...: e.g. label=category or anchor=question,positive=answer")
    option("--instruction", "instruction of both sides, for tasks and rows that give none")
    option("--query-instruction", "the query side's (anchor, sentence1, text); over --instruction")
    option("--document-instruction", "the document side's (positive, negatives, sentence2); over --instruction")
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
    option(
        "--matryoshka-dims",
        "Matryoshka training: the loss averaged over these leading dimensions (e.g. 384 256 128 64), so that "
        "truncate_dim loses little",
        type=int,
        nargs="+",
    )
    option(
        "--lora-rank",
        "train LoRA adapters of this rank (peft) instead of every weight; saved merged, so the folder loads as "
        "any checkpoint (LoRA usually wants ~10x the learning rate, e.g. 2e-4). Needs the 'peft' extra",
        type=int,
    )
    option("--lora-alpha", "LoRA scaling (default: 2 x --lora-rank)", type=float)
    option("--lora-dropout", "dropout on the LoRA path", type=float)
    option(
        "--lora-target-modules",
        "modules that get adapters, e.g. query key value dense, or all-linear (default: peft's for the "
        "architecture: query value for BERT, q v for T5)",
        nargs="+",
    )
    option("--max-grad-norm", "clip the gradient norm to this (0: no clipping)", type=float)
    option("--query-max-length", "tokens per query-side text (default: --max-seq-length)", type=int)
    option("--document-max-length", "tokens per document-side text (default: --max-seq-length)", type=int)
    option(
        "--mixed-precision", "autocast: bf16 (CPU or GPU) or fp16 (GPUs without bf16)", choices=["no", "bf16", "fp16"]
    )
    option("--cache-chunk-size", "GradCache chunk: large batches in small memory", type=int)
    option(
        "--gather-across-processes",
        "let each row compete with the queries and hard negatives of every process's batch",
        action="store_true",
    )
    option("--tensorboard", "also log to TensorBoard in --output-dir", action="store_true")
    option(
        "--instructions",
        "keep the rows' instructions, 'none' (train without any), or a JSON file: task -> "
        '{"query": ..., "document": ...} or one for both; an instruction may be a list of wordings, one drawn per text',
    )
    option("--max-rows-per-task", "train on a seeded sample of at most this many rows of each task", type=int)
    option("--task-weights", "TASK=WEIGHT,...: a task's batches per epoch times its weight (others: 1)")
    option("--eval", "evaluate's task names or spec files: scored before, every --eval-steps and at the end", nargs="+")
    option("--eval-steps", "evaluate every this many steps (default: --save-steps)", type=int)
    option("--eval-data-dir", "local data of named --eval tasks (default: evaluate's)")
    option(
        "--eval-instructions",
        "the --eval tasks' instructions, as evaluate's --instructions: a built-in set (e.g. hkunlp/instructor-large), "
        "'none' or a JSON file (default: the set of --model, if it has one)",
    )
    option("--keep-best", "'average' or an --eval task: the final model is the checkpoint that scored best")
    option("--save-total-limit", "keep only the newest N checkpoints (and the best)", type=int)
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import shlex

    from ..training.card import scores_markdown
    from ..training.config import TrainConfig
    from ..training.loop import train

    options = {k: v for k, v in vars(args).items() if k not in ("command", "quiet")}
    options["data"] = tuple(options["data"] or ()) or None
    options["eval"] = tuple(options["eval"] or ())
    options["matryoshka_dims"] = tuple(options["matryoshka_dims"] or ())
    options["lora_target_modules"] = tuple(options["lora_target_modules"] or ())
    if options["max_grad_norm"] == 0:
        options["max_grad_norm"] = None
    command = shlex.join(["instructor-embed", *sys.argv[1:]])
    config = TrainConfig(**options, show_progress=not args.quiet, command=command)
    output = train(config)
    columns = _scores(output, config)
    if columns:
        print(scores_markdown(columns), file=sys.stderr)
    print(f"trained model written to {output} (model card: {output / 'README.md'})", file=sys.stderr)
    return 0


def _scores(output, config):
    """The run's before/after scores, as its model card shows them."""
    import json

    from ..training.card import score_columns
    from ..training.tracking import EVAL_LOG

    log = output / EVAL_LOG
    if not log.exists():
        return {}
    history = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    best = None
    if config.keep_best:
        state = [r for r in history if r["step"] > 0 and r["metric"] is not None]
        best = max(state, key=lambda r: r["metric"])["step"] if state else None
    return score_columns(history, best)
