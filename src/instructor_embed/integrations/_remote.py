"""Calls to a running ``instructor-embed serve``: the remote mode of the framework integrations.

It behaves like the local model: any number of texts (split to the server's per-request limit, read from
``/info``), empty strings embedded as ``encode`` embeds them, ``encode``'s post-processing options applied the
same way, 429/503 retried after the server's ``Retry-After`` within a bounded budget, vectors sent as base64
float32 over one pooled connection per instance.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import numpy as np
import torch

from ..dependencies import require
from ..encode import postprocess
from ..errors import InstructorEmbedError

RETRIED = (429, 502, 503, 504)
# encode options with the same effect remotely (applied here, after the server's vectors), and options that only
# steer how a local model runs (the server batches and places work itself), accepted and ignored.
APPLIED = ("normalize_embeddings", "truncate_dim", "precision", "ranges")
IGNORED = ("batch_size", "show_progress_bar", "convert_to_numpy", "device", "max_batch_tokens")
DEFAULT_REQUEST_INPUTS = 256  # when the server's /info cannot be read


class RemoteError(InstructorEmbedError):
    """The server answered with an error (its message included) or could not be reached."""


class Remote:
    """A served model: ``POST {base_url}/v1/embeddings`` with texts and their instruction.

    Args:
        max_retries: retries of a 429/503 (or a dropped connection) per request, each after the server's
            ``Retry-After`` (at most ``max_retry_wait`` seconds); ``timeout`` bounds each request.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout: float,
        extra: str,
        *,
        max_retries: int = 5,
        max_retry_wait: float = 10.0,
    ):
        self.base_url, self.model, self.api_key, self.timeout, self.extra = (
            base_url.rstrip("/"),
            model,
            api_key,
            timeout,
            extra,
        )
        self.max_retries, self.max_retry_wait = max_retries, max_retry_wait
        self._client = None
        self._async_client, self._async_loop = None, None
        self._request_inputs: int | None = None

    def __repr__(self) -> str:
        return f"Remote({self.base_url!r}, model={self.model!r})"  # never the key

    # Public calls.

    def embed(self, texts: list[str], instruction: str | None, **encode_options: Any) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors, as the local model's ``encode`` with ``encode_options``."""
        options = _applied(encode_options)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        client = self._sync_client()
        if self._request_inputs is None:
            self._request_inputs = _limit(self._get_info(client))
        requests, order = self._requests(texts, instruction)
        return _assemble(order, [self._post(client, url, body) for url, body in requests], options)

    async def aembed(self, texts: list[str], instruction: str | None, **encode_options: Any) -> np.ndarray:
        """The same as :meth:`embed`, without blocking the event loop."""
        options = _applied(encode_options)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        client = self._async_client_for_this_loop()
        if self._request_inputs is None:
            self._request_inputs = _limit(await self._aget_info(client))
        requests, order = self._requests(texts, instruction)
        return _assemble(order, [await self._apost(client, url, body) for url, body in requests], options)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # Requests: texts with text go to /v1/embeddings (base64), blank ones to /embed, which embeds them as encode.

    def _requests(self, texts: list[str], instruction: str | None) -> tuple[list[tuple[str, dict]], list[int]]:
        """The requests to send, and the input position of each vector they return, in order."""
        size = self._request_inputs or DEFAULT_REQUEST_INPUTS
        filled = [i for i, text in enumerate(texts) if text.strip()]
        blank = [i for i, text in enumerate(texts) if not text.strip()]
        requests = []
        for start in range(0, len(filled), size):
            part = [texts[i] for i in filled[start : start + size]]
            body = {"model": self.model, "input": part, "encoding_format": "base64"}
            requests.append(("/v1/embeddings", body if instruction is None else {**body, "instruction": instruction}))
        for start in range(0, len(blank), size):
            part = [texts[i] for i in blank[start : start + size]]
            items = part if instruction is None else [[instruction, text] for text in part]
            requests.append(("/embed", {"model": self.model, "inputs": items}))
        return requests, filled + blank

    # Transport: one pooled client per instance (and per event loop for async), bounded retries.

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _httpx(self):
        return require(self.extra, "httpx", "remote mode")

    def _sync_client(self):
        if self._client is None:
            httpx = self._httpx()
            self._client = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=self.timeout)
        return self._client

    def _async_client_for_this_loop(self):
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            httpx = self._httpx()
            self._async_client = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=self.timeout)
            self._async_loop = loop
        return self._async_client

    def _get_info(self, client) -> dict | None:
        try:
            response = client.get("/info")
        except self._httpx().HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    async def _aget_info(self, client) -> dict | None:
        try:
            response = await client.get("/info")
        except self._httpx().HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def _post(self, client, url: str, body: dict) -> np.ndarray:
        httpx = self._httpx()
        for attempt in range(self.max_retries + 1):
            try:
                response = client.post(url, json=body)
            except httpx.HTTPError as exc:
                if attempt == self.max_retries or not isinstance(exc, httpx.TransportError):
                    raise RemoteError(f"cannot reach {self.base_url}: {exc}") from exc
                time.sleep(min(2**attempt * 0.1, self.max_retry_wait))
                continue
            if response.status_code in RETRIED and attempt < self.max_retries:
                time.sleep(self._wait(response, attempt))
                continue
            return _vectors(response, url)
        raise AssertionError("unreachable")

    async def _apost(self, client, url: str, body: dict) -> np.ndarray:
        httpx = self._httpx()
        for attempt in range(self.max_retries + 1):
            try:
                response = await client.post(url, json=body)
            except httpx.HTTPError as exc:
                if attempt == self.max_retries or not isinstance(exc, httpx.TransportError):
                    raise RemoteError(f"cannot reach {self.base_url}: {exc}") from exc
                await asyncio.sleep(min(2**attempt * 0.1, self.max_retry_wait))
                continue
            if response.status_code in RETRIED and attempt < self.max_retries:
                await asyncio.sleep(self._wait(response, attempt))
                continue
            return _vectors(response, url)
        raise AssertionError("unreachable")

    def _wait(self, response, attempt: int) -> float:
        try:
            seconds = float(response.headers.get("retry-after", ""))
        except ValueError:
            seconds = 0.5 * 2**attempt
        return min(max(seconds, 0.0), self.max_retry_wait)


def _assemble(order: list[int], chunks: list[np.ndarray], options: dict) -> np.ndarray:
    """The chunks' vectors in input order, post-processed as ``encode`` does with the same options."""
    vectors = np.empty((len(order), chunks[0].shape[1]), dtype=np.float32)
    vectors[order] = np.concatenate(chunks)
    if not options:
        return vectors
    processed = postprocess(
        torch.from_numpy(vectors),
        truncate_dim=options.get("truncate_dim"),
        normalize=bool(options.get("normalize_embeddings")),
        precision=options.get("precision", "float32"),
        ranges=options.get("ranges"),
    )
    return processed.numpy() if isinstance(processed, torch.Tensor) else processed


def _applied(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(APPLIED) - set(IGNORED))
    if unknown:
        raise RemoteError(
            f"remote mode cannot apply encode option(s) {', '.join(unknown)}; it applies "
            f"{', '.join(APPLIED)} and ignores {', '.join(IGNORED)}"
        )
    return {name: value for name, value in options.items() if name in APPLIED and value is not None}


def _limit(info: dict | None) -> int:
    """Inputs per request: the server's --max-client-batch (bounded by half its in-flight limit)."""
    if not info or "limits" not in info:
        return DEFAULT_REQUEST_INPUTS
    limits = info["limits"]
    return max(
        1,
        min(
            int(limits.get("max_client_batch", DEFAULT_REQUEST_INPUTS)),
            int(limits.get("max_concurrent_inputs", 2 * DEFAULT_REQUEST_INPUTS)) // 2 or 1,
        ),
    )


def _vectors(response, url: str) -> np.ndarray:
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except Exception:  # not our error shape: show the start of whatever came back
            message = response.text[:200]
        raise RemoteError(f"{response.request.url} answered {response.status_code}: {message}")
    payload = response.json()
    if url == "/embed":
        return np.asarray(payload["embeddings"], dtype=np.float32)
    data = sorted(payload["data"], key=lambda item: item["index"])
    return np.stack([np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data])
