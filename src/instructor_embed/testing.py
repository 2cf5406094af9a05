"""Build INSTRUCTOR-layout checkpoints with seeded random weights, for tests, parity checks and benchmarks.

No INSTRUCTOR weights can be downloaded everywhere; a T5 encoder of the real shapes with
random weights and the real T5 tokenizer exercises every code path. The weights depend only on
the seed and the parameter names, not on the torch or transformers version, so the same
checkpoint is rebuilt bit for bit in another environment (the reference stack for parity goldens).

This module imports nothing from the rest of the package, so it also runs under the reference stack.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zlib
from pathlib import Path

import torch

# T5 shapes: instructor-base = gtr-t5-base, instructor-large = gtr-t5-large; "tiny" for fast tests.
SIZES = {
    "tiny": dict(d_model=64, d_ff=128, num_layers=2, num_heads=4, d_kv=16),
    "base": dict(d_model=768, d_ff=3072, num_layers=12, num_heads=12, d_kv=64),
    "large": dict(d_model=1024, d_ff=4096, num_layers=24, num_heads=16, d_kv=64),
}
TOKENIZER_FILES = (
    "spiece.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.json",
)


def build_random_instructor(
    directory: str | Path,
    tokenizer_dir: str | Path,
    *,
    size: str = "tiny",
    seed: int = 0,
    output_dim: int = 768,
    weights_format: str = "safetensors",
) -> str:
    """Write a random-weight INSTRUCTOR checkpoint; returns a SHA-256 of its weights.

    ``tokenizer_dir`` holds the T5 SentencePiece tokenizer; its files are copied unchanged.
    ``weights_format`` is ``"safetensors"`` or ``"bin"`` (as the hkunlp checkpoints ship).
    """
    from transformers import T5Config, T5EncoderModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = T5Config(vocab_size=32128, feed_forward_proj="relu", dropout_rate=0.1, **SIZES[size])
    config.architectures = ["T5EncoderModel"]
    encoder = T5EncoderModel(config)
    state = _seeded_state(encoder.state_dict(), seed, config)
    encoder.load_state_dict(state)
    config.save_pretrained(directory)
    # Written here rather than by save_pretrained, whose formats differ between transformers versions.
    weights = {name: tensor.contiguous() for name, tensor in state.items() if name != "encoder.embed_tokens.weight"}
    if weights_format == "safetensors":
        from safetensors.torch import save_file

        save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    elif weights_format == "bin":
        torch.save(weights, directory / "pytorch_model.bin")
    else:
        raise ValueError(f"weights_format must be 'safetensors' or 'bin', not {weights_format!r}")
    for name in TOKENIZER_FILES:
        if (Path(tokenizer_dir) / name).exists():
            shutil.copy(Path(tokenizer_dir) / name, directory / name)
    _write(directory / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    _write(
        directory / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
            {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    (directory / "1_Pooling").mkdir(exist_ok=True)
    _write(
        directory / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": config.d_model,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    (directory / "2_Dense").mkdir(exist_ok=True)
    _write(
        directory / "2_Dense" / "config.json",
        {
            "in_features": config.d_model,
            "out_features": output_dim,
            "bias": False,
            "activation_function": "torch.nn.modules.linear.Identity",
        },
    )
    dense = {
        "linear.weight": _normal((output_dim, config.d_model), seed, "2_Dense.linear.weight", config.d_model**-0.5)
    }
    torch.save(dense, directory / "2_Dense" / "pytorch_model.bin")
    (directory / "3_Normalize").mkdir(exist_ok=True)
    return weights_digest({**{f"0.{k}": v for k, v in state.items()}, **{f"2.{k}": v for k, v in dense.items()}})


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over parameter names and float32 values, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _seeded_state(template: dict[str, torch.Tensor], seed: int, config) -> dict[str, torch.Tensor]:
    """T5's own initialisation scheme (as in its paper and transformers), drawn from seeded generators.

    T5 does not scale attention scores by 1/sqrt(d_kv); its init puts that factor into ``q`` instead.
    """
    d_model, d_kv, heads, d_ff = config.d_model, config.d_kv, config.num_heads, config.d_ff
    std_by_suffix = {
        "SelfAttention.q.weight": (d_model * d_kv) ** -0.5,
        "SelfAttention.k.weight": d_model**-0.5,
        "SelfAttention.v.weight": d_model**-0.5,
        "SelfAttention.o.weight": (heads * d_kv) ** -0.5,
        "relative_attention_bias.weight": d_model**-0.5,
        "DenseReluDense.wi.weight": d_model**-0.5,
        "DenseReluDense.wo.weight": d_ff**-0.5,
        "shared.weight": 1.0,
    }
    state = {}
    for name, tensor in template.items():
        if name == "encoder.embed_tokens.weight":
            continue  # tied to shared.weight
        if name.endswith("layer_norm.weight"):
            state[name] = 1.0 + _normal(tensor.shape, seed, name, 0.1)
            continue
        std = next((value for suffix, value in std_by_suffix.items() if name.endswith(suffix)), None)
        if std is None:
            raise ValueError(f"no initialisation rule for {name}")
        state[name] = _normal(tensor.shape, seed, name, std)
    state["encoder.embed_tokens.weight"] = state["shared.weight"]
    return state


def _normal(shape, seed: int, name: str, std: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.randn(tuple(shape), generator=generator) * std


def _write(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
