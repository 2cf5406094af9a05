"""Validate what callers pass to ``encode`` and turn it into :class:`~instructor_embed.tokenization.Item` s."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

from .errors import InputError, InputTypeError
from .instructions import looks_like_instruction
from .tokenization import Item

OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", None)
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")

_EXPECTED = "a text string, an [instruction, text] pair or an [instruction, text, label] triple"


def parse_sentences(sentences: object) -> tuple[list[Item], bool]:
    """Items to embed, and whether a single bare string was given (then one vector is returned)."""
    if isinstance(sentences, str):
        return [Item(None, sentences)], True
    if sentences is None or isinstance(sentences, (bytes, dict)) or not isinstance(sentences, Iterable):
        raise InputTypeError(
            f"sentences must be a string or a list of ({_EXPECTED}), not {type(sentences).__name__}",
            param="sentences",
        )
    items = [parse_item(index, item) for index, item in enumerate(sentences)]
    if len(items) == 2 and all(i.instruction is None for i in items) and looks_like_instruction(items[0].text):
        warnings.warn(
            f"encode got two strings and the first, {items[0].text!r}, looks like an instruction: both are embedded "
            "as separate texts without instructions. To embed a text with an instruction, nest the pair: "
            "encode([[instruction, text]])",
            UserWarning,
            stacklevel=3,
        )
    return items, False


def parse_item(index: int, item: object) -> Item:
    """One input item (an :class:`Item` passes as it is); errors name its index."""
    if isinstance(item, Item):
        return item
    if isinstance(item, str):
        return Item(None, item)
    if isinstance(item, (list, tuple)):
        if len(item) not in (2, 3):
            raise InputError(
                f"Item {index} has {len(item)} elements; expected {_EXPECTED}", param="sentences", index=index
            )
        instruction, text = item[0], item[1]
        if not isinstance(instruction, str):
            raise InputTypeError(
                f"Item {index}: the instruction (element 0) must be a string, not {type(instruction).__name__}",
                param="instruction",
                index=index,
            )
        if not isinstance(text, str):
            raise InputTypeError(
                f"Item {index}: the text (element 1) must be a string, not {type(text).__name__}",
                param="text",
                index=index,
            )
        return Item(instruction, text)
    raise InputTypeError(f"Item {index} is {_describe(item)}; expected {_EXPECTED}", param="sentences", index=index)


def check_encode_options(batch_size: object, output_value: object, max_batch_tokens: object, precision: object) -> None:
    check_positive_int("batch_size", batch_size)
    if max_batch_tokens is not None:
        check_positive_int("max_batch_tokens", max_batch_tokens)
    if output_value not in OUTPUT_VALUES:
        raise InputError(f"output_value must be one of {OUTPUT_VALUES}, got {output_value!r}", param="output_value")
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}", param="precision")


def check_truncate_dim(truncate_dim: object) -> int | None:
    if truncate_dim is not None:
        check_positive_int("truncate_dim", truncate_dim)
    return truncate_dim


def check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{name} must be an int, not {type(value).__name__}", param=name)
    if value < 1:
        raise InputError(f"{name} must be at least 1, got {value}", param=name)


def check_device(device: str | torch.device) -> torch.device:
    """A device this machine has, or an error saying why not (before any model loads)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"device {device!r} is not a device name like 'cpu', 'cuda' or 'cuda:1'", param="device"
        ) from exc
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            built = "with" if torch.backends.cuda.is_built() else "without"
            raise InputError(
                f"device {device!r}: CUDA is not available here (torch {torch.__version__} was built {built} CUDA); "
                "use device='cpu'",
                param="device",
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise InputError(
                f"device {device!r}: there are only {torch.cuda.device_count()} CUDA device(s)", param="device"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r}: MPS is not available here; use device='cpu'", param="device")
    return parsed


def _describe(item: object) -> str:
    return "None" if item is None else f"a {type(item).__name__} ({item!r:.60})"
