"""Texts longer than the model's window: split into overlapping token windows, each embedded with its row's
instruction (``chunk``), or their length-weighted mean (``mean``). ``truncate`` keeps the encoder's own cut.

A window holds as many of the text's tokens as fit beside the instruction and the special tokens (two tokens
are kept spare, since joining instruction and text can merge a token at the seam). Windows advance by their
length minus ``overlap`` tokens; each records the characters of the text it covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..tokenization import InstructionTokenizer, Item, tokenizer_lock

LONG_TEXT_MODES = ("truncate", "chunk", "mean")
_SPARE = 2


@dataclass(frozen=True)
class Chunk:
    """One window of one item: which item (``row``), its number within the item, its characters, what to embed."""

    row: int
    index: int
    char_start: int
    char_end: int
    tokens: int  # the text tokens it holds: its weight in a mean
    item: Item


def split_long(items: list[Item], tokenizer: InstructionTokenizer, overlap: int) -> list[Chunk]:
    """Every item as one chunk if it fits the tokenizer's window, else as overlapping windows."""
    window = tokenizer.max_length
    chunks: list[Chunk] = []
    for row, item in enumerate(items):
        text = item.text.strip()
        offset = len(item.text) - len(item.text.lstrip())
        overhead = instruction_overhead(tokenizer, item.instruction)
        budget = window - overhead - _SPARE
        if budget < 1:
            raise InputError(
                f"item {row}: its instruction leaves no room in the {window}-token window",
                index=row,
                param="instruction",
            )
        if overlap >= budget:
            raise InputError(
                f"chunk_overlap {overlap} must be smaller than the {budget} text tokens a window holds",
                param="chunk_overlap",
            )
        spans = _token_spans(tokenizer, text)
        if len(spans) + overhead <= window:
            chunks.append(Chunk(row, 0, offset, offset + len(text), len(spans), item))
            continue
        for number, start in enumerate(range(0, len(spans), budget - overlap)):
            end = min(start + budget, len(spans))
            first, last = spans[start][0], spans[end - 1][1]
            piece = Item(item.instruction, text[first:last])
            chunks.append(Chunk(row, number, offset + first, offset + last, end - start, piece))
            if end == len(spans):
                break
    return chunks


def mean_of_chunks(chunks: list[Chunk], vectors: torch.Tensor, rows: int) -> torch.Tensor:
    """Each row's chunk vectors averaged, weighted by the text tokens each holds, then scaled to unit length."""
    weights = torch.tensor([chunk.tokens for chunk in chunks], dtype=torch.float32).clamp(min=1)
    owners = torch.tensor([chunk.row for chunk in chunks])
    sums = torch.zeros((rows, vectors.shape[1]), dtype=torch.float32).index_add_(0, owners, vectors * weights[:, None])
    return torch.nn.functional.normalize(sums, dim=1)


def instruction_overhead(tokenizer: InstructionTokenizer, instruction: str | None) -> int:
    """Tokens besides the text's: the instruction's and the special ones."""
    return len(tokenizer.tokenize([Item(None, (instruction or "").strip())]).ids[0])


def _token_spans(tokenizer: InstructionTokenizer, text: str) -> list[tuple[int, int]]:
    """Character span of each of the text's tokens (no special tokens, no truncation)."""
    with tokenizer_lock(tokenizer.tokenizer):
        encoded = tokenizer.tokenizer(
            text.lower() if tokenizer.lowercase else text, add_special_tokens=False, return_offsets_mapping=True
        )
    return [tuple(span) for span in encoded["offset_mapping"] if span[1] > span[0]] or [(0, len(text))]


def chunk_table_columns(chunks: list[Chunk]) -> dict[str, np.ndarray]:
    return {
        "chunk_index": np.array([chunk.index for chunk in chunks], dtype=np.int32),
        "char_start": np.array([chunk.char_start for chunk in chunks], dtype=np.int64),
        "char_end": np.array([chunk.char_end for chunk in chunks], dtype=np.int64),
    }
