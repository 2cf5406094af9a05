"""``instructor-embed train``: training on MEDI-format data."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands) -> None:
    from ..training.config import TrainConfig  # torch-free: the parser never loads the training stack

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
    option(
        "--instructions",
        "keep the rows' instructions, 'none' (train without any), or a JSON file: task -> "
        '{"query": ..., "document": ...} or one string',
    )
    option("--max-rows-per-task", "train on a seeded sample of at most this many rows of each task", type=int)
    option("--task-weights", "TASK=WEIGHT,...: a task's batches per epoch times its weight (others: 1)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..training.config import TrainConfig
    from ..training.loop import train

    options = {k: v for k, v in vars(args).items() if k not in ("command", "quiet")}
    output = train(TrainConfig(**options, show_progress=not args.quiet))
    print(f"trained model written to {output}", file=sys.stderr)
    return 0
