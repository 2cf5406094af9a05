"""Int8 ONNX encoders that stay faithful: smoothed, quantized per token, then checked against float32.

Recipe ``int8-v3`` (measured on the real all-MiniLM-L6-v2 weights, README "int8 on real weights"), applied to every
matrix product with a weight (attention's activation-by-activation products stay float32):

- **per-token activation scales**: each token's row of the product's input gets its own int8 scale, computed as the
  graph runs (absolute maximum over the row). ONNX Runtime's dynamic quantization gives a whole batch one scale, so
  a short sentence's precision depended on the longest, most extreme input beside it: one- and two-word inputs fell
  to cosine 0.965 to float32, and the vectors moved with the batch. Per token, a row's codes depend on that row only.
- **SmoothQuant** (Xiao et al., 2023): the outlier channels of trained encoders' activations take an input
  channel's scale ``s_j = max|x_j|^0.5 / max|w_j|^0.5`` into the weights (``x / s`` times ``s * W``, exact in
  float32), so that one channel no longer decides every token's scale. Activation maxima come from running the
  float32 encoder on ``CHECK_TEXTS``; the products reading one activation (query, key and value) share its scale and
  its quantized copy.
- **per-channel int8 weights** (symmetric; 7-bit, ``reduce_range``, where the CPU lacks VNNI, as ONNX Runtime
  advises against u8*s8 saturation).

The graph uses ``QuantizeLinear`` per row and ONNX Runtime's ``MatMulIntegerToFloat``. Per-token scales alone
lifted the minimum cosine over the 2,552 STS-B test sentences from 0.965 to 0.982, with smoothing to 0.992 (mean
0.9987, STS-B 82.00 against float32's 82.03), at about 0.95x the speed of ONNX Runtime's dynamic int8 with one
scale per batch. Smoothing alone, with one scale per batch, made it worse (0.956). Graphs past protobuf's 2 GB keep their
weights in a ``.data`` file beside them.

Real encoders differ in where their outliers sit (T5's feed-forward output, ``wo``, overflows float16 and
transformers keeps it in float32), and random-weight test models have none, so no fixed rule can be trusted for
every checkpoint. Each quantized file is therefore checked when it is made: the mean-pooled token embeddings of
``CHECK_TEXTS`` from the int8 and the float32 encoders must reach cosine ``MIN_COSINE`` (min) and ``MEAN_COSINE``
(mean), and ``dtype="auto"`` takes int8 only at ``AUTO_MIN_COSINE`` / ``AUTO_MEAN_COSINE``. Below the guard,
matrix products go back to float32 in steps — the modules transformers keeps in float32 and the first layer's
feed-forward output (the most sensitive product measured on MiniLM), then every feed-forward output — until the
check passes. What was kept in float32 and the measured cosines are stored beside the file.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import durable

logger = logging.getLogger(__name__)

RECIPE = "int8-v3"  # names the cached file: a changed recipe never reuses an old file
MIN_COSINE = 0.95
MEAN_COSINE = 0.99
AUTO_MIN_COSINE = 0.98  # what dtype="auto" asks of int8 before it picks it: the project's fidelity bar
AUTO_MEAN_COSINE = 0.995
PROTOBUF_LIMIT = 2**31 - 2**24  # bytes of one protobuf message, with a margin for the graph around the weights
SMOOTHING = 0.5  # SmoothQuant's migration strength: how much of an activation channel's range moves to the weights
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

    @property
    def faithful_for_auto(self) -> bool:
        """Close enough to float32 for ``dtype="auto"`` to pick int8 without being asked."""
        return self.min_cosine >= AUTO_MIN_COSINE and self.mean_cosine >= AUTO_MEAN_COSINE

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

    model = onnx.load(str(float_path))
    products = _weight_products(model.graph)
    maxima = _activation_maxima(model, check_feeds)
    reference = _pooled(float_path, check_feeds)
    report = None
    for kept in _fallback_steps(products, keep_float_modules):
        quantized = _int8_model(model, kept, maxima, reduce_range)
        durable.write_file(int8_path, lambda partial, m=quantized: _save(m, partial, int8_path.name), fault="onnx")
        cosines = _cosines(_pooled(int8_path, check_feeds), reference)
        report = Int8Report(
            RECIPE,
            reduce_range,
            len(products) - len(kept),
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


def _activation_maxima(model, feeds: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each weight product's input: its per-channel absolute maxima over every token of ``feeds``."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inputs = sorted({node.input[0] for node in _weight_product_nodes(probe.graph)})
    for name in inputs:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    maxima: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="int8-probe-") as folder:
        path = Path(folder) / "probe.onnx"
        _save(probe, path, path.name)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for feed in feeds:
            for name, values in zip(inputs, session.run(inputs, feed), strict=True):
                found = np.abs(values).reshape(-1, values.shape[-1]).max(0)
                maxima[name] = np.maximum(maxima[name], found) if name in maxima else found
    return maxima


def _save(model, path: Path, name: str) -> None:
    """Write ``model`` to ``path``; past protobuf's 2 GB limit its weights go to ``NAME.data`` beside it (``name``:
    the file's final name, which the graph refers to)."""
    import onnx

    if model.ByteSize() < PROTOBUF_LIMIT:
        onnx.save(model, str(path))
    else:
        onnx.save(model, str(path), save_as_external_data=True, location=f"{name}.data", size_threshold=1024)


def _int8_model(model, kept: set[str], maxima: dict[str, np.ndarray], reduce_range: bool):
    """A copy of ``model`` whose weight products, except those named in ``kept``, run in int8: the input smoothed
    and quantized per token (once per input, shared by its products), the weight per output channel."""
    import onnx
    from onnx import helper, numpy_helper

    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    graph = model_copy.graph
    weights = {init.name: init for init in graph.initializer}
    nodes = _weight_product_nodes(graph)
    to_quantize = {node.name for node in nodes if node.name not in kept}
    consumers: dict[str, list] = {}  # input name -> the products quantized on it
    for node in nodes:
        if node.name in to_quantize:
            consumers.setdefault(node.input[0], []).append(node)
    weight_levels = 63 if reduce_range else 127

    def constant(name: str, value, dtype=np.float32) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    inverse_levels, floor = constant("int8/inverse_levels", 1 / 127), constant("int8/floor", 1e-12)
    zero_point, one = constant("int8/zero_point", 128, np.uint8), constant("int8/one", 1.0)
    first, last = constant("int8/first", [0], np.int64), constant("int8/last", [-1], np.int64)
    rewritten, quantized_inputs, used_weights = [], {}, set()
    for node in graph.node:
        if node.op_type != "MatMul" or node.name not in to_quantize:
            rewritten.append(node)
            continue
        source = node.input[0]
        if source not in quantized_inputs:  # smooth and quantize this input once, before its first product
            group = consumers[source]
            weight_maxima = np.max([np.abs(numpy_helper.to_array(weights[n.input[1]])).max(1) for n in group], 0)
            smoothing = _smoothing(maxima[source], weight_maxima)
            prefix = f"int8/{len(quantized_inputs)}"
            step = {name: f"{prefix}/{name}" for name in _QUANTIZE_STEPS}
            width = constant(f"{prefix}/width", [-1, len(smoothing)], np.int64)
            rewritten += [
                helper.make_node(
                    "Mul", [source, constant(f"{prefix}/inverse_smoothing", 1 / smoothing)], [step["smoothed"]]
                ),
                helper.make_node("Reshape", [step["smoothed"], width], [step["rows"]]),  # a row per token
                helper.make_node("Abs", [step["rows"]], [step["abs"]]),
                helper.make_node("ReduceMax", [step["abs"]], [step["max"]], axes=[1], keepdims=0),
                helper.make_node("Max", [step["max"], floor], [step["floor"]]),
                helper.make_node("Mul", [step["floor"], inverse_levels], [step["scales"]]),
                helper.make_node("Shape", [step["scales"]], [step["count"]]),
                helper.make_node("Expand", [zero_point, step["count"]], [step["zero_points"]]),
                helper.make_node(
                    "QuantizeLinear", [step["rows"], step["scales"], step["zero_points"]], [step["codes"]], axis=0
                ),
                helper.make_node(
                    "Unsqueeze", [step["scales"], constant(f"{prefix}/axis", [1], np.int64)], [step["column"]]
                ),
                helper.make_node("Shape", [source], [step["shape"]]),
                helper.make_node("Slice", [step["shape"], first, last], [step["leading"]]),
            ]
            quantized_inputs[source] = (smoothing, step)
        smoothing, step = quantized_inputs[source]
        weight = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32) * smoothing[:, None]
        channel_scales = (np.maximum(np.abs(weight).max(0), 1e-12) / weight_levels).astype(np.float32)
        used_weights.add(node.input[1])
        product = f"{node.name}/int8"
        codes = constant(f"{product}/weight", np.round(weight / channel_scales), np.int8)
        rewritten += [
            helper.make_node(  # int8 product, scaled by the weight's channel scales (ONNX Runtime's contrib op)
                "MatMulIntegerToFloat",
                [step["codes"], codes, one, constant(f"{product}/channel_scales", channel_scales), zero_point],
                [f"{product}/rows"],
                domain="com.microsoft",
            ),
            helper.make_node("Mul", [f"{product}/rows", step["column"]], [f"{product}/scaled"]),
            helper.make_node(
                "Concat",
                [step["leading"], constant(f"{product}/width", [weight.shape[1]], np.int64)],
                [f"{product}/shape"],
                axis=0,
            ),
            helper.make_node("Reshape", [f"{product}/scaled", f"{product}/shape"], node.output),
        ]
    still_used = {name for node in rewritten for name in node.input}
    kept_initializers = [init for init in graph.initializer if init.name not in used_weights or init.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers)
    del graph.node[:]
    graph.node.extend(rewritten)
    if not any(opset.domain == "com.microsoft" for opset in model_copy.opset_import):
        model_copy.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model_copy


_QUANTIZE_STEPS = (
    "smoothed", "rows", "abs", "max", "floor", "scales", "count", "zero_points", "codes", "column", "shape", "leading"
)  # fmt: skip


def _smoothing(activation_maxima: np.ndarray, weight_maxima: np.ndarray) -> np.ndarray:
    """SmoothQuant's per-input-channel scales: ``max|x_j|^a / max|w_j|^(1-a)``, kept away from zero."""
    floor = 1e-5
    scales = np.maximum(activation_maxima, floor) ** SMOOTHING / np.maximum(weight_maxima, floor) ** (1 - SMOOTHING)
    return np.maximum(scales, floor).astype(np.float32)


def _weight_product_nodes(graph) -> list:
    """The MatMul nodes whose second input is a weight (a 2-D initializer), in graph order."""
    weights = {init.name: init.dims for init in graph.initializer}
    return [
        node
        for node in graph.node
        if node.op_type == "MatMul" and node.input[1] in weights and len(weights[node.input[1]]) == 2
    ]


def _weight_products(graph) -> list[tuple[str, tuple[int, ...]]]:
    """The weight products' names, in graph order, with the weight's shape."""
    weights = {init.name: tuple(init.dims) for init in graph.initializer}
    return [(node.name, weights[node.input[1]]) for node in _weight_product_nodes(graph)]


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
