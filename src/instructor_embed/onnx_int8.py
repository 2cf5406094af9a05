"""Int8 ONNX encoders that stay faithful: quantized, then checked against float32 on the checkpoint itself.

Recipe (measured on the real all-MiniLM-L6-v2 weights, README "int8 on real weights"): dynamic int8 with
per-channel weight scales, only on matrix products with a weight (attention's activation-by-activation products stay
float32), 7-bit weights (``reduce_range``) where the CPU lacks VNNI, as ONNX Runtime advises against u8*s8
saturation. Per-tensor weight scales, the previous recipe, gave cosine to float32 of min 0.940 on real weights;
per-channel scales gave 0.989, and static (calibrated, QDQ) quantization was worse still (0.876) because activation
outliers vary from sentence to sentence.

Real encoders differ in where their outliers sit (T5's feed-forward output, ``wo``, overflows float16 and
transformers keeps it in float32), and random-weight test models have none, so no fixed rule can be trusted for
every checkpoint. Each quantized file is therefore checked when it is made: the mean-pooled token embeddings of
``CHECK_TEXTS`` from the int8 and the float32 encoders must reach cosine ``MIN_COSINE`` (min) and ``MEAN_COSINE``
(mean). This is a guard against checkpoints that int8 breaks, not float32 fidelity: per-tensor activation scales
cost one- and two-word inputs most (0.956 for "ok" on MiniLM, against 0.989 over 512 STS-B sentences), which is why
``dtype="auto"`` never picks int8. Below the guard, matrix products go back to float32 in steps — the modules
transformers keeps in float32 and the first layer's feed-forward output (the most sensitive product measured on
MiniLM), then every feed-forward output — until the check passes. What was kept in float32 and the measured
cosines are stored beside the file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import durable

logger = logging.getLogger(__name__)

RECIPE = "int8-v2"  # names the cached file: a changed recipe never reuses an old file
MIN_COSINE = 0.95
MEAN_COSINE = 0.99
# Modules whose activations overflow float16, which transformers therefore keeps in float32 (by model type).
FRAGILE_MODULES = {"t5": ("wo",), "mt5": ("wo",), "umt5": ("wo",)}

# Varied English text for the check: short and long, with and without instructions, numbers and names.
CHECK_TEXTS = (
    "Yes.",
    "A man is playing a guitar.",
    "Two dogs run through the snow toward the camera.",
    "The stock market fell sharply on Tuesday after the central bank raised interest rates.",
    "Represent the Medicine sentence for retrieving a duplicate sentence: Aspirin lowers fever in most adults.",
    "Represent the Science title: Attention is all you need",
    "Represent the question for retrieving supporting documents: how long does it take to boil an egg?",
    "Represent the Wikipedia document for retrieval: The Amazon river carries more water than the next seven "
    "largest rivers combined, and its basin covers about seven million square kilometres of South America.",
    "what is the capital of australia",
    "Canberra was chosen as the capital in 1908 as a compromise between Sydney and Melbourne.",
    "Error 404: the page you requested could not be found on this server.",
    "def add(a, b): return a + b",
    "The patient reported mild headaches, nausea and occasional dizziness over the past three weeks.",
    "Represent the Financial statement: Revenue for the quarter was $4.2 billion, up 12 percent year over year.",
    "I loved this movie! The acting was superb and the soundtrack still gives me chills.",
    "Terrible service, cold food, and we waited an hour. Never again.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Represent the Amazon review for classifying its sentiment: The battery died after two days.",
    "The committee will meet again on 14 March to review the revised budget proposal.",
    "A woman is slicing an onion.",
    "Represent the Twitter post for classifying its emotion: finally home after a 14 hour flight!!!",
    "In 1969, Neil Armstrong and Buzz Aldrin became the first people to walk on the Moon, while Michael Collins "
    "orbited above in the command module. The mission, Apollo 11, had launched four days earlier from Florida, "
    "and its success ended the space race that had begun with Sputnik twelve years before.",
    "Represent the legal clause for retrieval: The tenant shall not sublet the premises without prior written "
    "consent of the landlord, which consent shall not be unreasonably withheld or delayed.",
    "ok",
    "Please reset my password, I can no longer log in to my account.",
    "How do I transfer money to a friend abroad, and what are the fees?",
    "Represent the Biology sentence: Mitochondria are the site of oxidative phosphorylation.",
    "The quick brown fox jumps over the lazy dog.",
    "Machine translation quality has improved markedly since the introduction of neural sequence models, "
    "although low-resource languages still lag far behind English, French or Chinese.",
    "Represent the Reddit title for clustering: What is the best budget laptop for programming in 2024?",
    "Heavy rain is expected across the north of the country tonight, with local flooding possible.",
    "1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
)


@dataclass(frozen=True)
class Int8Report:
    """How an int8 file was made: matrix products kept in float32, and the check's cosines."""

    recipe: str
    reduce_range: bool
    quantized: int
    kept_float: list[str]
    min_cosine: float
    mean_cosine: float

    @property
    def faithful(self) -> bool:
        return self.min_cosine >= MIN_COSINE and self.mean_cosine >= MEAN_COSINE

    def describe(self) -> str:
        total = self.quantized + len(self.kept_float)
        return (
            f"int8 on {self.quantized} of {total} matrix products, check cosine min {self.min_cosine:.4f} "
            f"mean {self.mean_cosine:.4f}" + ("" if self.faithful else " (below the guard)")
        )

    @classmethod
    def read(cls, path: Path) -> Int8Report:
        return cls(**json.loads(path.read_text()))

    def write(self, path: Path) -> None:
        """Replace ``path`` durably: another process never reads half a report."""
        durable.write_text(path, json.dumps(asdict(self), indent=1) + "\n", fault="onnx")


def report_path(int8_path: Path) -> Path:
    return int8_path.with_suffix(".json")


def quantize_checked(
    float_path: Path,
    int8_path: Path,
    check_feeds: Sequence[dict[str, np.ndarray]],
    keep_float_modules: Sequence[str],
    reduce_range: bool,
) -> Int8Report:
    """Quantize ``float_path`` into ``int8_path`` (published durably) and record how.

    Tries ever fewer int8 matrix products until the int8 encoder's pooled embeddings of ``check_feeds`` match the
    float32 encoder's; a report of the last try (not ``faithful``) if none does.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(float_path), load_external_data=False).graph
    products = _weight_products(graph)
    reference = _pooled(float_path, check_feeds)
    report = None
    for kept in _fallback_steps(products, keep_float_modules):
        quantized = [name for name, _ in products if name not in kept]

        def quantize(partial: Path, nodes=quantized) -> None:
            quantize_dynamic(
                str(float_path),
                str(partial),
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=reduce_range,
                nodes_to_quantize=nodes,
            )

        with _quiet_quantizer():
            durable.write_file(int8_path, quantize, fault="onnx")
        cosines = _cosines(_pooled(int8_path, check_feeds), reference)
        report = Int8Report(
            RECIPE,
            reduce_range,
            len(quantized),
            sorted(kept),
            float(cosines.min()),
            float(cosines.mean()),
        )
        logger.info("%s: %s", int8_path.name, report.describe())
        if report.faithful:
            break
    assert report is not None
    report.write(report_path(int8_path))
    return report


@contextmanager
def _quiet_quantizer():
    """Drop ONNX Runtime's quantizer's root-logger advice ("consider pre-processing", ...) while it runs for us."""

    def keep(record: logging.LogRecord) -> bool:
        return f"onnxruntime{os.sep}quantization" not in record.pathname

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _weight_products(graph) -> list[tuple[str, tuple[int, ...]]]:
    """The MatMul nodes whose second input is a weight, in graph order, with the weight's shape."""
    weights = {init.name: tuple(init.dims) for init in graph.initializer}
    return [
        (node.name, weights[node.input[1]])
        for node in graph.node
        if node.op_type == "MatMul" and node.input[1] in weights and len(weights[node.input[1]]) == 2
    ]


def _fallback_steps(products: list[tuple[str, tuple[int, ...]]], keep_float_modules: Sequence[str]) -> list[set]:
    """Sets of products kept in float32, from none to every feed-forward output (a weight narrower than it is tall)."""
    down = [name for name, (rows, columns) in products if rows > columns]
    fragile = {name for name, _ in products if any(f"/{module}/" in name for module in keep_float_modules)}
    steps = [set(), fragile | set(down[:1]), fragile | set(down)]
    return [step for number, step in enumerate(steps) if step not in steps[:number]]


def _pooled(path: Path, feeds: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pooled = []
    for feed in feeds:
        (hidden,) = session.run(["token_embeddings"], feed)
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled.append((hidden * mask).sum(1) / mask.sum(1))
    return np.concatenate(pooled)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
