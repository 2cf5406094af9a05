"""``evaluate``: models × tasks through mteb, each task isolated, results written as JSON and markdown."""

from __future__ import annotations

import json
import logging
import os
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..model import INSTRUCTOR
from .billboard import BILLBOARD_INSTRUCTIONS, billboard_score
from .instruction_sets import instruction_for, resolve_instructions
from .local_tasks import LOCAL_TASKS, local_task
from .mteb_adapter import MTEBEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate, and where to write it."""

    models: tuple[str, ...]
    tasks: tuple[str, ...]  # MTEB task names, or "all-local"
    output_dir: str
    instructions: str | None = None  # a built-in set's model id, a JSON file, "none"; None: match the model
    batch_size: int = 32
    data_dir: str | None = None  # local task data (default ../shared/data)
    device: str | None = None


def evaluate(config: EvalConfig) -> dict[str, dict[str, dict]]:
    """Scores per model and task (mteb's scale, 0–1); a failing task is recorded under ``"error"``."""
    import mteb

    tasks = _task_names(config.tasks)
    data_dir = Path(config.data_dir) if config.data_dir else default_data_dir()
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    everything = {}
    for model_name in config.models:
        model = INSTRUCTOR(model_name, device=config.device)
        instructions = resolve_instructions(config.instructions, model_name)
        encoder = MTEBEncoder(model, _short_name(model_name), instructions, config.batch_size)
        results = {}
        for name in tasks:
            try:
                if name in BILLBOARD_INSTRUCTIONS:
                    instruction = _billboard_instruction(config.instructions, instructions, name)
                    results[name] = billboard_score(model, data_dir, name, instruction, config.batch_size)
                else:
                    local = name in LOCAL_TASKS and data_dir.is_dir()
                    task = local_task(name, data_dir) if local else mteb.get_task(name)
                    outcome = mteb.evaluate(encoder, [task], cache=None, show_progress_bar=False).task_results[0]
                    results[name] = _scores(outcome)
                logger.info("%s %s: %.4f", model_name, name, results[name]["main_score"])
            except Exception as exc:  # one failing task must not stop the others; its error is reported
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                logger.warning("%s failed on %s: %s", model_name, name, results[name]["error"])
                logger.debug(traceback.format_exc())
        everything[model_name] = results
        folder = output if len(config.models) == 1 else output / _short_name(model_name)
        write_reports(folder, model_name, results)
    if len(config.models) > 1:
        (output / "comparison.md").write_text(comparison_table(everything), encoding="utf-8")
    return everything


def default_data_dir() -> Path:
    """``$INSTRUCTOR_EMBED_SHARED/data``, else ``../shared/data`` from the current directory."""
    return Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", Path.cwd().parent / "shared")) / "data"


def _billboard_instruction(choice: str | None, instructions: dict, name: str) -> str | None:
    if choice == "none":
        return None
    return instruction_for(instructions, name, "query") or BILLBOARD_INSTRUCTIONS[name]


def _task_names(requested: tuple[str, ...]) -> list[str]:
    names = []
    for name in requested:
        names += [*LOCAL_TASKS, *BILLBOARD_INSTRUCTIONS] if name == "all-local" else [name]
    if not names:
        raise InputError("no tasks given")
    return list(dict.fromkeys(names))


def _scores(outcome) -> dict:
    split = next(iter(outcome.scores))
    first = outcome.scores[split][0]
    metrics = {k: v for k, v in first.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"main_score": float(outcome.get_score()), "split": split, **metrics}


def _short_name(model_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.rstrip("/").split("/")[-1]) or "model"


def write_reports(folder: Path, model_name: str, results: dict[str, dict]) -> None:
    """``results.json`` ({task: {main_score, ...}}, mteb's scale) and ``results.md`` (scores × 100)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"# {model_name}", "", "| task | main score (×100) |", "| --- | ---: |"]
    for task, scores in results.items():
        value = f"{100 * scores['main_score']:.2f}" if "main_score" in scores else f"failed: {scores['error']}"
        lines.append(f"| {task} | {value} |")
    scored = [s["main_score"] for s in results.values() if "main_score" in s]
    if scored:
        lines.append(f"| **average** | **{100 * sum(scored) / len(scored):.2f}** |")
    (folder / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def comparison_table(everything: dict[str, dict[str, dict]]) -> str:
    models = list(everything)
    tasks = list(dict.fromkeys(task for results in everything.values() for task in results))
    lines = ["| task | " + " | ".join(models) + " |", "| --- |" + " ---: |" * len(models)]
    for task in tasks:
        cells = []
        for model in models:
            scores = everything[model].get(task, {})
            cells.append(f"{100 * scores['main_score']:.2f}" if "main_score" in scores else "—")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
