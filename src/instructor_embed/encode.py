"""The encode loop: token-length batching, the forward pass, order restore and output formats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .quantization import quantize_embeddings
from .tokenization import Item

if TYPE_CHECKING:
    from .model import INSTRUCTOR


def plan_batches(lengths: list[int], batch_size: int, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Item indices per batch, longest first: similar lengths share a batch, so little is padding,
    and the largest batch runs first, so an out-of-memory error shows at once.
    A batch holds at most ``batch_size`` items and, if set, ``max_batch_tokens`` tokens with padding."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True):
        full = len(current) == batch_size or (
            max_batch_tokens is not None and current and (len(current) + 1) * lengths[current[0]] > max_batch_tokens
        )
        if full:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def encode_items(
    model: INSTRUCTOR,
    items: list[Item],
    *,
    batch_size: int,
    max_batch_tokens: int | None = None,
    show_progress_bar: bool = False,
    output_value: str | None = "sentence_embedding",
    device: torch.device,
) -> torch.Tensor | list[Any]:
    """Sentence embeddings as one ``(n, dim)`` float32 tensor in input order, or per-item outputs."""
    tokenizer = model.instruction_tokenizer
    ids, skips = tokenizer(items)
    batches = plan_batches([len(row) for row in ids], batch_size, max_batch_tokens)
    pieces: list[torch.Tensor] = []
    per_item: list[Any] = [None] * len(items)
    for batch in tqdm(batches, desc="Batches", disable=not show_progress_bar):
        features = tokenizer.collate([ids[i] for i in batch], [skips[i] for i in batch])
        features = {name: tensor.to(device) for name, tensor in features.items()}
        with torch.no_grad():  # not inference_mode: its tensors cannot feed a trainable head afterwards
            features = model(features)
        if output_value == "sentence_embedding":
            pieces.append(features["sentence_embedding"])
        else:
            for row, index in enumerate(batch):
                per_item[index] = _row_output(features, row, len(ids[index]), output_value)
    if output_value != "sentence_embedding":
        return per_item
    if not pieces:
        return torch.zeros((0, model.get_sentence_embedding_dimension()), device=device)
    in_batch_order = torch.cat(pieces)
    result = torch.empty_like(in_batch_order)
    result[torch.tensor([index for batch in batches for index in batch], device=device)] = in_batch_order
    return result


def _row_output(features: dict[str, torch.Tensor], row: int, length: int, output_value: str | None) -> Any:
    if output_value == "token_embeddings":
        return features["token_embeddings"][row, :length]
    return {
        name: value[row, :length] if value.dim() > 1 and name != "sentence_embedding" else value[row]
        for name, value in features.items()
    }


def format_sentence_embeddings(
    embeddings: torch.Tensor,
    *,
    truncate_dim: int | None,
    normalize: bool,
    precision: str,
    convert_to_numpy: bool,
    convert_to_tensor: bool,
) -> np.ndarray | torch.Tensor | list[torch.Tensor]:
    """As the original returned them: an (n, d) array, a stacked tensor, or a list of tensors."""
    if truncate_dim:
        embeddings = embeddings[:, :truncate_dim]
    if normalize:
        embeddings = F.normalize(embeddings, p=2, dim=1)
    if precision != "float32":
        quantized = quantize_embeddings(embeddings.float().cpu().numpy(), precision)
        if convert_to_tensor:
            return torch.from_numpy(quantized)
        return quantized if convert_to_numpy else list(torch.from_numpy(quantized))
    if convert_to_tensor:
        return embeddings
    if convert_to_numpy:
        return embeddings.float().cpu().numpy()
    return list(embeddings)
