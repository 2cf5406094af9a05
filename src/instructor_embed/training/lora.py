"""LoRA through ``peft``: low-rank adapters on the encoder's linear layers, everything else frozen.

The adapters are merged into the weights whenever the model is saved (each ``checkpoint-N`` and the final
model), so every saved folder is a plain checkpoint that ``INSTRUCTOR(path)``, ``serve`` and InstructorEmbedding
1.0.1 load without ``peft``. The adapter alone is saved beside it too (``lora-adapter/``, a few MB), for users
who keep one base model and load adapters on top of it with ``peft.PeftModel.from_pretrained``.
"""

from __future__ import annotations

import copy
from pathlib import Path

from ..dependencies import require
from ..errors import InputError
from .config import TrainConfig

ADAPTER_FOLDER = "lora-adapter"


def add_lora(model, config: TrainConfig) -> None:
    """Freeze ``model`` and put LoRA adapters (rank ``config.lora_rank``) on its encoder's target modules."""
    peft = require("peft", "peft", "LoRA training (--lora-rank)")
    encoder = model.transformer.auto_model
    targets = config.lora_target_modules
    settings = peft.LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha or 2 * config.lora_rank,
        lora_dropout=config.lora_dropout,
        # none named: peft's choice for the architecture (BERT: query, value; T5: q, v)
        target_modules="all-linear" if targets == ("all-linear",) else (list(targets) or None),
    )
    model.requires_grad_(False)
    try:
        model.transformer.auto_model = peft.get_peft_model(encoder, settings)
    except ValueError as exc:  # unknown architecture without target modules, or modules that do not exist
        raise InputError(f"LoRA: {exc}", param="lora_target_modules") from exc
    if config.gradient_checkpointing:  # reentrant checkpointing (older transformers' default) needs inputs that
        # want a gradient, or the adapters behind the frozen embeddings get none
        encoder.enable_input_require_grads()


def has_lora(model) -> bool:
    return hasattr(model.transformer.auto_model, "merge_and_unload")


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)


def save_model(model, folder: Path) -> None:
    """Save ``model`` into ``folder`` as a plain checkpoint; a LoRA model's adapters are merged into a copy of its
    weights (the training model keeps them apart) and also saved alone in ``folder/lora-adapter``."""
    if not has_lora(model):
        model.save(folder)
        return
    merged = copy.deepcopy(model)
    merged.transformer.auto_model = merged.transformer.auto_model.merge_and_unload()
    merged.requires_grad_(True)
    merged.save(folder)
    model.transformer.auto_model.save_pretrained(folder / ADAPTER_FOLDER)
