"""One way in to a model: :class:`ModelSpec`, the options that say which model runs where and how.

Every entry point — ``encode``, ``serve``, bulk jobs, Ray actors, ``search``, ``evaluate``, ``train`` and the
framework integrations — builds a ``ModelSpec`` from its own arguments and calls :meth:`ModelSpec.load`, so the
same option means the same thing everywhere. A spec is frozen and serialisable (:meth:`to_dict` /
:meth:`from_dict`: a bulk job records it, a Ray actor receives it); the Hub token is never part of it — not in
``repr``, not in ``to_dict`` — so it cannot reach a log, an error or a manifest.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, InputTypeError

if TYPE_CHECKING:
    from .model import INSTRUCTOR
    from .tokenization import InstructionTokenizer


@dataclass(frozen=True)
class ModelSpec:
    """Which model, where, and how it runs: ``INSTRUCTOR``'s arguments as one value.

    Args:
        model: a Hugging Face Hub id or a local directory.
        revision: a Hub branch, tag or commit.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; ``None``: CUDA when available.
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"auto"``; ``None``: float32.
        backend: ``"torch"`` or ``"onnx"``.
        quantize: ``None`` or ``"int8"``.
        compile: ``torch.compile`` the encoder.
        max_seq_length: the window in tokens; ``None``: the checkpoint's.
        truncate_dim: keep the first ``truncate_dim`` dimensions of every vector.
        cache_folder: where Hub downloads and ONNX exports are cached.
        token: a Hub token for private models (never serialised or shown).
    """

    model: str
    revision: str | None = None
    device: str | None = None
    dtype: str | None = None
    backend: str = "torch"
    quantize: str | None = None
    compile: bool = False
    max_seq_length: int | None = None
    truncate_dim: int | None = None
    cache_folder: str | None = None
    token: str | bool | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, (str, os.PathLike)):
            raise InputTypeError(
                f"model must be a Hub id or a directory, not {type(self.model).__name__}", param="model"
            )
        object.__setattr__(self, "model", os.fspath(self.model))
        if self.cache_folder is not None:
            object.__setattr__(self, "cache_folder", os.fspath(self.cache_folder))
        if self.device is not None and not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))

    def load(self) -> INSTRUCTOR:
        """The model, loaded as this spec says."""
        from .model import INSTRUCTOR

        return INSTRUCTOR(
            self.model,
            device=self.device,
            cache_folder=self.cache_folder,
            revision=self.revision,
            token=self.token,
            max_seq_length=self.max_seq_length,
            dtype=self.dtype,
            quantize=self.quantize,
            backend=self.backend,
            compile=self.compile,
            truncate_dim=self.truncate_dim,
        )

    def directory(self) -> Path:
        """The checkpoint's local directory (a Hub model is downloaded into the cache first)."""
        from .checkpoint import resolve_model_dir

        return resolve_model_dir(self.model, cache_folder=self.cache_folder, revision=self.revision, token=self.token)

    def fingerprint(self) -> str:
        """A digest of the checkpoint's files (see :func:`~instructor_embed.checkpoint.fingerprint`)."""
        from .checkpoint import fingerprint

        return fingerprint(self.directory())

    def instruction_tokenizer(self) -> InstructionTokenizer:
        """The checkpoint's tokenizer with its window, without loading the weights (a job's driver that only
        reads and checks texts)."""
        from .checkpoint import read_stage_specs
        from .modules import TokenizerSettings
        from .tokenization import InstructionTokenizer

        settings = TokenizerSettings.load(read_stage_specs(self.directory())[0].directory, self.max_seq_length)
        return InstructionTokenizer(settings.tokenizer, settings.max_seq_length, settings.do_lower_case)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some options changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON values, without the token."""
        return {key: value for key, value in asdict(self).items() if key != "token"}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> ModelSpec:
        """A spec from :meth:`to_dict`'s output (unknown keys are refused, naming them)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown model options {unknown}; known: {sorted(known - {'token'})}", param="model")
        return cls(**{**data, **overrides})


def as_spec(model: str | os.PathLike[str] | ModelSpec, **options: Any) -> ModelSpec:
    """``model`` as a spec: a ``ModelSpec`` as it is, or a name with ``options`` (``None`` options are unset).
    Giving both a spec and options is refused, naming the options, so no option is silently dropped."""
    given = {name: value for name, value in options.items() if value is not None}
    known = {f.name for f in fields(ModelSpec)} - {"model"}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InputError(f"unknown model options {unknown}; known: {sorted(known)}", param="model")
    if isinstance(model, ModelSpec):
        defaults = {f.name: f.default for f in fields(ModelSpec)}
        conflicting = sorted(name for name, value in given.items() if value != defaults.get(name))
        if conflicting:
            raise InputError(
                f"model is a ModelSpec; set {', '.join(conflicting)} in it rather than beside it", param="model"
            )
        return model
    return ModelSpec(model, **given)


def resolve_instruction(own: object, default: str | None) -> str | None:
    """The instruction an item gets: its own when it has one, else ``default``.

    The one rule for rows, requests and batches: a missing value — ``None``, or NaN as pandas and Arrow write a
    missing string — means "use the default"; a string is the item's own instruction, and ``""`` means
    explicitly none. (CSV cannot tell an empty cell from a missing one: an empty cell is missing.)"""
    if _missing(own):
        return default
    if not isinstance(own, str):
        raise InputTypeError(f"an instruction must be a string, not {type(own).__name__}", param="instruction")
    return own


def _missing(value: object) -> bool:
    """None, a NaN of any float type (Python's, NumPy's), or pandas' NA."""
    if value is None or isinstance(value, str):
        return value is None
    try:
        return bool(value != value)
    except TypeError:  # pandas.NA compares to NA, whose truth is undefined
        return type(value).__name__ == "NAType"
