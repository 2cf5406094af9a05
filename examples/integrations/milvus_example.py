"""Milvus (Lite): insert and search with INSTRUCTOR embeddings. python examples/integrations/milvus_example.py"""

import tempfile
from pathlib import Path

from _model import model_name
from pymilvus import MilvusClient

from instructor_embed.integrations.milvus import InstructorEmbeddingFunction

embed = InstructorEmbeddingFunction(
    model_name=model_name(),
    query_instruction="Represent the question for retrieving supporting documents: ",
    doc_instruction="Represent the document for retrieval: ",
)
docs = ["Yams store food in their tubers.", "Rice is a cereal grass."]
with tempfile.TemporaryDirectory() as folder:
    client = MilvusClient(str(Path(folder) / "milvus.db"))
    client.create_collection("docs", dimension=embed.dim)
    client.insert(
        "docs",
        [{"id": i, "vector": v.tolist(), "text": t} for i, (t, v) in enumerate(zip(docs, embed(docs), strict=True))],
    )
    query = embed.encode_queries(["where is the food stored in a yam plant"])[0].tolist()
    hits = client.search("docs", data=[query], limit=1, output_fields=["text"])
    client.close()
print(hits[0][0]["entity"]["text"])
