"""The output folder of a bulk job: what the job writes there, what it never touches, and who may write it.

Layout (a dataset as it stands: pyarrow, pandas, polars, DuckDB, Ray Data and Spark skip names that start
with ``_`` or ``.``, so ``pyarrow.parquet.read_table(folder)`` reads just the shards)::

    part-00000.parquet, ...   the shards: id, embedding (+ instruction, chunk columns)
    _manifest.json            the job: its identity, each shard with its rows and SHA-256, complete or not
    _invalid_rows.jsonl       rows left out by --skip-invalid, by line
    _faiss/                   search --faiss: the HNSW index and what it indexes (derived; rebuilt when stale)
    _lock                     held by the running job (``flock``; the OS releases it when the job dies)
    .NAME.PID-RANDOM.partial  a write in progress, or left by a killed one (see ``instructor_embed.durable``)

The job owns exactly these names. Everything else in the folder is the user's: a resumed job keeps it, and
``overwrite`` removes only the job's own files, refusing a non-empty folder that no job made.
A folder written by instructor-embed 0.1 (``manifest.json``, ``invalid_rows.jsonl``, ``faiss.*``) is renamed
into this layout when its job resumes (:mod:`instructor_embed.bulk.legacy`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import durable
from ..dependencies import require
from ..errors import InputError

MANIFEST = "_manifest.json"
INVALID_ROWS = "_invalid_rows.jsonl"
FAISS = "_faiss"
LOCK = "_lock"
METADATA = (MANIFEST, INVALID_ROWS, FAISS, LOCK)
_SHARD = re.compile(r"part-\d{5}\.parquet")


def shard_name(number: int) -> str:
    return f"part-{number:05d}.parquet"


def is_shard_name(name: object) -> bool:
    return isinstance(name, str) and _SHARD.fullmatch(name) is not None


def is_own(name: str) -> bool:
    """Whether a name in the folder is one the job writes (a shard, its metadata, or a temporary of either)."""
    target = durable.partial_target(name) or name
    return is_shard_name(target) or target in METADATA


class JobFolder:
    """A bulk job's output folder (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def holds_job(self) -> bool:
        return self.manifest_path.is_file()

    def is_empty(self) -> bool:
        return not self.path.exists() or not any(name != LOCK for name in os.listdir(self.path))

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock while the block runs; another job holding it stops this one at once, naming
        its process. The folder is created if needed; if the block leaves no job in it, the lock file and a
        folder created here are removed again (a refused job leaves no trace)."""
        import fcntl

        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        new_lock = not (self.path / LOCK).exists()
        handle = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(handle, 64, 0).decode("ascii", "replace").strip() or "unknown"
                raise InputError(
                    f"{self.path}: another job (pid {holder}) is writing this folder; wait for it to finish, "
                    "or choose another output folder",
                    path=self.path,
                ) from None
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
            try:
                yield
            finally:
                if new_lock and not self.holds_job() and not (self.path / "manifest.json").is_file():
                    (self.path / LOCK).unlink(missing_ok=True)
                    if created and self.is_empty():
                        self.path.rmdir()
        finally:
            os.close(handle)

    def read_manifest(self) -> dict:
        """The manifest as JSON, or an error saying it is damaged and how to start over."""
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.damaged(f"{MANIFEST} is not valid JSON ({exc})") from None
        if not isinstance(manifest, dict):
            raise self.damaged(f"{MANIFEST} does not hold a JSON object")
        return manifest

    def write_manifest(self, manifest: dict) -> None:
        durable.write_text(self.manifest_path, json.dumps(manifest, indent=2) + "\n", fault="manifest")

    def write_shard(self, name: str, table) -> None:
        parquet = require("parquet", "pyarrow.parquet", "bulk embedding")
        durable.write_file(self.path / name, lambda temporary: parquet.write_table(table, temporary), fault="shard")

    def write_invalid_rows(self, lines: str) -> None:
        durable.write_text(self.path / INVALID_ROWS, lines, fault="invalid_rows")

    def damaged(self, what: str) -> InputError:
        return InputError(
            f"{self.path}: {what}; the record of what was committed cannot be trusted. Pass --overwrite "
            "(overwrite=True) to embed again from the start",
            path=self.path,
        )

    def remove_unrecorded(self, recorded: set[str]) -> None:
        """Remove the job's files that the manifest does not list — shards renamed but never recorded, or
        recorded after a damaged one, and temporaries of killed writes. Nothing else is touched."""
        for name in os.listdir(self.path):
            if name in METADATA or name in recorded or not is_own(name):
                continue
            path = self.path / name
            if path.is_file() or path.is_symlink():
                path.unlink()

    def clear(self) -> None:
        """``overwrite``: remove every file of the job (the user's files stay); refuse a folder no job made."""
        from .legacy import LEGACY_NAMES

        if not self.path.exists():
            return
        if not self.holds_job() and not (self.path / "manifest.json").is_file() and not self.is_empty():
            raise InputError(
                f"{self.path} is not empty and holds no job: --overwrite replaces a job's output, never other "
                "files; choose another folder",
                path=self.path,
            )
        for name in os.listdir(self.path):
            path = self.path / name
            if name == LOCK:
                continue
            if name == FAISS or name in LEGACY_NAMES:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            elif is_own(name) and not path.is_dir():
                path.unlink()
        durable.fsync_folder(self.path)
