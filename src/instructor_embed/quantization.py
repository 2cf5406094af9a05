"""Compact embeddings: scalar int8/uint8 and binary quantization of float vectors.

Formats follow sentence-transformers' ``quantize_embeddings`` so stored vectors interoperate:
``int8``/``uint8`` map each dimension's [min, max] (from ``ranges``, calibration embeddings,
or the embeddings themselves) onto 256 levels; ``binary``/``ubinary`` keep the sign bit of each
dimension, packed 8 per byte (``binary`` as int8, offset by -128; ``ubinary`` as uint8).
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["quantization_ranges", "quantize_embeddings"]


def quantization_ranges(calibration_embeddings: np.ndarray) -> np.ndarray:
    """Per-dimension ``(2, dim)`` minima and maxima of ``calibration_embeddings``, to pass as ``ranges`` so that
    every batch, request or shard quantizes the same vector to the same codes."""
    calibration = np.asarray(calibration_embeddings, dtype=np.float32)
    if calibration.ndim != 2 or len(calibration) == 0:
        raise InputError(
            f"calibration embeddings must be a non-empty (n, dim) array, got shape {calibration.shape}",
            param="calibration_embeddings",
        )
    return np.vstack([calibration.min(axis=0), calibration.max(axis=0)])


def quantize_embeddings(
    embeddings: np.ndarray,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize an ``(n, dim)`` float array to ``precision``: float32, int8, uint8, binary or ubinary.

    ``ranges`` is a ``(2, dim)`` array of per-dimension minima and maxima for the scalar formats;
    without it they come from ``calibration_embeddings`` if given, else from ``embeddings``.
    Compare ``binary``/``ubinary`` vectors with Hamming distance.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if precision == "float32":
        return embeddings
    if precision in ("int8", "uint8"):
        if ranges is None:
            source = embeddings if calibration_embeddings is None else np.asarray(calibration_embeddings)
            if len(source) == 0:
                return np.zeros(embeddings.shape, dtype=np.dtype(precision))
            ranges = quantization_ranges(source)
        ranges = np.asarray(ranges, dtype=np.float32)
        if ranges.shape != (2, embeddings.shape[-1]):
            raise InputError(
                f"ranges must have shape (2, {embeddings.shape[-1]}) (minima, maxima per dimension), got {ranges.shape}",
                param="ranges",
            )
        starts = ranges[0]
        steps = np.maximum((ranges[1] - ranges[0]) / 255, np.finfo(np.float32).tiny)
        levels = np.clip(np.round((embeddings - starts) / steps), 0, 255)
        if precision == "uint8":
            return levels.astype(np.uint8)
        return (levels - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(embeddings > 0, axis=-1)
    if precision == "binary":
        return (np.packbits(embeddings > 0, axis=-1).astype(np.int16) - 128).astype(np.int8)
    raise InputError(f"precision must be float32, int8, uint8, binary or ubinary, got {precision!r}", param="precision")
