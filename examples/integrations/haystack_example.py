"""Haystack: index documents, then retrieve with a query embedder. python examples/integrations/haystack_example.py"""

from _model import model_name
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore

from instructor_embed.integrations.haystack import InstructorDocumentEmbedder, InstructorTextEmbedder

model = model_name()
store = InMemoryDocumentStore()
documents = [Document(content=t) for t in ["Yams store food in their tubers.", "Rice is a cereal grass."]]
embedder = InstructorDocumentEmbedder(model=model, instruction="Represent the document for retrieval: ")
store.write_documents(embedder.run(documents)["documents"])
query = Pipeline()
query.add_component(
    "embedder",
    InstructorTextEmbedder(model=model, instruction="Represent the question for retrieving supporting documents: "),
)
query.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=1))
query.connect("embedder.embedding", "retriever.query_embedding")
print(query.run({"embedder": {"text": "where is the food stored in a yam plant"}})["retriever"]["documents"][0].content)
