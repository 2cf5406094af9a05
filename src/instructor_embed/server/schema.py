"""The wire formats: OpenAI's embeddings API (plus ``instruction``), the native ``/embed`` route, and errors.

Kept apart from the engine: these classes only describe JSON. Unknown fields are ignored, as OpenAI does.
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


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's error shape, which its clients show to their users."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
