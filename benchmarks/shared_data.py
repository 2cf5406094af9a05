"""Training files the benchmarks build from ``../shared`` (read there, written to a scratch folder)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def stsb_train_csv(folder: Path) -> Path:
    """STS-B train as a ``scored`` CSV (sentence1, sentence2, score on 0–5)."""
    lines = (SHARED_DATA / "sts/stsbenchmark/sts-train.csv").read_text(encoding="utf-8").splitlines()
    path = folder / "stsb-train.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "score"])
        writer.writerows([fields[5], fields[6], fields[4]] for fields in (line.split("\t") for line in lines))
    return path


def medi_jsonl(folder: Path, per_task: int) -> Path:
    """MEDI-format rows from ``examples/train_on_shared_data.py`` (at most ``per_task`` rows per task)."""
    spec = importlib.util.spec_from_file_location("example", ROOT / "examples" / "train_on_shared_data.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    path = folder / "medi.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in example.build_medi(example.SHARED, per_task=per_task)))
    return path
