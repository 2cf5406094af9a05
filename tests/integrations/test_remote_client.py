"""The integrations' remote client against a real ``serve`` with small limits: it splits to the server's limit,
retries 429s after Retry-After, embeds empty strings and applies encode options as the local model does."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from instructor_embed.integrations._remote import Remote, RemoteError  # noqa: E402

INSTRUCTION = "Represent the sentence for retrieval: "
TEXTS = [f"sentence {i} about something slightly different" for i in range(50)]


@pytest.fixture(scope="module")
def server(tmp_path_factory, minilm_dir):
    from serving import API_KEY, running_server

    args = ["--model", f"minilm={minilm_dir}", "--device", "cpu", "--api-key", API_KEY]
    args += ["--max-client-batch", "8", "--max-concurrent-inputs", "16"]
    with running_server(args, tmp_path_factory.mktemp("remote") / "serve.log") as process:
        process.key = API_KEY
        yield process


def remote(server, **options) -> Remote:
    return Remote(server.url, "minilm", server.key, 60.0, "langchain", **options)


def test_a_call_larger_than_the_servers_limit_is_split_and_equals_local(server, minilm_model):
    """Defect: a call over the server's per-request limit failed only in remote mode."""
    client = remote(server)
    got = client.embed(TEXTS, INSTRUCTION)
    assert client._request_inputs == 8  # from /info: min(max-client-batch, half the in-flight limit)
    expected = minilm_model.encode([[INSTRUCTION, text] for text in TEXTS])
    assert np.abs(got - expected).max() <= 1e-6
    first = client._client
    client.embed(TEXTS[:3], None)
    assert client._client is first  # one pooled client per instance
    client.close()


def test_empty_strings_and_encode_options_as_the_local_model(server, minilm_model):
    """Defects: remote mode rejected empty strings that local mode embeds, and ignored encode_kwargs."""
    texts = ["", "a real sentence", "   ", "another one"]
    options = {"normalize_embeddings": True, "truncate_dim": 64, "batch_size": 2}
    got = remote(server).embed(texts, INSTRUCTION, **options)
    expected = minilm_model.encode([[INSTRUCTION, text] for text in texts], **options)
    assert got.shape == (4, 64) and np.abs(got - expected).max() <= 1e-6
    with pytest.raises(RemoteError, match="output_value"):
        remote(server).embed(texts, None, output_value="token_embeddings")


def test_429s_are_retried_after_retry_after(server, minilm_model):
    """Defect: a 429 with Retry-After failed the call at once."""
    import httpx

    def one(number: int) -> np.ndarray:
        return remote(server, max_retries=30).embed(TEXTS[number : number + 8], None)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(12)))
    for number, got in enumerate(results):
        assert np.abs(got - minilm_model.encode(TEXTS[number : number + 8])).max() <= 1e-6
    metrics = httpx.get(f"{server.url}/metrics").text
    refused = re.search(
        r'instructor_embed_request_failures_total\{route="/v1/embeddings",type="rate_limit_exceeded"\} (\S+)', metrics
    )
    assert refused and float(refused.group(1)) > 0  # the server did refuse some: they were retried


def test_async_calls_equal_sync_calls(server):
    client = remote(server)

    async def both():
        return await client.aembed(TEXTS[:20], INSTRUCTION, normalize_embeddings=True)

    got = asyncio.run(both())
    assert np.abs(got - client.embed(TEXTS[:20], INSTRUCTION, normalize_embeddings=True)).max() <= 1e-6
    assert "test-key" not in repr(client)
