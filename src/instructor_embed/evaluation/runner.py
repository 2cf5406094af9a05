"""``evaluate``: models × tasks through mteb, each task isolated, results written as reports."""

from __future__ import annotations

import logging
import os
import re
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..dependencies import require
from ..errors import InputError, ModelLoadError
from ..spec import ModelSpec
from .billboard import BILLBOARD_INSTRUCTIONS, billboard_score
from .instruction_sets import Instruction, instruction_for, resolve_instructions
from .local_tasks import LOCAL_TASKS, SAMPLED_TASKS, local_task, uses_local_data
from .mteb_adapter import MTEBEncoder
from .reports import comparison_chart, comparison_table, write_reports
from .user_tasks import UserTask, is_task_spec, load_user_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate, and where to write it."""

    models: tuple[str, ...]
    tasks: tuple[str, ...]  # MTEB task names, "all-local", or task spec files (.json)
    output_dir: str
    instructions: str | None = None  # a built-in set's model id, a JSON file, "none"; None: match the model
    batch_size: int = 32
    data_dir: str | None = None  # local task data (default ../shared/data)
    device: str | None = None
    dtype: str | None = None
    backend: str = "torch"
    quantize: str | None = None
    show_progress: bool = False

    def spec(self, model: str) -> ModelSpec:
        """How each model loads: the same options for every one."""
        return ModelSpec(model, device=self.device, dtype=self.dtype, backend=self.backend, quantize=self.quantize)


def evaluate(config: EvalConfig) -> dict[str, dict[str, dict]]:
    """Scores per model and task (mteb's scale, 0–1); a failing task is recorded under ``"error"``.

    Task spec files are read and checked before any model loads. With several models, the output folder
    gets one folder per model plus ``comparison.md`` and ``comparison.png``.
    """
    for module in ("mteb", "datasets", "matplotlib"):  # before anything is read or created
        require("eval", module, "instructor-embed evaluate")
    jobs = read_tasks(config.tasks)
    data_dir = Path(config.data_dir) if config.data_dir else default_data_dir()
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    labels = _model_labels(config.models)
    _warn_about_missing_local_data(jobs, data_dir)
    everything = {}
    with _datasets_progress(config.show_progress), warnings.catch_warnings():
        # STSBenchmark and Banking77Classification are kept at v1 on purpose: the published scores are v1's.
        warnings.filterwarnings("ignore", message=r"The task '.*' is superseded by", category=UserWarning)
        for model_name, label in zip(config.models, labels, strict=True):
            folder = output if len(config.models) == 1 else output / label
            everything[model_name] = _evaluate_model(
                model_name, label, jobs, data_dir, config, report=partial(write_reports, folder, label)
            )
    if len(config.models) > 1:
        by_label = dict(zip(labels, everything.values(), strict=True))
        (output / "comparison.md").write_text(comparison_table(by_label), encoding="utf-8")
        comparison_chart(by_label, output / "comparison.png")
    return everything


@contextmanager
def _datasets_progress(show: bool) -> Iterator[None]:
    """mteb's data preparation shows ``datasets`` progress bars; keep them off unless progress is wanted."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    if not show:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _warn_about_missing_local_data(jobs: dict[str, UserTask | None], data_dir: Path) -> None:
    missing = [name for name in jobs if name in LOCAL_TASKS and not data_dir.is_dir()]
    if missing:
        logger.warning(
            "local data for %s not found in %s (pass --data-dir or set INSTRUCTOR_EMBED_SHARED); "
            "mteb will try to download them instead",
            ", ".join(missing),
            data_dir,
        )


def _evaluate_model(
    model_name: str,
    label: str,
    jobs: dict[str, UserTask | None],
    data_dir: Path,
    config: EvalConfig,
    report: Callable[[dict[str, dict]], None],
) -> dict[str, dict]:
    """One model on every task, ``report``-ing the results after each task (so a late crash keeps the earlier
    ones); a model that cannot load fails each of its tasks, and the next model runs."""
    try:
        model = config.spec(model_name).load()
    except ModelLoadError as exc:
        logger.warning("cannot load %s: %s", model_name, exc)
        results = {name: {"error": f"model did not load: {type(exc).__name__}: {exc}"} for name in jobs}
        report(results)
        return results
    instructions = _instructions(config.instructions, model_name, [job for job in jobs.values() if job])
    return _score(
        model, label, jobs, data_dir, instructions, config.instructions, config.batch_size, config.show_progress, report
    )


def read_tasks(tasks: Iterable[str]) -> dict[str, UserTask | None]:
    """Task name -> its spec's task (read and checked now), or None for a named task."""
    jobs: dict[str, UserTask | None] = {}
    for entry in _task_entries(tuple(tasks)):
        user_task = load_user_task(entry) if is_task_spec(entry) else None
        name = user_task.name if user_task else entry
        if name in jobs:
            raise InputError(f"two tasks are named {name!r} (--tasks entry {entry!r})")
        jobs[name] = user_task
    return jobs


def score_model(
    model,
    jobs: dict[str, UserTask | None],
    *,
    model_name: str = "model",
    instructions: str | None = None,
    data_dir: Path | None = None,
    batch_size: int = 32,
) -> dict[str, dict]:
    """A loaded model (e.g. one being trained) on the tasks of :func:`read_tasks`, as :func:`evaluate` scores
    them; ``instructions`` and ``model_name`` choose the instructions as ``evaluate`` does."""
    for module in ("mteb", "datasets"):
        require("eval", module, "evaluation while training")
    chosen = _instructions(instructions, model_name, [job for job in jobs.values() if job])
    with _datasets_progress(False), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The task '.*' is superseded by", category=UserWarning)
        return _score(
            model, model_name, jobs, data_dir or default_data_dir(), chosen, instructions, batch_size, False, _ignore
        )


def _ignore(_: object) -> None:
    """No report while training: the loop writes its own."""


def _score(
    model,
    label: str,
    jobs: dict[str, UserTask | None],
    data_dir: Path,
    instructions: dict[str, Instruction],
    choice: str | None,
    batch_size: int,
    show_progress: bool,
    report: Callable[[dict[str, dict]], None],
) -> dict[str, dict]:
    import mteb
    from tqdm.auto import tqdm

    encoder = MTEBEncoder(model, label, instructions, batch_size, show_progress=show_progress)
    results = {}
    progress = tqdm(jobs.items(), disable=not show_progress, unit="task")
    for name, user_task in progress:
        progress.set_description(f"{label}: {name}")
        try:
            if name in BILLBOARD_INSTRUCTIONS:
                instruction = _billboard_instruction(choice, instructions, name)
                results[name] = billboard_score(model, data_dir, name, instruction, batch_size)
            else:
                if user_task is not None:
                    task = user_task.task
                elif uses_local_data(name, data_dir):
                    task = local_task(name, data_dir)
                else:
                    task = mteb.get_task(name)
                outcome = mteb.evaluate(encoder, [task], cache=None, show_progress_bar=False).task_results[0]
                results[name] = {**_scores(outcome, task.metadata.main_score), **(user_task.notes if user_task else {})}
            logger.info("%s %s: %.4f", label, name, results[name]["main_score"])
        except Exception as exc:  # one failing task must not stop the others; its error is reported
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            if name in LOCAL_TASKS and not uses_local_data(name, data_dir):
                results[name]["error"] += (
                    f" (its local data was not found in {data_dir}: pass --data-dir or set INSTRUCTOR_EMBED_SHARED)"
                )
            logger.warning("%s failed on %s: %s", label, name, results[name]["error"])
            logger.debug(traceback.format_exc())
        report(results)
    return results


def default_data_dir() -> Path:
    """``$INSTRUCTOR_EMBED_SHARED/data``, else ``../shared/data`` from the current directory."""
    return Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", Path.cwd().parent / "shared")) / "data"


def _instructions(choice: str | None, model_name: str, user_tasks: Iterable[UserTask]) -> dict[str, Instruction]:
    """The chosen set, plus the local tasks' borrowed instructions and the spec files' own instructions
    (an entry in the chosen set wins); ``none`` means none at all."""
    chosen = resolve_instructions(choice, model_name)
    if choice == "none":
        return {}
    borrowed = {
        local: chosen[sampled.instructions_from]
        for local, sampled in SAMPLED_TASKS.items()
        if sampled.instructions_from in chosen
    }
    own = {task.name: task.instruction for task in user_tasks if task.instruction is not None}
    return {**own, **borrowed, **chosen}


def _billboard_instruction(choice: str | None, instructions: dict, name: str) -> str | None:
    if choice == "none":
        return None
    return instruction_for(instructions, name, "query") or BILLBOARD_INSTRUCTIONS[name]


def _task_entries(requested: tuple[str, ...]) -> list[str]:
    entries = []
    for entry in requested:
        entries += [*LOCAL_TASKS, *BILLBOARD_INSTRUCTIONS] if entry == "all-local" else [entry]
    if not entries:
        raise InputError("no tasks given")
    return list(dict.fromkeys(entries))


def _scores(outcome, main_metric: str) -> dict:
    """The main score at full precision (the metric itself where mteb reports it), the split, every metric."""
    split = next(iter(outcome.scores))
    first = outcome.scores[split][0]
    metrics = {k: v for k, v in first.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    main = metrics.get(main_metric, outcome.get_score())
    return {**metrics, "main_score": float(main), "split": split}


def _model_labels(models: tuple[str, ...]) -> list[str]:
    """A short, distinct, file-name-safe label per model: its last path part, with its parent's name where
    two models share a last part, numbered where that is not enough."""
    if len(set(models)) != len(models):
        raise InputError(f"a --model is given twice: {', '.join(sorted({m for m in models if models.count(m) > 1}))}")
    parts = [
        [re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in model.rstrip("/").split("/") if p] or ["model"]
        for model in models
    ]
    lasts = [p[-1] for p in parts]
    labels: list[str] = []
    for path in parts:
        base = "_".join(path[-2:]) if lasts.count(path[-1]) > 1 else path[-1]
        label, number = base, 1
        while label in labels:
            number += 1
            label = f"{base}-{number}"
        labels.append(label)
    return labels
