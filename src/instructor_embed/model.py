"""``INSTRUCTOR``: a drop-in for InstructorEmbedding 1.0.1's model class, as a plain ``nn.Sequential``."""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backends import RuntimeOptions
from .checkpoint import StageSpec, read_stage_specs, resolve_model_dir, write_json
from .encode import Engine, module_device, postprocess
from .errors import InputError, InputTypeError
from .inputs import check_device, check_encode_options, check_truncate_dim, parse_item, parse_sentences
from .instructions import RETRIEVAL, SAVED_INSTRUCTIONS, TrainedInstructions
from .modules import Dense, Normalize, Pooling, Transformer, check_max_seq_length, position_limit
from .quantization import quantize_embeddings
from .tokenization import InstructionTokenizer, Item

_STAGE_TYPES = {
    Transformer: "sentence_transformers.models.Transformer",
    Pooling: "sentence_transformers.models.Pooling",
    Dense: "sentence_transformers.models.Dense",
    Normalize: "sentence_transformers.models.Normalize",
}


class _ModelDefault(str):
    """The default of ``encode_queries``/``encode_corpus``: the model's trained instruction, else the authors'."""

    def __repr__(self) -> str:
        return "<the model's trained instruction, else RETRIEVAL's>"


MODEL_DEFAULT = _ModelDefault()


class INSTRUCTOR(nn.Sequential):
    """An instruction-conditioned text embedder: Transformer → Pooling → [Dense] → [Normalize].

    >>> model = INSTRUCTOR("hkunlp/instructor-large")  # doctest: +SKIP
    >>> model.encode([["Represent the Science title:", "3D ActionSLAM"]]).shape  # doctest: +SKIP
    (1, 768)

    Args:
        model_name_or_path: a Hugging Face Hub id, a local directory, or an ``os.PathLike``.
            Hub models are downloaded once and cached (``HF_HUB_OFFLINE=1`` uses the cache only).
        device: where to run, e.g. ``"cpu"`` or ``"cuda:0"``; default CUDA when available.
        cache_folder: where Hub downloads (and ONNX exports) are cached (default: the Hugging Face cache).
        revision: a Hub branch, tag or commit.
        token: a Hub token for private models.
        max_seq_length: tokens per item after truncation; default the checkpoint's own (512 for INSTRUCTOR).
        dtype: the encoder's precision: ``"float32"`` (default, exact), ``"bfloat16"``, ``"float16"`` (GPU), or
            ``"auto"``: the fastest faithful mode for this machine (see :mod:`instructor_embed.hardware`), shown in
            ``repr`` with the reason.
        quantize: ``"int8"`` for dynamic int8 (ONNX Runtime with ``backend="onnx"``, torchao with ``"torch"``).
        backend: ``"torch"`` or ``"onnx"`` (ONNX Runtime; the export is cached, see ``INSTRUCTOR_EMBED_CACHE``).
        compile: ``torch.compile`` the encoder (slow first calls; worth it only for long runs).
        truncate_dim: keep only the first ``truncate_dim`` dimensions of every embedding.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        device: str | torch.device | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        max_seq_length: int | None = None,
        dtype: str | torch.dtype | None = None,
        quantize: str | None = None,
        backend: str = "torch",
        compile: bool = False,
        truncate_dim: int | None = None,
    ):
        check_truncate_dim(truncate_dim)
        device = _default_device() if device is None else check_device(device)
        runtime = RuntimeOptions.parse(dtype, quantize, backend, compile, device)
        directory = resolve_model_dir(model_name_or_path, cache_folder=cache_folder, revision=revision, token=token)
        onnx_cache = Path(cache_folder) if cache_folder is not None else None
        super().__init__(*_load_stages(read_stage_specs(directory), max_seq_length, runtime, onnx_cache))
        self.model_name_or_path = os.fspath(model_name_or_path)
        self.checkpoint_dir = directory  # the local folder it loaded from (a Hub model's cache snapshot)
        self.truncate_dim = truncate_dim
        # what it was fine-tuned with (instructor-embed train), used by encode_queries / encode_corpus; or None
        self.instructions: TrainedInstructions | None = _read_instructions(directory)
        self.to(device).eval()  # inference by default; training sets train() itself

    # -- the stages ---------------------------------------------------------------------------

    @property
    def transformer(self) -> Transformer:
        return self[0]

    @property
    def tokenizer(self):
        return self.transformer.tokenizer

    @property
    def max_seq_length(self) -> int:
        return self.transformer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        check_max_seq_length(value, position_limit(self.transformer.auto_model.config))
        self.transformer.max_seq_length = value

    @property
    def instruction_tokenizer(self) -> InstructionTokenizer:
        return self.engine.tokenizer

    @property
    def engine(self) -> Engine:
        """The encode steps (tokenize → plan batches → forward → scatter) that ``encode``, the server and bulk
        jobs run; rebuilt only when ``max_seq_length`` changes."""
        transformer = self.transformer
        cached = self.__dict__.get("_engine")
        if cached is None or cached.tokenizer.max_length != transformer.max_seq_length:
            tokenizer = InstructionTokenizer(
                transformer.tokenizer, transformer.max_seq_length, transformer.do_lower_case
            )
            cached = self.__dict__["_engine"] = Engine(self, tokenizer, self._output_dimension())
        return cached

    @property
    def device(self) -> torch.device:
        return module_device(self)

    def get_sentence_embedding_dimension(self) -> int:
        """The size of the vectors ``encode`` returns (after ``truncate_dim``)."""
        dimension = self._output_dimension()
        return min(dimension, self.truncate_dim) if self.truncate_dim else dimension

    def _output_dimension(self) -> int:
        return next(stage.dimension for stage in reversed(self) if isinstance(stage, (Dense, Pooling)))

    # -- embedding ----------------------------------------------------------------------------

    def tokenize(self, sentences: list[Any]) -> dict[str, Tensor]:
        """Padded model inputs for a list of texts or ``[instruction, text]`` pairs (no sorting)."""
        items = [parse_item(index, item) for index, item in enumerate(sentences)]
        if not items:
            raise InputError("tokenize needs at least one item")
        tokenizer = self.instruction_tokenizer
        return tokenizer.collate(tokenizer.tokenize(items))

    def encode(
        self,
        sentences: str | list[Any],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = False,
        *,
        max_batch_tokens: int | None = None,
        precision: str = "float32",
        truncate_dim: int | None = None,
        ranges: np.ndarray | None = None,
    ) -> np.ndarray | Tensor | list[Any]:
        """Embed texts, each optionally with its own instruction.

        Args:
            sentences: a string, or a list whose items are strings (no instruction),
                ``[instruction, text]`` pairs or ``[instruction, text, label]`` triples (the label is ignored).
                Items may mix forms and instructions.
            batch_size: items per forward pass.
            show_progress_bar: show a tqdm bar over batches (default off).
            output_value: ``"sentence_embedding"``; ``"token_embeddings"`` for each item's token vectors
                (a list of ``(tokens, d_model)`` tensors); ``None`` for a dict of every output per item.
            convert_to_numpy: return an ``(n, dim)`` float32 array (else a list of tensors).
            convert_to_tensor: return one stacked ``(n, dim)`` tensor; overrides ``convert_to_numpy``.
            device: run on this device (the model is moved there, as in the original).
            normalize_embeddings: scale vectors to unit length (after ``truncate_dim``).
            max_batch_tokens: also cap a batch at this many tokens, padding included, so that batches
                of long texts stay small and batches of short ones large.
            precision: ``"float32"``, or quantized vectors: ``"int8"``/``"uint8"`` (per-dimension ranges
                from ``ranges``, else from this call's embeddings), ``"binary"``/``"ubinary"`` (sign bits packed
                8 per byte).
            truncate_dim: keep the first ``truncate_dim`` dimensions (default: the model's ``truncate_dim``).
            ranges: for ``int8``/``uint8``, fixed ``(2, dim)`` per-dimension minima and maxima
                (``quantization_ranges(calibration_embeddings)``), so that separate calls agree.

        Returns:
            As above; for a single string, one vector (1-D) instead of a batch.
        """
        check_encode_options(batch_size, output_value, max_batch_tokens, precision)
        truncate_dim = check_truncate_dim(truncate_dim) or self.truncate_dim
        items, single = parse_sentences(sentences)
        if device is not None and check_device(device) != self.device:
            self.to(device)
        if self.training:
            self.eval()
        engine = self.engine
        keep_on_device = output_value == "sentence_embedding" and (convert_to_tensor or not convert_to_numpy)
        outputs = engine.run(
            engine.tokenize(items),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            output_value=output_value,
            output_device=self.device if keep_on_device else "cpu",
            show_progress_bar=bool(show_progress_bar),
        )
        if output_value != "sentence_embedding":
            return outputs[0] if single else outputs
        vectors = postprocess(outputs, truncate_dim=truncate_dim, normalize=normalize_embeddings)
        if precision != "float32":  # one call: without fixed ranges, int8/uint8 take this call's own ranges
            vectors = torch.from_numpy(quantize_embeddings(vectors.cpu().numpy(), precision, ranges=ranges))
        if convert_to_tensor:
            result = vectors
        elif convert_to_numpy:
            result = vectors.cpu().numpy()
        else:
            result = list(vectors)
        return result[0] if single else result

    def encode_queries(
        self, queries: str | list[str], instruction: str | None = MODEL_DEFAULT, **options: Any
    ) -> np.ndarray | Tensor | list[Any]:
        """Embed search queries, each with ``instruction`` (``None`` for none). Default: the query instruction the
        model was fine-tuned with (``instructions.default``), else the authors' ``RETRIEVAL.query``. Takes
        ``encode``'s other options."""
        return self._encode_with(queries, self._default(instruction, "query"), "queries", options)

    def encode_corpus(
        self, documents: str | list[str], instruction: str | None = MODEL_DEFAULT, **options: Any
    ) -> np.ndarray | Tensor | list[Any]:
        """Embed the documents that queries search, each with ``instruction``. Default: the document instruction
        the model was fine-tuned with, else ``RETRIEVAL.corpus``."""
        return self._encode_with(documents, self._default(instruction, "corpus"), "documents", options)

    def _default(self, instruction: str | None, side: str) -> str | None:
        if instruction is not MODEL_DEFAULT:
            return instruction
        trained = self.instructions.default if self.instructions is not None else None
        return getattr(trained or RETRIEVAL, side)

    def _encode_with(self, texts: str | list[str], instruction: str | None, name: str, options: dict) -> Any:
        vectors = self.encode(
            _with_instruction([texts] if isinstance(texts, str) else texts, instruction, name), **options
        )
        return vectors[0] if isinstance(texts, str) else vectors

    @staticmethod
    def similarity(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> Tensor:
        """Cosine similarities of every vector of ``a`` with every vector of ``b``: an ``(len(a), len(b))`` tensor
        (1-D inputs count as one vector)."""
        a, b = (torch.as_tensor(x, dtype=torch.float32).cpu() for x in (a, b))
        a, b = (x.unsqueeze(0) if x.dim() == 1 else x for x in (a, b))
        return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T

    # -- saving -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the hkunlp layout, loadable by ``INSTRUCTOR`` and by InstructorEmbedding 1.0.1."""
        self._write(Path(path), pooling_extra={})

    def export_sentence_transformers(self, path: str | os.PathLike[str]) -> None:
        """Write a copy for current sentence-transformers: ``SentenceTransformer(path).encode(texts, prompt=instruction)``
        then excludes the instruction from pooling (``include_prompt: false``), giving this model's vectors."""
        self._write(Path(path), pooling_extra={"include_prompt": False})

    def _write(self, directory: Path, pooling_extra: dict) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        entries = []
        for index, stage in enumerate(self):
            folder = "" if index == 0 else f"{index}_{type(stage).__name__}"
            (directory / folder).mkdir(exist_ok=True)
            if isinstance(stage, Pooling):
                stage.save(directory / folder, extra=pooling_extra)
            else:
                stage.save(directory / folder)
            entries.append({"idx": index, "name": str(index), "path": folder, "type": _STAGE_TYPES[type(stage)]})
        write_json(directory / "modules.json", entries)
        config: dict[str, Any] = {"__version__": _versions()}
        if self.instructions is not None:
            write_json(directory / SAVED_INSTRUCTIONS, self.instructions.to_json())
            default = self.instructions.default
            if default is not None:  # sentence-transformers: encode(texts, prompt_name="query")
                config["prompts"] = {"query": default.query, "document": default.corpus}
        write_json(directory / "config_sentence_transformers.json", config)

    def __repr__(self) -> str:
        stages = " -> ".join(f"{type(stage).__name__}({stage.extra_repr()})" for stage in self)
        truncated = f", truncate_dim={self.truncate_dim}" if self.truncate_dim else ""
        return f"INSTRUCTOR({self.model_name_or_path!r}, device={self.device}{truncated}: {stages})"


def _read_instructions(directory: Path) -> TrainedInstructions | None:
    path = directory / SAVED_INSTRUCTIONS
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
    return TrainedInstructions.from_json(value, str(path))


def _with_instruction(texts: list[str], instruction: str | None, name: str) -> list[Item]:
    """``texts`` as encode items, each with ``instruction``."""
    if instruction is not None and not isinstance(instruction, str):
        raise InputTypeError(
            f"instruction must be a string or None, not {type(instruction).__name__}", param="instruction"
        )
    if not isinstance(texts, (list, tuple)):
        raise InputTypeError(f"{name} must be a string or a list of strings, not {type(texts).__name__}", param=name)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputTypeError(
                f"{name}[{index}] must be a string, not {type(text).__name__}", param=name, index=index
            )
    return [Item(instruction, text) for text in texts]


def _load_stages(
    specs: list[StageSpec], max_seq_length: int | None, runtime: RuntimeOptions, cache_dir: Path | None
) -> list[nn.Module]:
    transformer = Transformer.load(specs[0].directory, max_seq_length, runtime, cache_dir)
    stages: list[nn.Module] = [transformer]
    for spec in specs[1:]:
        if spec.stage == "pooling":
            stages.append(Pooling.load(spec.directory, transformer.dimension))
        elif spec.stage == "dense":
            stages.append(Dense.load(spec.directory))
        else:
            stages.append(Normalize.load(spec.directory))
    return stages


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _versions() -> dict[str, str]:
    import transformers

    try:
        ours = version("instructor-embed")
    except PackageNotFoundError:
        ours = "unknown"
    return {"instructor_embed": ours, "transformers": transformers.__version__, "pytorch": torch.__version__}
