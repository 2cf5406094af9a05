"""The training run: accelerate-driven, task-homogeneous, resumable.

``train(TrainConfig(...))`` runs unchanged on CPU, one GPU, or many processes and nodes under
``accelerate launch`` / ``torchrun`` (and DeepSpeed/FSDP through an accelerate config). accelerate
prepares the model, optimizer and scheduler; the DataLoader is deliberately *not* prepared, because
accelerate would re-shard its batches and break the per-rank single-task slicing of
:class:`TaskBatchSampler`.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader

from .. import durable
from ..checkpoint import file_digest
from ..dependencies import require
from ..errors import InputError
from ..spec import ModelSpec
from ..tokenization import InstructionTokenizer, Item, Tokenized
from .config import TrainConfig
from .data import Example, TrainingData, load_training_data, prepare, sources_from
from .formats import LOSS_OF_FORMAT, Sides
from .lora import add_lora, save_model
from .loss import (
    cosent_loss,
    gathered_cosent_loss,
    gathered_instructor_contrastive_loss,
    instructor_contrastive_loss,
)
from .mixed_precision import keep_float32_modules
from .sampler import TaskBatchSampler
from .tracking import EvalTracker


class Layout(NamedTuple):
    """How a batch's rows are laid out: ``rows`` queries, ``rows`` positives, then ``negatives`` hard
    negatives; ``loss``: which loss the task's format takes (:data:`.formats.LOSS_OF_FORMAT`)."""

    loss: str
    rows: int
    negatives: int


class Collator:
    """Examples of one task → one batch: the features of all queries, then all positives, then every hard
    negative (so that the model runs once per step, as DDP expects; instructions excluded from pooling), their
    :class:`Layout`, and the pairs' scores (CoSENT) or None. Query-side texts are cut at ``query_max_length``
    tokens, documents at ``document_max_length`` (None: the model's maximum)."""

    def __init__(
        self,
        tokenizer: InstructionTokenizer,
        formats: dict[str, str],
        query_max_length: int | None = None,
        document_max_length: int | None = None,
    ):
        self.tokenizer, self.formats = tokenizer, formats
        self.query_max_length, self.document_max_length = query_max_length, document_max_length

    def __call__(self, examples: list[Example]) -> tuple[dict[str, torch.Tensor], Layout, torch.Tensor | None]:
        queries = [Item(*example.query) for example in examples]
        documents = [Item(*example.pos) for example in examples]
        documents += [Item(*negative) for example in examples for negative in example.negatives]
        features = self.tokenizer.collate(
            Tokenized.concat(
                [
                    self.tokenizer.tokenize(queries, self.query_max_length),
                    self.tokenizer.tokenize(documents, self.document_max_length),
                ]
            )
        )
        loss = LOSS_OF_FORMAT[self.formats[examples[0].task]]
        layout = Layout(loss, len(examples), len(documents) - len(examples))
        scores = torch.tensor([example.score for example in examples]) if loss == "cosent" else None
        return features, layout, scores


def train(config: TrainConfig) -> Path:
    """Train and return the output directory, which then holds the final model (``INSTRUCTOR(output_dir)``, with
    the ``instructions.json`` it was trained with), its model card ``README.md``, ``checkpoint-N`` folders,
    ``train_log.jsonl``, ``task_mix.json`` and, with ``eval``, ``eval_log.jsonl`` and ``scores.png``."""
    accelerate = require("train", "accelerate", "training")
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    config.validate()
    output = Path(config.output_dir)
    if config.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise InputError("mixed_precision fp16 needs a CUDA GPU; on CPU use 'bf16' or 'no'", param="mixed_precision")
    accelerator = accelerate.Accelerator(
        cpu=not torch.accelerator.is_available(),  # accelerate runs several CPU processes (gloo) only when told
        mixed_precision=config.mixed_precision,
        log_with="tensorboard" if config.tensorboard else None,
        project_dir=str(output),
    )
    accelerate.utils.set_seed(config.seed)
    _check_output_dir(output, config.resume)  # on every rank, before anything loads: no rank waits on another
    tracker = EvalTracker(config, output)  # eval specs checked before the data and the model load
    started = time.time()
    data, weights = load_data(config)
    sampler = TaskBatchSampler(
        data.tasks,
        config.batch_size,
        seed=config.seed,
        world_size=accelerator.num_processes,
        rank=accelerator.process_index,
        weights=weights,
        groups=data.groups(),
    )
    if accelerator.is_main_process:
        _write_task_mix(output, data, sampler, config)
    spec = ModelSpec(config.model, device=str(accelerator.device), max_seq_length=config.max_seq_length)
    model = spec.load()  # float32 torch: training needs the plain weights
    model.instructions = trained_instructions(data)
    _check_matryoshka(config, model.get_sentence_embedding_dimension())
    if config.gradient_checkpointing:
        model.transformer.auto_model.gradient_checkpointing_enable()
    pooler = getattr(model.transformer.auto_model, "pooler", None)
    if pooler is not None:  # BERT-style [CLS] head: INSTRUCTOR pools itself, so it never gets a gradient
        pooler.requires_grad_(False)
    if config.lora_rank is not None:
        add_lora(model, config)
    if config.mixed_precision == "fp16":  # T5's wo in float32, as transformers keeps it when loading in float16
        keep_float32_modules(model.transformer.auto_model, accelerator.device.type)
    collator = Collator(model.instruction_tokenizer, data.formats, config.query_max_length, config.document_max_length)
    loader = DataLoader(data.examples, batch_sampler=sampler, collate_fn=collator)
    total_steps = config.max_steps or math.ceil(config.epochs * len(sampler))
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if config.tensorboard:
        accelerator.init_trackers("instructor-embed")

    if accelerator.is_main_process and output.is_dir():
        _remove_partials(output)
    step = _resume(accelerator, output, sampler, tracker) if config.resume else 0
    if step == 0:
        _evaluate(accelerator, model, tracker, 0)  # the starting model: the "before" of the model card
    model.train()
    progress = tqdm(total=total_steps, initial=step, disable=not (config.show_progress and accelerator.is_main_process))
    window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
    resumed_mid_epoch = config.resume and step > 0
    while step < total_steps:
        if not resumed_mid_epoch:
            sampler.set_epoch(sampler.epoch + (1 if step > 0 else 0))
        resumed_mid_epoch = False
        for features, layout, scores in loader:
            features = {name: tensor.to(accelerator.device) for name, tensor in features.items()}
            scores = None if scores is None else scores.to(accelerator.device)
            loss = _step(model, features, layout, scores, config, accelerator)
            if config.max_grad_norm is not None:
                accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            progress.update(1)
            window_loss += loss
            window_steps += 1
            if step % config.logging_steps == 0 or step == total_steps:
                mean_loss = accelerator.reduce(
                    torch.tensor(window_loss / window_steps, device=accelerator.device), "mean"
                )
                elapsed = time.perf_counter() - window_start
                record = {
                    "step": step,
                    "epoch": sampler.epoch,
                    "task": sampler.last_task,
                    "loss": round(float(mean_loss), 6),
                    "lr": scheduler.get_last_lr()[0],
                    "examples_per_s": round(window_steps * config.batch_size * accelerator.num_processes / elapsed, 2),
                }
                _log(accelerator, output, record)
                window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
            if tracker.due(step, total_steps):
                record = _evaluate(accelerator, model, tracker, step)
                if record is not None and (step % config.save_steps == 0 or step == total_steps):
                    tracker.consider(record)  # a checkpoint is saved at this step: a candidate for keep_best
            if step % config.save_steps == 0 or step == total_steps:
                _save_checkpoint(accelerator, model, output, step, sampler, config, tracker)
                if accelerator.is_main_process and config.save_total_limit:
                    _rotate_checkpoints(output, config.save_total_limit, keep=tracker.best_step)
            if step >= total_steps:
                break
    progress.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        best = tracker.best_step if config.keep_best else None
        _save_final(final, output, best_checkpoint=None if best in (None, step) else output / f"checkpoint-{best}")
        from .card import write_model_card

        write_model_card(output, config, data, sampler, tracker, final, seconds=time.time() - started)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return output


def load_data(config: TrainConfig) -> tuple[TrainingData, dict[str, float]]:
    """The run's examples (read, checked, instructions applied, capped per task) and the task weights (a task
    file's, then ``task_weights`` over them)."""
    sources = sources_from(config.data_entries(), tasks_file=config.tasks, fmt=config.format, columns=config.columns)
    both = config.instruction or ""
    defaults = Sides(config.query_instruction or both, config.document_instruction or both)
    data = load_training_data(sources, skip_invalid=config.skip_invalid, defaults=defaults, seed=config.seed)
    data = prepare(data, instructions=config.instructions, max_rows_per_task=config.max_rows_per_task, seed=config.seed)
    weights = {source.task: source.weight for source in sources if source.task and source.weight is not None}
    return data, {**weights, **config.weights()}


def trained_instructions(data: TrainingData):
    """The instructions the model is trained with, per task, as saved beside it (``instructions.json``)."""
    from ..instructions import InstructionPair, TrainedInstructions

    return TrainedInstructions(
        {task: InstructionPair(sides["query"], sides["document"]) for task, sides in data.instructions().items()}
    )


def _evaluate(accelerator, model, tracker: EvalTracker, step: int) -> dict | None:
    """Score the model on the main process (the others wait); the record, on the main process."""
    if not tracker.enabled:
        return None
    record = tracker.evaluate(accelerator.unwrap_model(model), step) if accelerator.is_main_process else None
    accelerator.wait_for_everyone()
    return record


def embedding_loss(embeddings: torch.Tensor, layout: Layout, scores: torch.Tensor | None, config: TrainConfig):
    """The batch's loss from its embeddings (laid out as :class:`Layout` says), gathered across processes
    when ``gather_across_processes``; with ``matryoshka_dims``, the mean of the losses on each number of leading
    dimensions (the losses compare by cosine, so a truncated vector is re-normalised), so that ``truncate_dim``
    loses little."""
    if config.matryoshka_dims:
        losses = [_loss(embeddings[:, :dims], layout, scores, config) for dims in config.matryoshka_dims]
        return torch.stack(losses).mean()
    return _loss(embeddings, layout, scores, config)


def _loss(embeddings: torch.Tensor, layout: Layout, scores: torch.Tensor | None, config: TrainConfig):
    rows = layout.rows
    query, positive = embeddings[:rows], embeddings[rows : 2 * rows]
    if layout.loss == "cosent":
        cosent = gathered_cosent_loss if config.gather_across_processes else cosent_loss
        return cosent(query, positive, scores)
    negative = embeddings[2 * rows : 2 * rows + layout.negatives]
    contrastive = (
        gathered_instructor_contrastive_loss if config.gather_across_processes else instructor_contrastive_loss
    )
    return contrastive(query, positive, negative, config.cl_temperature, in_batch_positives=layout.loss == "in-batch")


def _check_matryoshka(config: TrainConfig, dimension: int) -> None:
    too_wide = [dims for dims in config.matryoshka_dims if dims > dimension]
    if too_wide:
        raise InputError(
            f"matryoshka_dims {too_wide} exceed the model's {dimension} dimensions", param="matryoshka_dims"
        )


def _step(model, features: dict[str, torch.Tensor], layout: Layout, scores, config: TrainConfig, accelerator) -> float:
    """One forward/backward over a batch (queries, positives, hard negatives); returns the loss."""
    if config.cache_chunk_size is None:
        loss = embedding_loss(model(features)["sentence_embedding"], layout, scores, config)
        accelerator.backward(loss)
        return loss.item()
    return _cached_step(model, features, layout, scores, config, accelerator)


def _cached_step(model, features: dict[str, torch.Tensor], layout: Layout, scores, config, accelerator) -> float:
    """GradCache: embed every chunk without a graph, take the loss's gradient with respect to the embeddings
    (across processes too, when gathered: the gather's backward sends each process its rows' gradients), then
    re-run each chunk with a graph (same dropout, from the saved RNG state) and backpropagate that gradient.
    The gradients equal the uncached step's; memory holds one chunk's activations at a time."""
    chunks = _chunks(features, config.cache_chunk_size)
    states, pieces = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(_rng_state(accelerator.device))
            pieces.append(model(dict(chunk))["sentence_embedding"])
    embeddings = torch.cat(pieces).detach().requires_grad_()
    loss = embedding_loss(embeddings, layout, scores, config)
    loss.backward()
    for index, chunk in enumerate(chunks):
        size = config.cache_chunk_size
        gradient = embeddings.grad[index * size : (index + 1) * size]
        last = index == len(chunks) - 1
        with nullcontext() if last else accelerator.no_sync(model), _replayed_rng(states[index]):
            rerun = model(dict(chunk))["sentence_embedding"]
            accelerator.backward((rerun * gradient).sum())
    return loss.item()


def _chunks(features: dict[str, torch.Tensor], size: int) -> list[dict[str, torch.Tensor]]:
    count = features["input_ids"].shape[0]
    return [{k: v[start : start + size] for k, v in features.items()} for start in range(0, count, size)]


def _rng_state(device: torch.device) -> dict:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


class _replayed_rng:
    """Run a block with the RNG as it was saved, then put the current state back."""

    def __init__(self, state: dict):
        self.state = state

    def __enter__(self):
        self.saved = {"cpu": torch.get_rng_state()}
        torch.set_rng_state(self.state["cpu"])
        if "cuda" in self.state:
            self.saved["cuda"] = torch.cuda.get_rng_state()
            torch.cuda.set_rng_state(self.state["cuda"])

    def __exit__(self, *exc):
        torch.set_rng_state(self.saved["cpu"])
        if "cuda" in self.saved:
            torch.cuda.set_rng_state(self.saved["cuda"])


def _log(accelerator, output: Path, record: dict) -> None:
    accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        with open(output / "train_log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


# .final.partial, .checkpoint-N.partial, and the .NAME.RANDOM.old folders a replace sets aside before removing
_PARTIAL = re.compile(r"\.final\.partial|\.checkpoint-\d+\.partial|\.(checkpoint-\d+|\d+_\w+)\.[0-9a-f]{8}\.old")
INVENTORY = "checkpoint.json"  # written last into a checkpoint: its files with their sizes and digests


def _save_checkpoint(
    accelerator, model, output: Path, step: int, sampler: TaskBatchSampler, config, tracker: EvalTracker
) -> None:
    """Write ``checkpoint-N`` completely under a temporary name, list its files in ``checkpoint.json``, then
    publish it durably (every file fsynced, one rename): a run killed while saving never leaves a checkpoint
    that resume would pick, and one damaged later is recognised by its inventory."""
    final = output / f"checkpoint-{step}"
    partial = output / f".checkpoint-{step}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial / "training_state"))
    if accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), partial)  # loadable as INSTRUCTOR(checkpoint-N)
        state = {"step": step, "sampler": sampler.state_dict(), "config": asdict(config), "eval": tracker.state_dict()}
        (partial / "trainer_state.json").write_text(json.dumps(state, indent=2))
        (partial / INVENTORY).write_text(json.dumps(_inventory(partial), indent=1))
        durable.publish_folder(partial, final, fault="checkpoint")
    accelerator.wait_for_everyone()


def task_mix(data: TrainingData, sampler: TaskBatchSampler, config: TrainConfig) -> dict:
    """What the run trains on: each task's file, format, rows, weight, batches per epoch and instructions."""
    batches = sampler.batches_per_epoch()
    instructions = data.instructions()
    return {
        "data": list(config.data_entries()),
        "tasks_file": config.tasks,
        "instructions": config.instructions,
        "max_rows_per_task": config.max_rows_per_task,
        "notes": data.notes,
        "skipped_rows": len(data.skipped),
        "tasks": {
            task: {
                "file": data.files.get(task),
                "format": data.formats.get(task),
                "rows": len(indices),
                "weight": sampler.weights.get(task, 1.0),
                "batches_per_epoch": batches[task],
                "instructions": instructions[task],
            }
            for task, indices in sorted(data.tasks.items())
        },
    }


def _write_task_mix(output: Path, data: TrainingData, sampler: TaskBatchSampler, config: TrainConfig) -> None:
    """``task_mix.json``: :func:`task_mix`, written before training starts."""
    mix = task_mix(data, sampler, config)
    output.mkdir(parents=True, exist_ok=True)
    durable.write_text(output / "task_mix.json", json.dumps(mix, indent=1) + "\n")


_TRAINING_FILES = ("training_state", "trainer_state.json", INVENTORY)  # a checkpoint's files that are not the model


def _save_final(model, output: Path, best_checkpoint: Path | None = None) -> None:
    """The trained model (or, with ``keep_best``, the best checkpoint's) into ``output`` (``INSTRUCTOR(output)``
    loads it): written whole into a partial folder, then its files published into ``output`` one rename each,
    ``modules.json`` last. A kill while saving leaves the partial folder (removed by the next run), never a
    writer's temporary file beside the checkpoints."""
    partial = output / ".final.partial"
    shutil.rmtree(partial, ignore_errors=True)
    if best_checkpoint is None:
        save_model(model, partial)
    else:
        shutil.copytree(best_checkpoint, partial, ignore=shutil.ignore_patterns(*_TRAINING_FILES))
    durable.publish_into(partial, output, last="modules.json")


def _rotate_checkpoints(output: Path, limit: int, keep: int | None) -> None:
    """Remove the oldest checkpoints beyond the newest ``limit``, never checkpoint-``keep`` (the best so far)."""
    found = _checkpoint_folders(output)
    kept = set(found[:limit])
    if keep is not None:
        kept.add(output / f"checkpoint-{keep}")
    for path in found:
        if path not in kept:
            shutil.rmtree(path, ignore_errors=True)


def _remove_partials(output: Path) -> None:
    """What killed saves left behind: partial checkpoint and model folders, and replaced checkpoints not yet
    removed. Only these names of the run's own are touched."""
    for path in output.glob(".*"):
        name = path.name
        if path.is_dir() and (
            name == ".final.partial" or (name.startswith(".checkpoint-") and name.endswith((".partial", ".old")))
        ):
            shutil.rmtree(path, ignore_errors=True)


def _inventory(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): file_digest(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != INVENTORY
    }


def _damage(checkpoint: Path) -> str | None:
    """What is wrong with a checkpoint folder, or None when it is complete. Folders from before inventories
    (instructor-embed 0.1) count as complete when they hold their trainer state."""
    if not (checkpoint / "trainer_state.json").is_file():
        return "no trainer_state.json"
    if not (checkpoint / INVENTORY).is_file():
        return None
    try:
        recorded = json.loads((checkpoint / INVENTORY).read_text())
    except ValueError:
        return f"{INVENTORY} is not valid JSON"
    for name, digest in recorded.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if file_digest(path) != digest:
            return f"{name} differs from what was saved"
    return None


def _checkpoint_folders(output: Path) -> list[Path]:
    """The ``checkpoint-N`` folders, newest first."""
    return sorted(
        (p for p in output.glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()),
        key=lambda p: int(p.name.split("-", 1)[1]),
        reverse=True,
    )


def _complete_checkpoints(output: Path) -> list[Path]:
    """The complete ``checkpoint-N`` folders, newest first; a damaged one is skipped with a warning naming it."""
    complete = []
    for checkpoint in _checkpoint_folders(output):
        damage = _damage(checkpoint)
        if damage is None:
            complete.append(checkpoint)
        elif (checkpoint / "trainer_state.json").exists():
            warnings.warn(f"--resume: {checkpoint} is damaged ({damage}); it is skipped", UserWarning, stacklevel=3)
    return complete


def _check_output_dir(output: Path, resume: bool) -> None:
    """A new run needs a folder without a run in it; ``--resume`` needs a complete checkpoint there."""
    if not resume and (output / "train_log.jsonl").exists():
        raise InputError(
            f"{output} already holds a run; pass --resume to continue it or choose another folder", param="output_dir"
        )
    if resume and not _complete_checkpoints(output):
        raise InputError(f"--resume: no complete checkpoint in {output}", param="resume")


def _resume(accelerator, output: Path, sampler: TaskBatchSampler, tracker: EvalTracker) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # _check_output_dir already warned about each damaged checkpoint
        latest = _complete_checkpoints(output)[0]
    state = json.loads((latest / "trainer_state.json").read_text())
    accelerator.load_state(str(latest / "training_state"))
    sampler.load_state_dict(state["sampler"])
    if accelerator.is_main_process:
        tracker.restore(state.get("eval", {}), state["step"])
    if accelerator.is_main_process:  # drop log lines written after the checkpoint, which will be redone
        log = output / "train_log.jsonl"
        if log.exists():
            kept = [line for line in log.read_text().splitlines() if _logged_step(line) <= state["step"]]
            durable.write_text(log, "".join(line + "\n" for line in kept), fault="train_log")
    return state["step"]


def _logged_step(line: str) -> float:
    """A log line's step; a line cut short by a kill counts as after every checkpoint (it is dropped)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")
