"""Options more than one command takes."""

from __future__ import annotations

import argparse


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Where and how the model runs: --device, --dtype, --backend, --quantize (as ``INSTRUCTOR``'s arguments)."""
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16", "auto"],
        help="encoder precision; auto: the fastest faithful mode for this machine (default: float32)",
    )
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="(default: torch)")
    parser.add_argument("--quantize", choices=["int8"], help="dynamic int8 encoder")
    parser.add_argument("--revision", help="a Hub branch, tag or commit of the model (default: main)")


def model_spec(args: argparse.Namespace, model: str | None = None):
    """The :class:`~instructor_embed.spec.ModelSpec` that a command's model options describe. The Hub token
    comes from ``HF_TOKEN`` or ``huggingface-cli login``, never from the command line (where ``ps`` shows it)."""
    from ..spec import ModelSpec

    return ModelSpec(
        model or args.model,
        revision=getattr(args, "revision", None),
        device=args.device,
        dtype=getattr(args, "dtype", None),
        backend=getattr(args, "backend", None) or "torch",
        quantize=getattr(args, "quantize", None),
        max_seq_length=getattr(args, "max_seq_length", None),
        truncate_dim=getattr(args, "truncate_dim", None),
    )
