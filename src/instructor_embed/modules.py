"""The four stages of an INSTRUCTOR model, each a small ``nn.Module`` that loads and saves its own folder.

Stages pass one dict of named tensors along (shapes: B items, T tokens, D dims):

- ``input_ids``, ``attention_mask`` (B, T): the tokenized ``instruction + text``; the encoder sees all of it.
- ``pooling_mask`` (B, T): ``attention_mask`` with the instruction tokens zeroed; pooling reads only this.
- ``token_embeddings`` (B, T, D): set by :class:`Transformer`.
- ``sentence_embedding`` (B, D'): set by :class:`Pooling`, then rewritten by :class:`Dense` and :class:`Normalize`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backends import FLOAT32, RuntimeOptions, prepare_encoder
from .checkpoint import CheckpointError, check_state_dict_keys, read_json, read_state_dict, write_json
from .errors import InputError
from .inputs import check_positive_int

logger = logging.getLogger(__name__)

Features = dict[str, Tensor]

# Older sentence-transformers versions named the Transformer's config after the architecture.
_TRANSFORMER_CONFIG_NAMES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
_DEFAULT_MAX_SEQ_LENGTH = 512
_VOCABULARY_FILES = ("tokenizer.json", "spiece.model", "sentencepiece.bpe.model", "vocab.txt", "vocab.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)


class Transformer(nn.Module):
    """A Hugging Face encoder (T5 encoder stack for T5 checkpoints) and its tokenizer."""

    def __init__(
        self,
        auto_model: nn.Module,
        tokenizer,
        max_seq_length: int,
        do_lower_case: bool = False,
        tokenizer_files: dict[str, bytes] | None = None,
        runtime: RuntimeOptions = FLOAT32,
    ):
        super().__init__()
        self.runtime = runtime
        self.auto_model = auto_model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        # The checkpoint's tokenizer files, byte for byte: re-serialising them with today's tokenizers
        # would write a tokenizer.json that the stacks InstructorEmbedding 1.0.1 runs on cannot parse.
        self.tokenizer_files = tokenizer_files or {}

    @property
    def dimension(self) -> int:
        config = self.auto_model.config
        return getattr(config, "d_model", None) or config.hidden_size

    def forward(self, features: Features) -> Features:
        output = self.auto_model(input_ids=features["input_ids"], attention_mask=features["attention_mask"])
        features["token_embeddings"] = output.last_hidden_state.float()  # pooling runs in float32
        return features

    @classmethod
    def load(
        cls,
        directory: Path,
        max_seq_length: int | None = None,
        runtime: RuntimeOptions = FLOAT32,
        cache_dir: Path | None = None,
    ) -> Transformer:
        from transformers import AutoModel

        window = TokenizerSettings.load(directory, max_seq_length)
        try:
            model_class = _encoder_class(window.config.model_type) or AutoModel
            # Loading in the target dtype (not .to(dtype) afterwards) keeps the modules transformers keeps in
            # float32 for float16 (T5's feed-forward output "wo", whose activations overflow fp16).
            auto_model, info = model_class.from_pretrained(
                directory, config=window.config, output_loading_info=True, dtype=runtime.dtype
            )
        except CheckpointError:
            raise
        except Exception as exc:  # transformers raises OSError, ValueError, SafetensorError, ... for bad files
            raise CheckpointError(f"Cannot load the encoder from {directory}: {exc}") from exc
        # transformers fills missing weights with random values and only logs it: refuse instead.
        missing = [key for key in info["missing_keys"] if not key.startswith("pooler.")]
        if missing:
            raise CheckpointError(f"Weights in {directory} are incomplete: missing {sorted(missing)[:10]}")
        _check_finite(auto_model, directory)
        tokenizer = window.tokenizer
        auto_model, runtime = prepare_encoder(auto_model.eval(), runtime, directory, cache_dir, tokenizer)
        tokenizer_files = {
            name: (directory / name).read_bytes() for name in TOKENIZER_FILES if (directory / name).is_file()
        }
        return cls(auto_model, tokenizer, window.max_seq_length, window.do_lower_case, tokenizer_files, runtime)

    def save(self, directory: Path) -> None:
        if self.runtime.backend != "torch" or self.runtime.quantize or self.runtime.compile:
            raise InputError(f"Cannot save an encoder running as {self.runtime.describe()}; load it plainly to save")
        self.auto_model.save_pretrained(directory, safe_serialization=True)
        if self.tokenizer_files:
            for name, content in self.tokenizer_files.items():
                (directory / name).write_bytes(content)
        else:
            self.tokenizer.save_pretrained(directory)
        write_json(
            directory / "sentence_bert_config.json",
            {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case},
        )

    def extra_repr(self) -> str:
        config = self.auto_model.config
        return (
            f"{config.architectures[0] if config.architectures else config.model_type}, {self.runtime.describe()}, "
            f"attention={getattr(config, '_attn_implementation', None)}, max_seq_length={self.max_seq_length}, "
            f"do_lower_case={self.do_lower_case}"
        )


class TokenizerSettings:
    """What reading a checkpoint's text needs, without its weights: the encoder's config, the tokenizer, the
    window (``max_seq_length``) and lower-casing. Loads in a moment, for a job's driver that never embeds."""

    def __init__(self, config, tokenizer, max_seq_length: int, do_lower_case: bool):
        self.config, self.tokenizer = config, tokenizer
        self.max_seq_length, self.do_lower_case = max_seq_length, do_lower_case

    @classmethod
    def load(cls, directory: Path, max_seq_length: int | None = None) -> TokenizerSettings:
        from transformers import AutoConfig, AutoTokenizer

        _check_encoder_files(directory)
        settings = {}
        for name in _TRANSFORMER_CONFIG_NAMES:
            if (directory / name).exists():
                settings = read_json(directory / name)
                break
        try:
            config = AutoConfig.from_pretrained(directory)  # never trust_remote_code: a checkpoint runs no code
            tokenizer = AutoTokenizer.from_pretrained(directory)
        except Exception as exc:  # transformers raises OSError, ValueError, ... for bad files
            raise CheckpointError(f"Cannot load the encoder config or tokenizer from {directory}: {exc}") from exc
        limit = position_limit(config)
        if max_seq_length is None:
            max_seq_length = settings.get("max_seq_length") or _model_max_length(config, tokenizer)
            if limit is not None and not 1 <= int(max_seq_length) <= limit:
                raise CheckpointError(
                    f"{directory}: max_seq_length {max_seq_length} is outside the encoder's 1..{limit} positions"
                )
        else:
            check_max_seq_length(max_seq_length, limit)
        return cls(config, tokenizer, int(max_seq_length), bool(settings.get("do_lower_case", False)))


def _check_finite(module: nn.Module, directory: Path) -> None:
    """A damaged weights file whose damage safetensors cannot see (it stores no checksum) often shows as
    infinite or NaN values: refuse those rather than embed NaN."""
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"Weights in {directory} hold NaN or infinite values ({name}): the file is damaged")


def _check_encoder_files(directory: Path) -> None:
    """Catch what transformers would load silently wrong, or report without naming the file."""
    from safetensors import safe_open

    if not any((directory / name).is_file() for name in _VOCABULARY_FILES):
        # transformers would build a tokenizer with an empty vocabulary and embed garbage
        raise CheckpointError(
            f"{directory} has no tokenizer vocabulary: expected one of {', '.join(_VOCABULARY_FILES)}"
        )
    for weights in sorted(directory.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as exc:  # SafetensorError, OSError
            raise CheckpointError(f"Cannot read weights from {weights}: {exc}") from exc


def position_limit(config) -> int | None:
    """The longest input an encoder with learned absolute positions can read; None for relative positions (T5)."""
    positions = getattr(config, "max_position_embeddings", None)
    if not positions or config.model_type in ("t5", "mt5", "umt5"):
        return None
    if config.model_type in ("roberta", "xlm-roberta", "camembert", "longformer"):  # positions start after padding
        return int(positions) - int(config.pad_token_id or 0) - 1
    return int(positions)


def check_max_seq_length(value: object, limit: int | None) -> None:
    """``max_seq_length`` must be a positive int within the encoder's positions."""
    check_positive_int("max_seq_length", value)
    if limit is not None and value > limit:
        raise InputError(
            f"max_seq_length {value} is more than this encoder's {limit} positions; use at most {limit}",
            param="max_seq_length",
        )


def _encoder_class(model_type: str):
    """Encoder-only classes for encoder-decoder families; ``None`` means AutoModel fits."""
    import transformers

    name = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}.get(model_type)
    return getattr(transformers, name) if name else None


def _model_max_length(config, tokenizer) -> int:
    limits = [_DEFAULT_MAX_SEQ_LENGTH, getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    return min(int(limit) for limit in limits if limit)


class Pooling(nn.Module):
    """Pools token embeddings into one vector, over the tokens in ``pooling_mask`` only (the text, not the instruction)."""

    MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens", "lasttoken")
    # The keys the original INSTRUCTOR_Pooling accepts; it rejects any other key, so ``save`` writes only these.
    CONFIG_KEYS = ("word_embedding_dimension",) + tuple(f"pooling_mode_{mode}" for mode in MODES)

    def __init__(self, word_embedding_dimension: int, modes: tuple[str, ...] = ("mean_tokens",)):
        super().__init__()
        unknown = set(modes) - set(self.MODES)
        if unknown or not modes:
            raise InputError(f"Unknown pooling modes {sorted(unknown)}; choose from {self.MODES}", param="modes")
        self.word_embedding_dimension = word_embedding_dimension
        self.modes = tuple(mode for mode in self.MODES if mode in modes)

    @property
    def dimension(self) -> int:
        return self.word_embedding_dimension * len(self.modes)

    def forward(self, features: Features) -> Features:
        tokens = features["token_embeddings"]  # (B, T, D)
        mask = features["pooling_mask"].unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
        outputs = []
        for mode in self.modes:
            if mode == "cls_token":
                outputs.append(tokens[:, 0])
            elif mode == "max_tokens":
                outputs.append(tokens.masked_fill(mask == 0, -1e9).max(dim=1).values)
            elif mode in ("mean_tokens", "mean_sqrt_len_tokens"):
                summed = (tokens * mask).sum(dim=1)  # (B, D)
                count = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
                outputs.append(summed / (count if mode == "mean_tokens" else count.sqrt()))
            elif mode == "weightedmean_tokens":
                positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=tokens.dtype)
                weights = mask * positions.view(1, -1, 1)  # (B, T, 1)
                outputs.append((tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9))
            else:  # lasttoken: the last token that pooling may read
                last = (mask.squeeze(-1) * torch.arange(mask.shape[1], device=mask.device)).argmax(dim=1)  # (B,)
                picked = tokens[torch.arange(tokens.shape[0], device=tokens.device), last]
                outputs.append(picked * mask.amax(dim=1))
        features["sentence_embedding"] = torch.cat(outputs, dim=1)
        return features

    @classmethod
    def load(cls, directory: Path | None, word_embedding_dimension: int) -> Pooling:
        """From a Pooling folder; ``None`` (a plain Hugging Face encoder without ``modules.json``) means mean pooling."""
        if directory is None:
            return cls(word_embedding_dimension)
        if not directory.is_dir():
            # Mean pooling here would silently give wrong vectors for a CLS- or max-pooled model.
            raise CheckpointError(f"Missing checkpoint folder {directory}: modules.json lists it as the Pooling module")
        config = read_json(directory / "config.json")
        if "pooling_mode" in config and isinstance(config["pooling_mode"], (str, list)):
            # sentence-transformers >= 5 writes e.g. {"pooling_mode": "mean"} or ["mean", "max"]
            named = [config["pooling_mode"]] if isinstance(config["pooling_mode"], str) else config["pooling_mode"]
            modes = tuple(_MODE_ALIASES.get(name, name) for name in named)
        else:
            modes = tuple(mode for mode in cls.MODES if config.get(f"pooling_mode_{mode}"))
        dimension = config.get("word_embedding_dimension", config.get("embedding_dimension", word_embedding_dimension))
        try:
            return cls(int(dimension), modes)
        except ValueError as exc:
            raise CheckpointError(f"{directory / 'config.json'}: {exc}") from exc

    def save(self, directory: Path, extra: dict | None = None) -> None:
        config = {"word_embedding_dimension": self.word_embedding_dimension}
        config.update({f"pooling_mode_{mode}": mode in self.modes for mode in self.MODES})
        write_json(directory / "config.json", config | (extra or {}))

    def extra_repr(self) -> str:
        return f"dimension={self.word_embedding_dimension}, modes={'+'.join(self.modes)}"


_MODE_ALIASES = {
    "cls": "cls_token",
    "mean": "mean_tokens",
    "max": "max_tokens",
    "mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "weightedmean": "weightedmean_tokens",
    "lasttoken": "lasttoken",
}

# Activations a Dense config may name (by the last part of its dotted path); nothing else is imported.
_ACTIVATIONS = {
    "Identity": nn.Identity,
    "Tanh": nn.Tanh,
    "ReLU": nn.ReLU,
    "GELU": nn.GELU,
    "Sigmoid": nn.Sigmoid,
    "SiLU": nn.SiLU,
}


class Dense(nn.Module):
    """A linear projection of the sentence embedding (INSTRUCTOR: d_model → 768, no bias, identity activation)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "Identity"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise InputError(
                f"Unsupported Dense activation {activation!r}; supported: {sorted(_ACTIVATIONS)}", param="activation"
            )
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation_name = activation
        self.activation_function = _ACTIVATIONS[activation]()

    @property
    def dimension(self) -> int:
        return self.linear.out_features

    def forward(self, features: Features) -> Features:
        features["sentence_embedding"] = self.activation_function(self.linear(features["sentence_embedding"]))
        return features

    @classmethod
    def load(cls, directory: Path) -> Dense:
        config = read_json(directory / "config.json")
        try:
            dense = cls(
                int(config["in_features"]),
                int(config["out_features"]),
                bool(config.get("bias", True)),
                str(config.get("activation_function", "torch.nn.modules.linear.Identity")).rsplit(".", 1)[-1],
            )
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{directory / 'config.json'}: {exc}") from exc
        state_dict = read_state_dict(directory)
        check_state_dict_keys(state_dict, set(dense.state_dict()), directory)
        try:
            dense.load_state_dict(state_dict)
        except RuntimeError as exc:  # shape mismatch
            raise CheckpointError(f"Weights in {directory} do not fit its config.json: {exc}") from exc
        _check_finite(dense, directory)
        return dense

    def save(self, directory: Path) -> None:
        """Write config and weights: safetensors, plus ``pytorch_model.bin`` that InstructorEmbedding 1.0.1 reads."""
        from safetensors.torch import save_file

        linear, activation = self.linear, _ACTIVATIONS[self.activation_name]
        write_json(
            directory / "config.json",
            {
                "in_features": linear.in_features,
                "out_features": linear.out_features,
                "bias": linear.bias is not None,
                "activation_function": f"{activation.__module__}.{activation.__name__}",
            },
        )
        state_dict = {key: value.detach().contiguous().cpu() for key, value in self.state_dict().items()}
        save_file(state_dict, str(directory / "model.safetensors"))
        torch.save(state_dict, directory / "pytorch_model.bin")

    def extra_repr(self) -> str:
        linear = self.linear
        return f"{linear.in_features}->{linear.out_features}, bias={linear.bias is not None}, activation={self.activation_name}"


class Normalize(nn.Module):
    """Scales each sentence embedding to unit L2 length."""

    def forward(self, features: Features) -> Features:
        features["sentence_embedding"] = F.normalize(features["sentence_embedding"], p=2, dim=1)
        return features

    @classmethod
    def load(cls, directory: Path) -> Normalize:
        return cls()

    def save(self, directory: Path) -> None:
        """Normalize has no settings; its folder is written empty, as sentence-transformers does."""
