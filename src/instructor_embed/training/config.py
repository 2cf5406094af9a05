"""Settings of a training run (no torch here: the CLI reads the defaults without loading the training stack)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a run; defaults follow the paper's command (lr 2e-5, warmup 0.1, τ 0.01)."""

    model: (
        str  # starting checkpoint: Hub id or directory (e.g. hkunlp/instructor-base, sentence-transformers/gtr-t5-base)
    )
    data: str | tuple[str, ...] | None  # training files or folders (see training.data); None: only a task file
    output_dir: str
    max_steps: int | None = None  # stop after this many optimizer steps; else run `epochs`
    epochs: float = 1.0
    batch_size: int = 4  # per device
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    cl_temperature: float = 0.01
    max_seq_length: int | None = None  # tokens per text; default: the starting checkpoint's own (512 for INSTRUCTOR)
    seed: int = 42
    save_steps: int = 500
    logging_steps: int = 10
    resume: bool = False  # continue from the last checkpoint in output_dir
    skip_invalid: bool = False  # skip (and count) invalid rows instead of stopping
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"  # "no" or "bf16"
    cache_chunk_size: int | None = None  # GradCache: embed in chunks of this many texts; same loss, less memory
    gather_across_processes: bool = False  # negatives from every process's batch (same task at the same step)
    tensorboard: bool = False
    show_progress: bool = True
    instructions: str = "keep"  # "keep", "none" (train without any), or a JSON file: task -> instructions
    max_rows_per_task: int | None = None  # a seeded sample of at most this many rows per task
    task_weights: str | None = None  # "TASK=WEIGHT,...": a task's batches per epoch times its weight (default 1)
    tasks: str | None = None  # a JSON or YAML task file: task -> {"file", "format", "columns", instructions, "weight"}
    format: str | None = None  # the data files' format (training.formats); None: detected from the columns
    columns: str | None = None  # "anchor=question,positive=answer": the format's columns -> the files'
    instruction: str | None = None  # both sides' instruction for tasks that give none
    query_instruction: str | None = None  # the query side's (anchor, sentence1, text), over ``instruction``
    document_instruction: str | None = None  # the document side's (positive, negatives, sentence2)
    matryoshka_dims: tuple[int, ...] = ()  # Matryoshka: the loss averaged over these leading dimensions
    lora_rank: int | None = None  # LoRA adapters of this rank (peft), the rest frozen; None: full fine-tuning
    lora_alpha: float | None = None  # LoRA scaling numerator (default: 2 x lora_rank)
    lora_dropout: float = 0.1
    lora_target_modules: tuple[str, ...] = ()  # module names, or ("all-linear",); (): peft's for the architecture
    max_grad_norm: float | None = 1.0  # clip gradients to this norm (None: no clipping)
    query_max_length: int | None = None  # tokens per query-side text (default: max_seq_length)
    document_max_length: int | None = None  # tokens per document-side text (default: max_seq_length)
    eval: tuple[str, ...] = ()  # evaluate's task names or spec files, before, every eval_steps and at the end
    eval_steps: int | None = None  # default: at save_steps
    eval_data_dir: str | None = None  # local task data for named tasks (default: evaluate's)
    eval_instructions: str | None = None  # evaluate's --instructions: a built-in set, "none" or a JSON file
    keep_best: str | None = None  # "average" or a task name: the final model is the best evaluated checkpoint
    save_total_limit: int | None = None  # keep at most this many checkpoints (never removing the best)
    command: str | None = None  # how the run was started, for the model card (the CLI fills it)

    def data_entries(self) -> tuple[str, ...]:
        if self.data is None:
            return ()
        return (self.data,) if isinstance(self.data, str) else tuple(self.data)

    def weights(self) -> dict[str, float]:
        """``task_weights`` parsed; a malformed entry is named."""
        found: dict[str, float] = {}
        for entry in filter(None, (part.strip() for part in (self.task_weights or "").split(","))):
            name, _, weight = entry.rpartition("=")
            try:
                found[name] = float(weight)
            except ValueError:
                name = ""
            if not name:
                raise InputError(f"task_weights: {entry!r} is not TASK=WEIGHT", param="task_weights")
        return found

    def validate(self) -> None:
        for name in ("batch_size", "save_steps", "logging_steps", "eval_steps", "save_total_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}", param=name)
        if self.max_steps is not None and self.max_steps < 1:
            raise InputError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.epochs <= 0 or self.learning_rate <= 0 or self.cl_temperature <= 0:
            raise InputError("epochs, learning_rate and cl_temperature must be positive")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise InputError(f"mixed_precision must be 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}")
        for name in ("query_max_length", "document_max_length"):
            if getattr(self, name) is not None and getattr(self, name) < 2:
                raise InputError(f"{name} must be at least 2 tokens, got {getattr(self, name)}", param=name)
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.matryoshka_dims):
            raise InputError(f"matryoshka_dims must be positive integers, got {self.matryoshka_dims}")
        if self.lora_rank is not None and self.lora_rank < 1:
            raise InputError(f"lora_rank must be at least 1, got {self.lora_rank}", param="lora_rank")
        if self.lora_rank is None and (self.lora_alpha is not None or self.lora_target_modules):
            raise InputError("lora_alpha and lora_target_modules need lora_rank", param="lora_rank")
        if self.lora_alpha is not None and not self.lora_alpha > 0:
            raise InputError(f"lora_alpha must be positive, got {self.lora_alpha}", param="lora_alpha")
        if not 0 <= self.lora_dropout < 1:
            raise InputError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}", param="lora_dropout")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise InputError(f"max_grad_norm must be positive, got {self.max_grad_norm}", param="max_grad_norm")
        if not self.data_entries() and not self.tasks:
            raise InputError("no training data: give data files or folders, or a task file", param="data")
        if self.keep_best is not None:
            if not self.eval:
                raise InputError("keep_best needs eval tasks to compare checkpoints by", param="keep_best")
            if (self.eval_steps or self.save_steps) % self.save_steps:
                raise InputError(
                    f"keep_best needs eval_steps ({self.eval_steps}) to be a multiple of save_steps "
                    f"({self.save_steps}), so that every evaluated step has a checkpoint to keep",
                    param="eval_steps",
                )
        if self.cache_chunk_size is not None and self.cache_chunk_size < 1:
            raise InputError(f"cache_chunk_size must be at least 1, got {self.cache_chunk_size}")
        if self.max_rows_per_task is not None and self.max_rows_per_task < 1:
            raise InputError(f"max_rows_per_task must be at least 1, got {self.max_rows_per_task}")
        self.weights()  # names a malformed entry before anything loads
