"""The wire formats: OpenAI's embeddings API (plus ``instruction``), the native ``/embed`` route, every other
answer, and errors — requests and responses alike, so the OpenAPI schema says exactly what the server returns.

Kept apart from the engine: these classes only describe JSON. Unknown request fields are ignored on the OpenAI
route, as OpenAI does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EmbeddingRequest(BaseModel):
    """``POST /v1/embeddings`` (OpenAI). ``instruction`` is this server's extension (send it with ``extra_body``)."""

    model_config = ConfigDict(extra="ignore")

    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts. Token-id arrays are refused: ids from another tokenizer mean "
        "nothing to this model."
    )
    model: str | None = Field(None, description="A served model's name (GET /v1/models); optional when one is served")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: little-endian float32 bytes, as OpenAI's API (the openai client's default)"
    )
    dimensions: int | None = Field(None, ge=1, description="Keep the first N dimensions and renormalise")
    user: str | None = Field(None, description="Accepted and ignored")
    instruction: str | list[str] | None = Field(
        None, description="One instruction for every input, or one per input; default: the server's"
    )


class EmbedRequest(BaseModel):
    """``POST /embed``: the library's items, ``[instruction, text]`` pairs or plain texts."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[str | list[str]] = Field(description="Texts, or [instruction, text] pairs, as INSTRUCTOR.encode takes")
    model: str | None = None
    normalize: bool = Field(False, description="Scale vectors to unit length (after truncate_dim)")
    truncate_dim: int | None = Field(None, ge=1, description="Keep the first N dimensions")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingItem(BaseModel):
    object: Literal["embedding"]
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")
    index: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class EmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class ServedModelInfo(BaseModel):
    name: str
    path: str
    dimension: int
    max_seq_length: int
    max_input_tokens: int
    precision: str
    device: str
    max_batch_tokens: int
    batcher_restarts: int


class Info(BaseModel):
    ready: bool
    models: list[ServedModelInfo]
    limits: dict[str, int | float | str | bool | None]


class Health(BaseModel):
    status: Literal["ok", "loading", "failed"]
    models: list[str] | None = None
    error: str | None = None


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


_ERRORS = {
    400: "The request is invalid; `param` names the field or input",
    401: "Missing or wrong API key",
    404: "No such model",
    408: "The request body did not arrive in time",
    413: "The request body is over the payload limit",
    429: "Too many inputs in flight; retry after `Retry-After` seconds",
    503: "Loading, timed out, or the model's worker failed; retry after `Retry-After` seconds",
}


def error_responses(*statuses: int) -> dict:
    """OpenAPI ``responses`` for the error answers a route can give."""
    return {status: {"model": ErrorResponse, "description": _ERRORS[status]} for status in statuses}


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's error shape, which its clients show to their users."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
