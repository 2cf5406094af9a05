"""Find a checkpoint (local directory or Hugging Face Hub id) and read its sentence-transformers layout.

A checkpoint is a directory with a ``modules.json`` listing its stages in order
(``Transformer`` at the root, then ``Pooling``, optionally ``Dense`` and ``Normalize``
in sub-folders), as written by sentence-transformers and by the hkunlp INSTRUCTOR
checkpoints. A plain Hugging Face encoder directory (no ``modules.json``) is read as
Transformer + mean Pooling.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, InputTypeError, ModelNotFoundError

# The last dotted component of a ``modules.json`` "type" → the stage it names.
# The INSTRUCTOR_* names are what the original package's fine-tuning scripts wrote.
_STAGE_OF_TYPE = {
    "Transformer": "transformer",
    "INSTRUCTOR_Transformer": "transformer",
    "Pooling": "pooling",
    "INSTRUCTOR_Pooling": "pooling",
    "Dense": "dense",
    "Normalize": "normalize",
}

# Hub files never needed to run a PyTorch encoder.
_HUB_IGNORE = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "*.tflite", "onnx/*", "openvino/*", "flax_model*", "tf_model*"]


@dataclass(frozen=True)
class StageSpec:
    """One entry of ``modules.json``: which stage, and the directory holding its files."""

    stage: str  # "transformer" | "pooling" | "dense" | "normalize"
    directory: Path | None  # None: a stage the checkpoint does not describe (a plain encoder's mean pooling)


def resolve_model_dir(
    model_name_or_path: str | os.PathLike[str],
    *,
    cache_folder: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Return a local directory for a path or a Hub id, downloading (and caching) a Hub model."""
    if not isinstance(model_name_or_path, (str, os.PathLike)):
        raise InputTypeError(
            f"model_name_or_path must be a Hub id, a path or an os.PathLike, not {type(model_name_or_path).__name__}"
        )
    name = os.fspath(model_name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"{name!r} is a file; expected a model directory or a Hub id")
    if isinstance(model_name_or_path, os.PathLike) or _looks_like_local_path(name):
        raise ModelNotFoundError(f"No model directory at {str(path)!r}")
    return _download(name, cache_folder=cache_folder, revision=revision, token=token)


def _looks_like_local_path(name: str) -> bool:
    return name.startswith((".", "/", "~", "\\")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def _download(repo_id: str, *, cache_folder, revision, token) -> Path:
    import huggingface_hub
    from huggingface_hub import constants, errors

    try:
        return Path(
            huggingface_hub.snapshot_download(
                repo_id,
                revision=revision,
                token=token,
                cache_dir=cache_folder,
                ignore_patterns=_HUB_IGNORE,
            )
        )
    except errors.LocalEntryNotFoundError as exc:
        if constants.HF_HUB_OFFLINE:
            why = "HF_HUB_OFFLINE is set and it is not in the local cache"
        else:
            why = "the Hugging Face Hub could not be reached and it is not in the local cache"
        if revision:
            why += f" at revision {revision!r}"
        raise ModelNotFoundError(
            f"Cannot load model {repo_id!r}: {why}. Download it once where the Hub is reachable, "
            f"or pass the path of a local directory, e.g. INSTRUCTOR('/models/instructor-large')."
        ) from exc
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError) as exc:
        raise ModelNotFoundError(
            f"Cannot load model {repo_id!r}: no such repository or revision on the Hugging Face Hub "
            f"(and no local directory of that name). Private repositories need token=..."
        ) from exc
    except errors.HFValidationError as exc:
        raise ModelNotFoundError(f"{repo_id!r} is neither a local directory nor a valid Hub id: {exc}") from exc


def read_stage_specs(directory: Path) -> list[StageSpec]:
    """The model's stages in order, from ``modules.json`` (or Transformer + mean Pooling without one)."""
    modules_json = directory / "modules.json"
    if not modules_json.exists():
        if not (directory / "config.json").exists():
            raise CheckpointError(
                f"{directory} has neither modules.json nor config.json: not a sentence-transformers "
                "or Hugging Face model directory"
            )
        return [StageSpec("transformer", directory), StageSpec("pooling", None)]
    entries = read_json(modules_json)
    if not isinstance(entries, list) or not entries:
        raise CheckpointError(f"{modules_json}: expected a non-empty JSON list of modules")
    specs = []
    for position, entry in enumerate(sorted(entries, key=lambda e: e.get("idx", 0) if isinstance(e, dict) else 0)):
        if not isinstance(entry, dict) or "type" not in entry or "path" not in entry:
            raise CheckpointError(f"{modules_json}: entry {position} lacks 'type' or 'path': {entry!r}")
        kind = _STAGE_OF_TYPE.get(str(entry["type"]).rsplit(".", 1)[-1])
        if kind is None:
            raise CheckpointError(
                f"{modules_json}: module {entry['type']!r} is not supported "
                f"(supported: Transformer, Pooling, Dense, Normalize)"
            )
        specs.append(StageSpec(kind, directory / entry["path"]))
    if specs[0].stage != "transformer" or sum(s.stage == "transformer" for s in specs) != 1:
        raise CheckpointError(f"{modules_json}: the first module, and only the first, must be a Transformer")
    if not any(s.stage == "pooling" for s in specs):
        raise CheckpointError(f"{modules_json}: no Pooling module; token embeddings cannot become sentence embeddings")
    return specs


# The files that define a model's vectors: configs, weights, tokenizer vocabularies. Not READMEs, not ONNX
# exports, not config_sentence_transformers.json (it records the versions that wrote it, nothing else).
_DEFINING_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".pt", ".pth")
_DEFINING_NAMES = ("vocab.txt", "merges.txt")
_NOT_DEFINING = ("config_sentence_transformers.json",)
_SAMPLED_ABOVE, _SAMPLES, _BLOCK = 1 << 20, 64, 4096


def fingerprint(directory: Path) -> str:
    """A digest of the files that define a checkpoint's vectors (configs, weights, vocabularies), whatever
    runtime later runs it: the same files in another folder, on another machine, give the same digest; a
    retrained checkpoint saved at the same path gives another. Files over 1 MiB are sampled (their size and 64
    blocks spread over them), so a 5 GB model takes a moment, not minutes."""
    digest = hashlib.sha256()
    for path in sorted(_defining_files(directory)):
        digest.update(f"{path.relative_to(directory).as_posix()}|{file_digest(path)}|".encode())
    return digest.hexdigest()[:32]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's size and content; over 1 MiB, of its size and 64 blocks spread over it."""
    size = path.stat().st_size
    digest = hashlib.sha256(f"{size}|".encode())
    with open(path, "rb") as handle:
        if size <= _SAMPLED_ABOVE:
            digest.update(handle.read())
        else:
            for number in range(_SAMPLES):
                handle.seek(number * (size - _BLOCK) // (_SAMPLES - 1))
                digest.update(handle.read(_BLOCK))
    return digest.hexdigest()


def _defining_files(directory: Path) -> list[Path]:
    found = []
    for folder, subfolders, files in os.walk(directory, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name != "onnx"]
        for name in files:
            if name in _NOT_DEFINING or name.startswith("."):
                continue
            if name.endswith(_DEFINING_SUFFIXES) or name in _DEFINING_NAMES:
                found.append(Path(folder) / name)
    return found


def read_json(path: Path) -> Any:
    """Parse a JSON file, raising :class:`CheckpointError` that names the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise CheckpointError(f"Missing checkpoint file {path}") from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Cannot read checkpoint file {path}: {exc}") from exc


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """Load ``model.safetensors`` (preferred) or ``pytorch_model.bin`` from a stage directory."""
    from safetensors.torch import load_file

    safetensors_path = directory / "model.safetensors"
    bin_path = directory / "pytorch_model.bin"
    try:
        if safetensors_path.exists():
            return load_file(str(safetensors_path))
        if bin_path.exists():
            return torch.load(bin_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors and torch raise assorted types for a damaged file
        broken = safetensors_path if safetensors_path.exists() else bin_path
        raise CheckpointError(f"Cannot read weights from {broken}: {exc}") from exc
    raise CheckpointError(f"Missing weights in {directory}: expected model.safetensors or pytorch_model.bin")


def check_state_dict_keys(state_dict: dict[str, torch.Tensor], expected: set[str], source: Path) -> None:
    """Fail loudly, naming the keys, when the weights in ``source`` do not fit the module."""
    missing = sorted(expected - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected)
    if missing or unexpected:
        raise CheckpointError(f"Weights in {source} do not fit: missing keys {missing}, unexpected keys {unexpected}")
