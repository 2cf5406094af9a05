"""One benchmark measurement in its own process: load an implementation, time its encode, keep its vectors.

Runs under the project's venv (our modes, current sentence-transformers) or the reference venv
(InstructorEmbedding 1.0.1), so it imports nothing it does not need. Invoked by benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def load(impl: str, model_dir: str, mode: dict):
    if impl == "reference":
        from InstructorEmbedding import INSTRUCTOR

        model = INSTRUCTOR(model_dir, device="cpu")
        return lambda instruction, texts: model.encode([[instruction, t] for t in texts], batch_size=32)
    if impl == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_dir, device="cpu")
        return lambda instruction, texts: model.encode(texts, prompt=instruction or None, batch_size=32)
    from instructor_embed import INSTRUCTOR

    model = INSTRUCTOR(model_dir, device="cpu", **mode)
    return lambda instruction, texts: model.encode(
        [[instruction, t] for t in texts] if instruction else texts, batch_size=32
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory. On Linux from VmHWM, which starts afresh at exec: ``ru_maxrss`` keeps
    the parent's resident size from before the exec (measured: every worker reported the 3 GB of the driver)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", required=True)
    parser.add_argument("--mode", default="{}", help="INSTRUCTOR keyword arguments, as JSON")
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", required=True, help="JSON: {set: {instruction, texts}}")
    parser.add_argument("--out", required=True, help="where to write vectors (.npz) and timings (.json)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    sets = json.loads(open(args.inputs, encoding="utf-8").read())
    started = time.perf_counter()
    encode = load(args.impl, args.model, json.loads(args.mode))
    timings = {"load_s": time.perf_counter() - started}
    vectors = {}
    for name, spec in sets.items():
        instruction, texts = spec["instruction"], spec["texts"]
        if spec.get("timed", True):
            encode(instruction, texts[:32])  # warm-up: first-call allocations, lazy init
        best = float("inf")
        for _ in range(args.repeats if spec.get("timed", True) else 1):
            start = time.perf_counter()
            vectors[name] = np.asarray(encode(instruction, texts), dtype=np.float32)
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    timings["peak_rss_mb"] = peak_rss_mb()
    np.savez(args.out + ".npz", **vectors)
    with open(args.out + ".json", "w", encoding="utf-8") as handle:
        json.dump(timings, handle)


if __name__ == "__main__":
    main()
