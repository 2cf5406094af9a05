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
