"""The encode engine: the steps that every caller runs — ``INSTRUCTOR.encode``, the CLI, evaluation, and the
server's batcher or a bulk job that drive the steps themselves.

    engine.tokenize(items)              → Tokenized: token ids, instruction skips, token counts per item
    plan_batches(token_counts, ...)     → item indices per batch (padding-aware, see batching.py), longest first
    engine.forward(tokenized.take(b))   → the model's outputs for one batch (``sentence_embedding`` (B, D), ...)
    engine.run(tokenized, ...)          → all of the above, each batch scattered to its input positions
    postprocess(embeddings, ...)        → truncated, normalised and/or quantized vectors

Thread safety: ``tokenize`` is safe from several threads (the tokenizer is used under a lock); ``forward``
only reads the weights, so several threads may run it at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .batching import batch_overhead, plan_batches
from .errors import InputError
from .quantization import quantize_embeddings
from .tokenization import InstructionTokenizer, Item, Tokenized

Features = dict[str, torch.Tensor]
INTEGER_PRECISIONS = ("int8", "uint8")


def module_device(model: nn.Module) -> torch.device:
    """Where a module's weights are (CPU for one without torch weights, e.g. an ONNX Runtime encoder)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


class Engine:
    """The encode path of one model, in explicit steps (see the module docstring).

    Args:
        model: the stages as one module: features dict in (``input_ids``, ``attention_mask``, ``pooling_mask``),
            features dict out (``token_embeddings``, ``sentence_embedding``).
        tokenizer: the model's :class:`InstructionTokenizer`.
        dimension: the size of ``sentence_embedding``.
    """

    def __init__(self, model: nn.Module, tokenizer: InstructionTokenizer, dimension: int):
        self.model = model
        self.tokenizer = tokenizer
        self.dimension = dimension

    @property
    def device(self) -> torch.device:
        return module_device(self.model)

    def tokenize(self, items: Sequence[Item], max_length: int | None = None) -> Tokenized:
        """Token ids, instruction skips and token counts of ``items`` (thread-safe); ``max_length`` as in
        :meth:`InstructionTokenizer.tokenize`."""
        return self.tokenizer.tokenize(items, max_length)

    def forward(self, batch: Tokenized) -> Features:
        """Run the model on one batch, padded here; the outputs stay on the model's device."""
        features = {name: tensor.to(self.device) for name, tensor in self.tokenizer.collate(batch).items()}
        with torch.no_grad():  # not inference_mode: its tensors cannot feed a trainable head afterwards
            return self.model(features)

    def run(
        self,
        tokenized: Tokenized,
        *,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        output_value: str | None = "sentence_embedding",
        output_device: str | torch.device = "cpu",
        show_progress_bar: bool = False,
        on_batch: Callable[[int], object] | None = None,
    ) -> torch.Tensor | list[Any]:
        """Every item's output, in input order: an ``(n, dimension)`` float32 tensor on ``output_device`` for
        ``"sentence_embedding"``, else one output per item (see ``INSTRUCTOR.encode``). Each batch's sentence
        embeddings go to their rows of the result as soon as the batch is done, so the model's device holds
        one batch at a time. ``on_batch(n)`` is called after each batch with its number of items."""
        overhead = batch_overhead(self.device.type)
        batches = plan_batches(tokenized.token_counts, batch_size, max_batch_tokens, overhead)
        if output_value == "sentence_embedding":
            result = torch.empty((len(tokenized), self.dimension), dtype=torch.float32, device=output_device)
        else:
            per_item: list[Any] = [None] * len(tokenized)
        for batch in tqdm(batches, desc="Batches", disable=not show_progress_bar):
            features = self.forward(tokenized.take(batch))
            if output_value == "sentence_embedding":
                positions = torch.tensor(batch, device=result.device)
                result[positions] = features["sentence_embedding"].to(result.device, torch.float32)
            else:
                for row, index in enumerate(batch):
                    per_item[index] = _row_output(features, row, len(tokenized.ids[index]), output_value)
            if on_batch is not None:
                on_batch(len(batch))
        return result if output_value == "sentence_embedding" else per_item


def _row_output(features: Features, row: int, length: int, output_value: str | None) -> Any:
    if output_value == "token_embeddings":
        return features["token_embeddings"][row, :length]
    return {
        name: value[row, :length] if value.dim() > 1 and name != "sentence_embedding" else value[row]
        for name, value in features.items()
    }


def postprocess(
    embeddings: torch.Tensor,
    *,
    truncate_dim: int | None = None,
    normalize: bool = False,
    precision: str = "float32",
    ranges: np.ndarray | None = None,
) -> torch.Tensor | np.ndarray:
    """Vectors as a caller asked for them: the first ``truncate_dim`` dimensions, unit length if ``normalize``,
    then ``precision``: float32 (a tensor, where ``embeddings`` are) or quantized (a NumPy array).

    ``int8``/``uint8`` need fixed per-dimension ``ranges`` (a ``(2, dim)`` array of minima and maxima, e.g.
    :func:`~instructor_embed.quantization.quantization_ranges` of calibration embeddings): ranges taken from
    whatever vectors are at hand would differ between batches, requests and shards, so the same text would
    get different codes.
    """
    if truncate_dim:
        embeddings = embeddings[:, :truncate_dim]
    if normalize:
        embeddings = F.normalize(embeddings, p=2, dim=1)
    if precision == "float32":
        return embeddings
    if precision in INTEGER_PRECISIONS and ranges is None:
        raise InputError(
            f"precision={precision!r} needs fixed quantization ranges here: ranges computed from each batch, "
            "request or shard would differ between them. Pass ranges=quantization_ranges(calibration_embeddings) "
            "(per-dimension minima and maxima of a few thousand representative float32 embeddings)",
            param="ranges",
        )
    return quantize_embeddings(embeddings.float().cpu().numpy(), precision, ranges=ranges)
