"""Prompt retrieval with the language model in the loop: the paper's third benchmark, end to end.

For each test input, the ``k`` most similar annotated pool examples (embedded with the task's instruction, see
:class:`.prompt_retrieval.ExampleSelector`) become the in-context demonstrations; a Hugging Face causal language
model completes the prompt (batched, greedy), and the completions are scored against the references: ROUGE-L
(the ``rouge-score`` package) for text outputs, exact-match accuracy for labels. The same run scores ``k``
random demonstrations and no demonstrations (zero-shot) as baselines.

A task spec is a JSON file (paths relative to it)::

    {"name": "sst5", "type": "prompt-retrieval", "pool": "pool.jsonl", "test": "test.jsonl",
     "template": "Review: {input}\\nSentiment: {output}", "metric": "accuracy",
     "instruction": "Represent the movie review for retrieving similar reviews: ",
     "input_field": "input", "output_field": "output", "k": 4, "max_new_tokens": 8}

``pool`` and ``test`` are JSON Lines with the input and output fields; a demonstration is the template filled
in, the test input is the template cut before ``{output}``; demonstrations are separated by a blank line, and a
completion is read up to the first blank line (the first line, for ``accuracy``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..dependencies import require
from ..errors import InputError
from ..model import INSTRUCTOR
from .prompt_retrieval import ExampleSelector, build_prompt

SEPARATOR = "\n\n"
METRICS = ("rouge-l", "accuracy")
MODES = ("similar", "random", "zero-shot")


@dataclass(frozen=True)
class PromptTask:
    """A prompt-retrieval task read from a spec: its pool and test rows (input, output) and how to prompt."""

    name: str
    pool: list[tuple[str, str]]
    test: list[tuple[str, str]]
    template: str
    metric: str
    instruction: str | None = None
    k: int = 4
    max_new_tokens: int = 32

    def demonstration(self, example: tuple[str, str]) -> str:
        before, after = self.template.split("{output}")
        return before.replace("{input}", example[0]) + example[1] + after.replace("{input}", example[0])

    def query(self, text: str) -> str:
        return self.template.split("{output}")[0].replace("{input}", text).rstrip(" ")


def load_prompt_task(spec_path: str | Path) -> PromptTask:
    """Read and check a spec and its rows; a problem names the file, and the line for a row."""
    spec_path = Path(spec_path)
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{spec_path}: cannot read the task spec: {exc}") from exc
    if not isinstance(spec, dict):
        raise InputError(f"{spec_path}: a task spec is a JSON object")
    missing = [key for key in ("name", "pool", "test", "template") if key not in spec]
    if missing:
        raise InputError(f"{spec_path}: missing {', '.join(missing)}")
    if spec.get("type", "prompt-retrieval") != "prompt-retrieval":
        raise InputError(f"{spec_path}: type is {spec['type']!r}; a prompt-retrieval spec has type 'prompt-retrieval'")
    template = spec["template"]
    if not isinstance(template, str) or template.count("{output}") != 1 or "{input}" not in template:
        raise InputError(f"{spec_path}: template must contain {{input}} and exactly one {{output}}")
    metric = spec.get("metric", "rouge-l")
    if metric not in METRICS:
        raise InputError(f"{spec_path}: metric must be one of {', '.join(METRICS)}, got {metric!r}")
    fields = spec.get("input_field", "input"), spec.get("output_field", "output")
    pool = _read_rows(spec_path.parent / spec["pool"], fields)
    test = _read_rows(spec_path.parent / spec["test"], fields)
    task = PromptTask(
        name=str(spec["name"]),
        pool=pool,
        test=test,
        template=template,
        metric=metric,
        instruction=spec.get("instruction"),
        k=spec.get("k", 4),
        max_new_tokens=spec.get("max_new_tokens", 32),
    )
    for key in ("k", "max_new_tokens"):
        value = getattr(task, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{spec_path}: {key} must be a positive integer, got {value!r}")
    if task.k > len(pool):
        raise InputError(f"{spec_path}: k is {task.k} but the pool has {len(pool)} examples")
    if task.instruction is not None and not isinstance(task.instruction, str):
        raise InputError(f"{spec_path}: instruction must be a string")
    return task


def _read_rows(path: Path, fields: tuple[str, str]) -> list[tuple[str, str]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}, line {number}: not valid JSON ({exc})") from exc
        values = [row.get(field) if isinstance(row, dict) else None for field in fields]
        if not all(isinstance(value, str) for value in values):
            raise InputError(f"{path}, line {number}: needs string fields {fields[0]!r} and {fields[1]!r}")
        rows.append((values[0], values[1]))
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


class CausalLM:
    """A Hugging Face causal language model that completes prompts: batched, greedy, left-padded."""

    def __init__(self, name_or_path: str, device: str | None = None, dtype: str = "auto", batch_size: int = 8):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        self.tokenizer.padding_side = "left"  # generation continues each prompt from its own last token
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype).to(self.device).eval()
        self.batch_size = batch_size
        config = self.model.config
        self.context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)

    def length(self, prompt: str) -> int:
        return len(self.tokenizer(prompt)["input_ids"])

    def complete(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        """Each prompt's greedy completion of at most ``max_new_tokens`` tokens (the prompt excluded)."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths share a batch
        completions: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            inputs = self.tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True).to(self.device)
            with torch.no_grad():
                output = self.model.generate(
                    **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
                )
            texts = self.tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            for index, text in zip(batch, texts, strict=True):
                completions[index] = text
        return completions


def answer(completion: str, metric: str) -> str:
    """The part of a completion that answers: up to the next demonstration (a blank line), the first line for
    labels."""
    text = completion.split(SEPARATOR, 1)[0].strip()
    return text.splitlines()[0].strip() if metric == "accuracy" and text else text


def score(predictions: Sequence[str], references: Sequence[str], metric: str) -> float:
    """Mean ROUGE-L F-measure, or exact-match accuracy (case-insensitive)."""
    if metric == "accuracy":
        return sum(p.casefold() == r.strip().casefold() for p, r in zip(predictions, references, strict=True)) / len(
            references
        )
    rouge = require("eval", "rouge_score.rouge_scorer", "ROUGE-L scoring")
    scorer = rouge.RougeScorer(["rougeL"], use_stemmer=True)
    return sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)) / len(
        references
    )


def run_prompt_task(embedder: INSTRUCTOR, task: PromptTask, lm: CausalLM, seed: int = 0) -> dict:
    """The task's score with the most similar demonstrations, random ones and none, and every prediction."""
    selector = ExampleSelector(embedder, [example[0] for example in task.pool], instruction=task.instruction)
    inputs = [example[0] for example in task.test]
    nearest, _ = selector.select(inputs, task.k)
    rng = random.Random(seed)
    chosen = {
        "similar": [row.tolist() for row in nearest],
        "random": [rng.sample(range(len(task.pool)), task.k) for _ in inputs],
        "zero-shot": [[] for _ in inputs],
    }
    records = [{"input": text, "reference": example[1]} for text, example in zip(inputs, task.test, strict=True)]
    scores = {}
    for mode in MODES:
        fitted = [fit_prompt(lm, task, indices, number) for number, indices in enumerate(chosen[mode])]
        completions = lm.complete([prompt for prompt, _ in fitted], task.max_new_tokens)
        predictions = [answer(completion, task.metric) for completion in completions]
        scores[mode] = score(predictions, [example[1] for example in task.test], task.metric)
        for record, prediction, (_, kept) in zip(records, predictions, fitted, strict=True):
            record[mode] = {"prediction": prediction, "demonstrations": kept}
    return {"metric": task.metric, "k": task.k, "examples": len(inputs), "scores": scores, "predictions": records}


def fit_prompt(lm: CausalLM, task: PromptTask, indices: list[int], number: int) -> tuple[str, list[int]]:
    """Test item ``number``'s prompt with the demonstrations that fit the LM's context and the answer: the least
    similar are dropped first. Returns the prompt and the pool indices it kept."""
    indices = list(indices)
    query = task.query(task.test[number][0])
    while True:
        prompt = build_prompt([task.demonstration(task.pool[i]) for i in indices], query, SEPARATOR)
        if lm.context is None or lm.length(prompt) + task.max_new_tokens <= lm.context:
            return prompt, indices
        if not indices:
            raise InputError(
                f"{task.name}: test item {number}: its prompt alone is {lm.length(prompt)} tokens, more than the "
                f"language model's context of {lm.context} less max_new_tokens ({task.max_new_tokens})"
            )
        indices.pop()  # most similar first: the last is the least similar


def evaluate_prompt_retrieval(
    models: Sequence[str],
    specs: Sequence[str],
    lm: str,
    output_dir: str | Path,
    *,
    lm_device: str | None = None,
    lm_batch_size: int = 8,
    seed: int = 0,
    load_model: Callable[[str], INSTRUCTOR] = INSTRUCTOR,
) -> dict[str, dict[str, dict]]:
    """Every embedder (``load_model(name)``) on every prompt-retrieval task with one language model; writes
    ``OUTPUT/prompt_retrieval.json``, ``prompt_retrieval.md`` and ``predictions-<model>-<task>.jsonl``.
    Tasks are read and checked before any model loads."""
    tasks = [load_prompt_task(spec) for spec in specs]
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    language_model = CausalLM(lm, device=lm_device, batch_size=lm_batch_size)
    results: dict[str, dict[str, dict]] = {}
    for name in models:
        embedder = load_model(name)
        results[name] = {}
        for task in tasks:
            outcome = run_prompt_task(embedder, task, language_model, seed=seed)
            stem = f"predictions-{_slug(name)}-{_slug(task.name)}.jsonl"
            (output / stem).write_text(
                "".join(json.dumps(record) + "\n" for record in outcome.pop("predictions")), encoding="utf-8"
            )
            results[name][task.name] = {**outcome, "predictions": stem}
    record = {"lm": lm, "seed": seed, "results": results}
    (output / "prompt_retrieval.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (output / "prompt_retrieval.md").write_text(prompt_table(results, lm), encoding="utf-8")
    return results


def prompt_table(results: dict[str, dict[str, dict]], lm: str) -> str:
    lines = [
        f"Language model: `{lm}`; demonstrations chosen by each embedder (similar), at random, or none.",
        "",
        "| embedder | task | metric | k | similar | random | zero-shot |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, tasks in results.items():
        for task, outcome in tasks.items():
            cells = " | ".join(f"{100 * outcome['scores'][mode]:.2f}" for mode in MODES)
            lines.append(f"| {name} | {task} | {outcome['metric']} | {outcome['k']} | {cells} |")
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text)).strip("_.") or "model"
