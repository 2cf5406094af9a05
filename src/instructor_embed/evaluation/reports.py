"""Evaluation reports: per-model JSON and markdown, and for several models a comparison table and bar chart."""

from __future__ import annotations

import json
import math
from pathlib import Path

Results = dict[str, dict]  # task → {"main_score": float, ...metrics} or {"error": str}


def write_reports(folder: Path, label: str, results: Results) -> None:
    """``results.json`` ({task: {main_score, ...}}, mteb's scale; strict JSON: a metric that is not a number is
    ``null``) and ``results.md`` (scores × 100), headed by the model's short ``label``."""
    folder.mkdir(parents=True, exist_ok=True)
    strict = json.dumps(_without_nan(results), indent=2, allow_nan=False)
    (folder / "results.json").write_text(strict + "\n", encoding="utf-8")
    lines = [f"# {label}", "", "| task | main score (×100) |", "| --- | ---: |"]
    for task, scores in results.items():
        value = f"{100 * scores['main_score']:.2f}" if "main_score" in scores else f"failed: {scores['error']}"
        lines.append(f"| {task} | {value} |")
    scored = [s["main_score"] for s in results.values() if "main_score" in s]
    if scored:
        lines.append(f"| **average** | **{100 * sum(scored) / len(scored):.2f}** |")
    (folder / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _without_nan(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return value


def comparison_table(everything: dict[str, Results]) -> str:
    """A markdown table: one row per task, one column per model (scores × 100, "—" where a task failed)."""
    models = list(everything)
    lines = ["| task | " + " | ".join(models) + " |", "| --- |" + " ---: |" * len(models)]
    for task in _tasks(everything):
        cells = [_cell(everything[model].get(task, {})) for model in models]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_chart(everything: dict[str, Results], path: Path) -> None:
    """A grouped bar chart (PNG): main score × 100 per task, one bar per model; failed tasks have no bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, models = _tasks(everything), list(everything)
    width = 0.8 / len(models)
    lowest = min(
        (100 * r["main_score"] for res in everything.values() for r in res.values() if "main_score" in r), default=0
    )
    figure, axes = plt.subplots(figsize=(max(6.0, 0.9 * len(tasks) * max(1, len(models) / 2)), 4.5))
    for number, model in enumerate(models):
        scores = [100 * everything[model].get(task, {}).get("main_score", float("nan")) for task in tasks]
        positions = [index + (number - (len(models) - 1) / 2) * width for index in range(len(tasks))]
        axes.bar(positions, scores, width, label=model)
    axes.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    axes.set_ylabel("main score (×100)")
    axes.set_ylim(min(0.0, lowest - 5), 100)  # Pearson correlations (Billboard) can be negative
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _tasks(everything: dict[str, Results]) -> list[str]:
    return list(dict.fromkeys(task for results in everything.values() for task in results))


def _cell(scores: dict) -> str:
    return f"{100 * scores['main_score']:.2f}" if "main_score" in scores else "—"
