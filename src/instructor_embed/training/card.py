"""The model card a run leaves in its output folder (``README.md``): what the model was trained from and on,
how, on what hardware, for how long, and how it scored before and after; with ``scores.png`` when it was
evaluated (and matplotlib is installed)."""

from __future__ import annotations

import platform
from pathlib import Path

from .. import durable
from ..evaluation.reports import comparison_table
from ..hardware import cpu_model, detect
from .config import TrainConfig
from .lora import ADAPTER_FOLDER, trainable_parameters

CARD = "README.md"
CHART = "scores.png"
_SETTINGS = (
    "max_steps",
    "epochs",
    "batch_size",
    "learning_rate",
    "warmup_ratio",
    "weight_decay",
    "cl_temperature",
    "max_seq_length",
    "query_max_length",
    "document_max_length",
    "max_grad_norm",
    "matryoshka_dims",
    "lora_rank",
    "mixed_precision",
    "gradient_checkpointing",
    "cache_chunk_size",
    "gather_across_processes",
    "instructions",
    "max_rows_per_task",
    "task_weights",
    "keep_best",
    "seed",
)


def score_columns(history: list[dict], best_step: int | None) -> dict[str, dict[str, dict]]:
    """The evaluations worth a column: before (step 0), after (the last), and the kept best where it differs;
    each {task: {"main_score": x}} (tasks that failed left out), as :mod:`..evaluation.reports` tables take."""
    by_step = {record["step"]: record for record in history}
    columns = {}
    for label, step in (("before", 0), ("after", max(by_step, default=None)), ("best", best_step)):
        if step is None or step not in by_step or (label == "best" and step == max(by_step)):
            continue
        if label == "after" and step == 0:
            continue
        scores = by_step[step]["scores"]
        columns[f"{label} (step {step})"] = {
            task: {"main_score": value} for task, value in scores.items() if value is not None
        }
    return columns


def scores_markdown(columns: dict[str, dict[str, dict]]) -> str:
    """:func:`score_columns` as a markdown table (× 100) with each column's average."""
    table = comparison_table(columns)
    averages = []
    for results in columns.values():
        scored = [result["main_score"] for result in results.values()]
        averages.append(f"**{100 * sum(scored) / len(scored):.2f}**" if scored else "—")
    return table + "| **average** | " + " | ".join(averages) + " |\n"


def hardware_line(device: str, processes: int) -> str:
    """The machine the run trained on, in words: the GPU's name, or the CPU's model and its vector extensions."""
    if device.startswith("cuda"):
        import torch

        where = f"{torch.cuda.get_device_name(device)} ({detect('cuda', torch.device(device).index).describe()})"
    else:
        model = cpu_model() or platform.processor() or platform.machine()
        where = f"{model}, {detect('cpu').describe()}"
    return f"{where}; {processes} process(es)"


def write_model_card(output: Path, config: TrainConfig, data, sampler, tracker, model, *, seconds: float) -> None:
    """``OUTPUT/README.md`` (and ``scores.png`` when there are scores)."""
    from .loop import task_mix

    mix = task_mix(data, sampler, config)
    lines = [
        "---",
        "library_name: instructor-embed",
        "tags: [sentence-embeddings, instructor, instructor-embed]",
        f"base_model: {config.model}",
        "---",
        "",
        f"# {output.resolve().name}",
        "",
        f"Fine-tuned from `{config.model}` with `instructor-embed train` in {_duration(seconds)}.",
        "",
        "## Use",
        "",
        "```python",
        "from instructor_embed import INSTRUCTOR",
        "",
        f'model = INSTRUCTOR("{output}")',
        "print(model.instructions)  # the instructions it was trained with (instructions.json)",
        'queries = model.encode_queries(["..."])  # the trained query instruction by default',
        'documents = model.encode_corpus(["..."])  # the trained document instruction by default',
        "```",
        "",
        f"Served with `instructor-embed serve --model {output}`, it uses the trained query instruction for requests "
        "that give none.",
        "",
        "## Data",
        "",
        "| task | format | file | rows | weight | batches per epoch | query instruction | document instruction |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for task, entry in mix["tasks"].items():
        sides = entry["instructions"]
        lines.append(
            f"| {task} | {entry['format']} | {_cell(entry['file'])} | {entry['rows']} | {entry['weight']:g} | "
            f"{entry['batches_per_epoch']} | {_cell(sides['query'])} | {_cell(sides['document'])} |"
        )
    if mix["skipped_rows"]:
        lines += ["", f"{mix['skipped_rows']} invalid rows were skipped (`--skip-invalid`)."]
    if mix["notes"]:
        lines += ["", *(f"- {note}" for note in mix["notes"])]
    columns = score_columns(tracker.history, tracker.best_step if config.keep_best else None)
    if columns:
        chosen = config.eval_instructions or "the set of the base model, if it has one"
        lines += [
            "",
            "## Scores",
            "",
            f"Main score × 100 of `evaluate` on: {', '.join(tracker.jobs)} (instructions: {chosen}).",
            "",
        ]
        lines.append(scores_markdown(columns).rstrip("\n"))
        if config.keep_best:
            lines += ["", f"The saved model is the checkpoint with the best {config.keep_best} (`--keep-best`)."]
        if _chart(output, tracker.history):
            lines += ["", f"![scores at every evaluation]({CHART})"]
        lines += ["", "Every evaluation: `eval_log.jsonl`."]
    lines += ["", "## Training", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {name} | {_cell(getattr(config, name))} |" for name in _SETTINGS]
    if config.lora_rank is not None:
        trainable, total = trainable_parameters(model)
        targets = ", ".join(config.lora_target_modules) or "peft's default for the architecture"
        lines += [
            "",
            f"LoRA (peft): rank {config.lora_rank}, alpha {config.lora_alpha or 2 * config.lora_rank:g}, dropout "
            f"{config.lora_dropout:g}, on {targets}: {trainable:,} of {total:,} parameters trained "
            f"({100 * trainable / total:.2f}%). The saved model has the adapters merged into its weights; the "
            f"adapter alone is in `{ADAPTER_FOLDER}/`.",
        ]
    device = str(next(model.parameters()).device)
    lines += [
        "",
        f"Hardware: {hardware_line(device, sampler.world_size)}. Time: {_duration(seconds)}.",
        "",
        "Command:",
        "",
        "```",
        config.command or "(called from Python: instructor_embed.training.train)",
        "```",
        "",
        "Loss per logging window: `train_log.jsonl`; the task mix: `task_mix.json`.",
    ]
    durable.write_text(output / CARD, "\n".join(lines) + "\n")


def _chart(output: Path, history: list[dict]) -> bool:
    """``scores.png``: each task's main score (× 100) and their average at every evaluated step."""
    try:
        import matplotlib
    except ImportError:  # matplotlib comes with the eval extra; the card's table says the same
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [record["step"] for record in history]
    tasks = list(dict.fromkeys(task for record in history for task in record["scores"]))
    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for task in tasks:
        values = [record["scores"].get(task) for record in history]
        axes.plot(steps, [float("nan") if v is None else 100 * v for v in values], marker="o", label=task)
    if len(tasks) > 1:
        scored = [[v for v in r["scores"].values() if v is not None] for r in history]
        average = [100 * sum(values) / len(values) if values else float("nan") for values in scored]
        axes.plot(steps, average, marker="s", color="black", linewidth=2, label="average")
    axes.set_xlabel("step")
    axes.set_ylabel("main score (×100)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output / CHART, dpi=120)
    plt.close(figure)
    return True


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s"


def _cell(value: object) -> str:
    if value is None or value == "":
        return "—"
    return str(value).replace("|", "\\|").replace("\n", " ")
