"""Evaluation while training: scores before, every ``eval_steps`` and at the end, and the best checkpoint.

Scores are ``evaluate``'s (mteb's main score per task, 0–1), appended to ``OUTPUT/eval_log.jsonl``; the
metric ``keep_best`` compares is ``average`` (of the tasks that scored) or one task's main score.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import torch

from .. import durable
from ..errors import InputError
from .config import TrainConfig

EVAL_LOG = "eval_log.jsonl"


class EvalTracker:
    """The run's evaluations; empty (and never due) without ``eval`` tasks."""

    def __init__(self, config: TrainConfig, output: Path):
        self.config, self.output = config, output
        self.jobs: dict = {}
        if config.eval:
            from ..evaluation.instruction_sets import resolve_instructions
            from ..evaluation.runner import read_tasks  # the eval extra, only when asked for

            with warnings.catch_warnings():  # evaluate runs the task versions it names; training says so once
                warnings.filterwarnings("ignore", message=r"The task '.*' is superseded by", category=UserWarning)
                self.jobs = read_tasks(config.eval)  # spec files checked before the model loads
            resolve_instructions(config.eval_instructions, str(config.model))  # and the instruction choice
        if config.keep_best not in (None, "average", *self.jobs):
            raise InputError(
                f"keep_best {config.keep_best!r} is neither 'average' nor an eval task ({', '.join(self.jobs)})",
                param="keep_best",
            )
        self.history: list[dict] = []  # {"step": N, "scores": {task: main score}, "metric": value}
        self.best: dict | None = None  # {"step": N, "metric": value}

    @property
    def best_step(self) -> int | None:
        return None if self.best is None else self.best["step"]

    @property
    def enabled(self) -> bool:
        return bool(self.jobs)

    def due(self, step: int, total_steps: int) -> bool:
        every = self.config.eval_steps or self.config.save_steps
        return self.enabled and (step % every == 0 or step == total_steps)

    def evaluate(self, model, step: int) -> dict:
        """Score ``model`` (the unwrapped INSTRUCTOR) now, log it, and return the record."""
        from ..evaluation.runner import score_model

        was_training = model.training
        model.eval()
        started = time.perf_counter()
        with torch.no_grad():
            results = score_model(
                model,
                self.jobs,
                model_name=str(self.config.model),
                instructions=self.config.eval_instructions,
                data_dir=Path(self.config.eval_data_dir) if self.config.eval_data_dir else None,
            )
        model.train(was_training)
        seconds = round(time.perf_counter() - started, 2)
        scores = {task: result.get("main_score") for task, result in results.items()}
        errors = {task: result["error"] for task, result in results.items() if "error" in result}
        record = {"step": step, "scores": scores, "metric": self.metric(scores), "seconds": seconds}
        if errors:
            record["errors"] = errors
        self.history.append(record)
        mode = "w" if step == 0 else "a"  # a new run's first evaluation: no lines of a run killed before training
        with open(self.output / EVAL_LOG, mode, encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return record

    def metric(self, scores: dict[str, float | None]) -> float | None:
        if self.config.keep_best not in (None, "average"):
            return scores.get(self.config.keep_best)
        scored = [value for value in scores.values() if value is not None]
        return sum(scored) / len(scored) if scored else None

    def consider(self, record: dict) -> bool:
        """Whether the checkpoint at ``record``'s step is the best so far (step 0, the base model, never is)."""
        value = record["metric"]
        if record["step"] == 0 or value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.best is None or value > self.best["metric"]:
            self.best = {"step": record["step"], "metric": value}
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best}

    def restore(self, state: dict, step: int) -> None:
        """After a resume from ``step``: the best so far, and the evaluations up to that step (later ones are
        dropped from the log, as they will be redone)."""
        self.best = state.get("best")
        log = self.output / EVAL_LOG
        if not log.exists():
            return
        kept = []
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # cut short by the kill
            if record.get("step", math.inf) <= step:
                kept.append(record)
        self.history = kept
        durable.write_text(log, "".join(json.dumps(record) + "\n" for record in kept), fault="eval_log")
