"""Calls to a running ``instructor-embed serve``: the remote mode of the framework integrations."""

from __future__ import annotations

from ..dependencies import require
from ..errors import InstructorEmbedError


class RemoteError(InstructorEmbedError):
    """The server answered with an error (its message included) or could not be reached."""


def _request(texts: list[str], instruction: str | None, model: str, api_key: str | None) -> tuple[dict, dict]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"model": model, "input": texts, "encoding_format": "float"}
    if instruction is not None:
        body["instruction"] = instruction
    return body, headers


def _vectors(response) -> list[list[float]]:
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except Exception:  # not our error shape: show the start of whatever came back
            message = response.text[:200]
        raise RemoteError(f"{response.request.url} answered {response.status_code}: {message}")
    data = sorted(response.json()["data"], key=lambda item: item["index"])
    return [item["embedding"] for item in data]


def embed_remote(
    base_url: str,
    texts: list[str],
    instruction: str | None,
    model: str,
    api_key: str | None,
    timeout: float,
    extra: str,
) -> list[list[float]]:
    """``POST {base_url}/v1/embeddings`` with the texts and their instruction; the vectors in input order."""
    if not texts:
        return []
    httpx = require(extra, "httpx", "remote mode")
    body, headers = _request(texts, instruction, model, api_key)
    try:
        response = httpx.post(f"{base_url.rstrip('/')}/v1/embeddings", json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise RemoteError(f"cannot reach {base_url}: {exc}") from exc
    return _vectors(response)


async def aembed_remote(
    base_url: str,
    texts: list[str],
    instruction: str | None,
    model: str,
    api_key: str | None,
    timeout: float,
    extra: str,
) -> list[list[float]]:
    """The same as :func:`embed_remote`, without blocking the event loop."""
    if not texts:
        return []
    httpx = require(extra, "httpx", "remote mode")
    body, headers = _request(texts, instruction, model, api_key)
    async with httpx.AsyncClient(timeout=timeout) as client:
        try:
            response = await client.post(f"{base_url.rstrip('/')}/v1/embeddings", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {base_url}: {exc}") from exc
    return _vectors(response)
