"""What every framework integration embeds with: a :class:`~instructor_embed.spec.ModelSpec` loaded in this
process (on first use), or, with a ``base_url``, a running ``instructor-embed serve``. So every integration offers
the same options — ``device``, ``dtype``, ``backend``, ``quantize``, ``cache_folder`` and remote mode — with the
same meaning as everywhere else."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ..spec import ModelSpec
from ._remote import Remote


class Backend:
    """Texts in, float32 vectors out, from a local model or a served one."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        extra: str = "",
    ):
        self.spec = spec
        self.remote = Remote(base_url, spec.model, api_key, timeout, extra) if base_url else None
        self._model = None

    @property
    def model(self):
        """The local model, loaded on first use (never in remote mode)."""
        if self._model is None:
            self._model = self.spec.load()
        return self._model

    def warm_up(self) -> None:
        if self.remote is None:
            self.model  # noqa: B018 - loads it

    def embed(self, texts: list[str], instruction: str | None, **encode_options: Any) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors, each text with ``instruction`` (None: plain text).
        ``encode_options`` are ``encode``'s; remote mode applies the post-processing ones the same way (see
        :mod:`._remote`) and refuses the rest by name."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self.remote is not None:
            return self.remote.embed(texts, instruction, **encode_options)
        items = list(texts) if instruction is None else [[instruction, text] for text in texts]
        return self.model.encode(items, **encode_options)

    async def aembed(self, texts: list[str], instruction: str | None, **encode_options: Any) -> np.ndarray:
        """As :meth:`embed`, without blocking the event loop."""
        if self.remote is not None and texts:
            return await self.remote.aembed(texts, instruction, **encode_options)
        return await asyncio.to_thread(self.embed, texts, instruction, **encode_options)
