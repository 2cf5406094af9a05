"""The encode loop: token-length batching, the forward pass, order restore and output formats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .tokenization import Item

if TYPE_CHECKING:
    from .model import INSTRUCTOR


def encode_items(
    model: INSTRUCTOR,
    items: list[Item],
    *,
    batch_size: int,
    show_progress_bar: bool,
    output_value: str | None,
    device: torch.device,
) -> list[Any]:
    """Per-item outputs in input order: sentence-embedding tensors, token-embedding tensors or dicts."""
    ids, skips = model.instruction_tokenizer(items)
    # Longest first: similar lengths share a batch (little padding) and an out-of-memory shows at once.
    order = sorted(range(len(items)), key=lambda index: -len(ids[index]))
    results: list[Any] = [None] * len(items)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc="Batches", disable=not show_progress_bar):
        batch = order[start : start + batch_size]
        features = model.instruction_tokenizer.collate([ids[i] for i in batch], [skips[i] for i in batch])
        features = {name: tensor.to(device) for name, tensor in features.items()}
        with torch.no_grad():  # not inference_mode: its tensors cannot feed a trainable head afterwards
            features = model(features)
        for row, index in enumerate(batch):
            results[index] = _row_output(features, row, len(ids[index]), output_value)
    return results


def _row_output(features: dict[str, torch.Tensor], row: int, length: int, output_value: str | None) -> Any:
    if output_value == "sentence_embedding":
        return features["sentence_embedding"][row]
    if output_value == "token_embeddings":
        return features["token_embeddings"][row, :length]
    return {
        name: value[row, :length] if value.dim() > 1 and name != "sentence_embedding" else value[row]
        for name, value in features.items()
    }


def format_sentence_embeddings(
    embeddings: list[torch.Tensor],
    dimension: int,
    *,
    normalize: bool,
    convert_to_numpy: bool,
    convert_to_tensor: bool,
    device: torch.device,
) -> np.ndarray | torch.Tensor | list[torch.Tensor]:
    """Stack sentence embeddings as the original did: (n, d) array, stacked tensor, or list of tensors."""
    if embeddings:
        stacked = torch.stack(embeddings)  # (n, d)
    else:
        stacked = torch.zeros((0, dimension), device=device)
    if normalize:
        stacked = F.normalize(stacked, p=2, dim=1)
    if convert_to_tensor:
        return stacked
    if convert_to_numpy:
        return stacked.float().cpu().numpy()
    return list(stacked)
