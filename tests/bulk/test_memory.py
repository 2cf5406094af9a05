"""A bulk job's memory does not grow with its input: 10,000 rows and 100,000 rows peak at the same RSS.
(benchmarks/bulk_bench.py measures a million rows.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

JOB = """
import json, resource, sys
from instructor_embed.bulk import JobConfig, embed_file
from instructor_embed import ModelSpec
spec = ModelSpec(sys.argv[3], device="cpu", truncate_dim=8)
summary = embed_file(JobConfig(input=sys.argv[1], output=sys.argv[2], model=spec, batch_size=512, shard_rows=2000,
                               show_progress=False))
print(json.dumps({"rows": summary.rows, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_rss(tmp_path, model_dir, rows: int) -> dict:
    source = tmp_path / f"in-{rows}.jsonl"
    with open(source, "w") as handle:
        for i in range(rows):
            handle.write(json.dumps({"id": i, "text": f"row {i}"}) + "\n")
    result = subprocess.run(
        [sys.executable, "-c", JOB, str(source), str(tmp_path / f"out-{rows}"), str(model_dir)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_peak_memory_is_flat_from_ten_thousand_to_a_hundred_thousand_rows(tiny_t5_dir, tmp_path):
    small = peak_rss(tmp_path, tiny_t5_dir, 10_000)
    large = peak_rss(tmp_path, tiny_t5_dir, 100_000)
    assert (small["rows"], large["rows"]) == (10_000, 100_000)
    # The input is 10x larger; the job holds one shard (2,000 rows) at a time either way.
    assert large["peak_rss_mb"] - small["peak_rss_mb"] < 50, (small, large)
