"""Where torch float32 spends its time on CPU: tokenization, the encoder's forward passes (SDPA against eager
attention), pooling + Dense + Normalize, and the rest (Python per batch), on the random-weight instructor-base T5.

    python benchmarks/profile_float32.py [--repeats 3]     # needs ../shared; ~3 minutes on 2 cores

Inputs as in benchmarks/run.py: 512 STS-B sentences with the authors' STS instruction (short) and 128 MS MARCO
passages with their retrieval instruction (long); batch 32; best of ``--repeats`` runs per setting.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from instructor_embed import INSTRUCTOR
from instructor_embed.encode import plan_batches
from instructor_embed.hardware import detect
from instructor_embed.testing import build_random_instructor
from instructor_embed.tokenization import Item

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))


def inputs() -> dict[str, list[Item]]:
    data = SHARED / "data"
    authors = json.loads((data / "instructions/instructor_mteb_instructions.json").read_text())[
        "hkunlp/instructor-base"
    ]
    rows = (data / "sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    sentences = list(dict.fromkeys(row.split("\t")[5] for row in rows))[:512]
    corpus = (data / "retrieval/msmarco-sample/corpus.jsonl").read_text(encoding="utf-8").split("\n")
    passages = [json.loads(line)["text"] for line in corpus if line.strip()][:128]
    return {
        "short": [Item(authors["STSBenchmark"], text) for text in sentences],
        "long": [Item(authors["MSMARCO"]["corpus"], text) for text in passages],
    }


def best(repeats: int, work) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def profile(model: INSTRUCTOR, items: list[Item], repeats: int) -> dict:
    engine = model.engine
    tokenized = engine.tokenize(items)
    batches = [tokenized.take(batch) for batch in plan_batches(tokenized.token_counts, batch_size=32)]
    forward_outputs = []

    def forward_only():
        forward_outputs.clear()
        with torch.inference_mode():
            for batch in batches:
                features = engine.tokenizer.collate(batch)
                forward_outputs.append(model[0](features))

    def heads_only():
        with torch.inference_mode():
            for features in forward_outputs:
                out = dict(features)
                for module in list(model)[1:]:
                    out = module(out)

    total = best(repeats, lambda: engine.run(engine.tokenize(items), batch_size=32))
    tokenize = best(repeats, lambda: engine.tokenize(items))
    forward = best(repeats, forward_only)
    heads = best(repeats, heads_only)
    return {
        "total_s": round(total, 3),
        "tokenize_s": round(tokenize, 3),
        "encoder_forward_s": round(forward, 3),
        "pooling_dense_normalize_s": round(heads, 3),
        "rest_s": round(total - tokenize - forward - heads, 3),
        "items_per_s": round(len(items) / total, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = ROOT / "benchmarks/.cache/instructor-base-random"
    if not (checkpoint / "modules.json").exists():
        build_random_instructor(checkpoint, SHARED / "models/t5-tokenizer", size="base", seed=0)
    sets = inputs()
    report = {"date": time.strftime("%Y-%m-%d"), "machine": detect().describe(), "threads": args.threads}
    for attention in ("sdpa", "eager"):
        model = INSTRUCTOR(checkpoint, device="cpu")
        model[0].auto_model.set_attn_implementation(attention)
        for name, items in sets.items():
            report[f"{attention} {name}"] = profile(model, items, args.repeats)
            print(attention, name, report[f"{attention} {name}"], flush=True)
    out = ROOT / f"benchmarks/results/profile-float32-{detect().signature()}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
