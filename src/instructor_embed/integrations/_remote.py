"""Calls to a running ``instructor-embed serve``: the remote mode of the framework integrations."""

from __future__ import annotations

from dataclasses import dataclass

from ..dependencies import require
from ..errors import InstructorEmbedError


class RemoteError(InstructorEmbedError):
    """The server answered with an error (its message included) or could not be reached."""


@dataclass(frozen=True)
class Remote:
    """A served model: ``POST {base_url}/v1/embeddings`` with texts and their instruction."""

    base_url: str
    model: str
    api_key: str | None
    timeout: float
    extra: str  # the extra that installs httpx for the integration using this

    def embed(self, texts: list[str], instruction: str | None) -> list[list[float]]:
        if not texts:
            return []
        httpx = require(self.extra, "httpx", "remote mode")
        try:
            response = httpx.post(
                self._url, json=self._body(texts, instruction), headers=self._headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.base_url}: {exc}") from exc
        return _vectors(response)

    async def aembed(self, texts: list[str], instruction: str | None) -> list[list[float]]:
        """The same as :meth:`embed`, without blocking the event loop."""
        if not texts:
            return []
        httpx = require(self.extra, "httpx", "remote mode")
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            try:
                response = await client.post(self._url, json=self._body(texts, instruction), headers=self._headers)
            except httpx.HTTPError as exc:
                raise RemoteError(f"cannot reach {self.base_url}: {exc}") from exc
        return _vectors(response)

    @property
    def _url(self) -> str:
        return f"{self.base_url.rstrip('/')}/v1/embeddings"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _body(self, texts: list[str], instruction: str | None) -> dict:
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        return body if instruction is None else {**body, "instruction": instruction}


def _vectors(response) -> list[list[float]]:
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except Exception:  # not our error shape: show the start of whatever came back
            message = response.text[:200]
        raise RemoteError(f"{response.request.url} answered {response.status_code}: {message}")
    return [item["embedding"] for item in sorted(response.json()["data"], key=lambda item: item["index"])]
