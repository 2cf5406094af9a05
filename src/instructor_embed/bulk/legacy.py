"""Output folders written by instructor-embed 0.1 (manifest format 1), brought into today's layout on resume.

Format 1 kept its metadata under names that data tools read as data (``manifest.json``, ``invalid_rows.jsonl``,
``faiss.index``, ``faiss.json``), used fixed temporary names (``.part-00003.parquet.tmp``), and recorded the model
and runtime as text: a fingerprint that hashed ``repr(model)`` with the sampled weights, and a runtime such as
``"float32, backend=torch"``. When such a job runs again:

1. its identity is compared with this run's on every setting both formats record (the runtime text is parsed
   here, once, for this purpose only), and a difference is refused by name, as for any job;
2. the model is checked by recomputing the 0.1 fingerprint of the loaded model (0.1's exact formula, kept here);
3. the files are renamed into the new layout, stale temporaries removed, and the manifest rewritten as format 2.

A folder whose 0.1 fingerprint cannot be reproduced (the model moved to ``cuda:1``, a Ray job whose driver holds
no model) is refused with the ways to continue.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from .. import durable
from .folder import FAISS, INVALID_ROWS, JobFolder

LEGACY_MANIFEST = "manifest.json"
LEGACY_NAMES = (LEGACY_MANIFEST, "invalid_rows.jsonl", "faiss.index", "faiss.json")
_LEGACY_TEMPORARY = re.compile(
    r"\.(part-\d{5}\.parquet|manifest\.json|invalid_rows\.jsonl)\.tmp|\.faiss\.index\.partial"
)


def needs_migration(folder: JobFolder) -> bool:
    return not folder.holds_job() and (folder.path / LEGACY_MANIFEST).is_file()


def migrate(folder: JobFolder, identity: dict, model) -> dict:
    """The folder's job as a format 2 manifest (also written there), its files renamed; or an error naming what
    differs from this run's ``identity``. ``model`` is the loaded model (None when this process holds none)."""
    try:
        old = json.loads((folder.path / LEGACY_MANIFEST).read_text(encoding="utf-8"))
        recorded, runtime = old["identity"], _runtime(old["identity"]["runtime"])
        shards = old["shards"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise folder.damaged(f"{LEGACY_MANIFEST} (written by instructor-embed 0.1) cannot be read ({exc!r})") from None
    comparable = {**recorded, "model": identity["model"], "runtime": runtime, "input": recorded["input"]["fingerprint"]}
    changed = [key for key in identity if comparable.get(key) != identity[key]]
    if changed:
        details = "; ".join(f"{key}: {comparable.get(key)!r} -> {identity[key]!r}" for key in changed)
        raise _refused(folder, f"holds a job with other settings ({details})")
    if model is None:
        raise _refused(
            folder,
            "was written by instructor-embed 0.1, whose model check needs the model in this process: run the same "
            "command once with --engine local to bring the folder up to date",
        )
    if legacy_fingerprint(model) != recorded["model"]["fingerprint"]:
        raise _refused(
            folder,
            "was written by instructor-embed 0.1 with another model, or the same model on another device "
            f"(fingerprint {recorded['model']['fingerprint']} then, {legacy_fingerprint(model)} now)",
        )
    manifest = {
        "format": 2,
        "identity": identity,
        "rows": old["rows"],
        "invalid_rows": old.get("invalid_rows", 0),
        "ids": old["ids"],
        "shards": shards,
        "complete": bool(old.get("complete")),
    }
    _move(folder, "invalid_rows.jsonl", INVALID_ROWS)
    if (folder.path / "faiss.index").is_file() and (folder.path / "faiss.json").is_file():
        (folder.path / FAISS).mkdir(exist_ok=True)
        _move(folder, "faiss.json", f"{FAISS}/info.json")
        _move(folder, "faiss.index", f"{FAISS}/index.faiss")
    for name in os.listdir(folder.path):
        if _LEGACY_TEMPORARY.fullmatch(name):
            (folder.path / name).unlink()
    return manifest


def finish(folder: JobFolder) -> None:
    """After the format 2 manifest is written: remove the format 1 one (a run killed in between finishes here)."""
    (folder.path / LEGACY_MANIFEST).unlink(missing_ok=True)
    for name in ("faiss.index", "faiss.json"):
        (folder.path / name).unlink(missing_ok=True)
    durable.fsync_folder(folder.path)


def _move(folder: JobFolder, old: str, new: str) -> None:
    if (folder.path / old).exists():
        os.replace(folder.path / old, folder.path / new)


def _refused(folder: JobFolder, why: str) -> Exception:
    from ..errors import InputError

    return InputError(
        f"{folder.path} {why}; pass --overwrite (overwrite=True) to embed again from the start, or choose another "
        "output folder",
        path=folder.path,
    )


def _runtime(text: str) -> dict:
    """0.1's runtime text ("int8, backend=onnx", "bfloat16, backend=torch, auto: ...") as today's identity."""
    name, _, rest = text.partition(", backend=")
    backend = rest.split(",", 1)[0]
    if name == "int8":
        return {"dtype": "float32", "backend": backend, "quantize": "int8"}
    return {"dtype": name, "backend": backend, "quantize": None}


def legacy_fingerprint(model) -> str:
    """instructor-embed 0.1's model fingerprint: the text of its ``repr`` after the first colon, then a sample of
    every weight tensor. The ``repr`` is rebuilt here in 0.1's format, so later changes to ``repr`` leave it be."""
    import torch

    digest = hashlib.sha256(_legacy_repr(model).split(":", 1)[-1].encode())
    for key, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // 4096)
        sample = flat[::step].to("cpu", torch.float32).numpy()
        digest.update(key.encode() + str(tuple(tensor.shape)).encode() + sample.tobytes())
    return digest.hexdigest()[:32]


def _legacy_repr(model) -> str:
    from ..modules import Dense, Pooling, Transformer

    stages = []
    for stage in model:
        if isinstance(stage, Transformer):
            config, runtime = stage.auto_model.config, stage.runtime
            name = "int8" if runtime.quantize else str(runtime.dtype).removeprefix("torch.")
            described = f"{name}, backend={runtime.backend}" + (", compiled" if runtime.compile else "")
            described += f", auto: {runtime.reason}" if runtime.reason else ""
            text = (
                f"{config.architectures[0] if config.architectures else config.model_type}, {described}, "
                f"attention={getattr(config, '_attn_implementation', None)}, max_seq_length={stage.max_seq_length}, "
                f"do_lower_case={stage.do_lower_case}"
            )
        elif isinstance(stage, Pooling):
            text = f"dimension={stage.word_embedding_dimension}, modes={'+'.join(stage.modes)}"
        elif isinstance(stage, Dense):
            linear = stage.linear
            text = f"{linear.in_features}->{linear.out_features}, bias={linear.bias is not None}, activation={stage.activation_name}"
        else:
            text = ""
        stages.append(f"{type(stage).__name__}({text})")
    truncated = f", truncate_dim={model.truncate_dim}" if model.truncate_dim else ""
    return f"INSTRUCTOR({model.model_name_or_path!r}, device={model.device}{truncated}: {' -> '.join(stages)})"
