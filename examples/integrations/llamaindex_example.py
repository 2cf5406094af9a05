"""LlamaIndex: a VectorStoreIndex retriever with INSTRUCTOR embeddings. python examples/integrations/llamaindex_example.py"""

from _model import model_name
from llama_index.core import Document, VectorStoreIndex

from instructor_embed.integrations.llamaindex import InstructorEmbedding

embed_model = InstructorEmbedding(model_name=model_name())
texts = ["Yams store food in their tubers.", "Rice is a cereal grass.", "The central bank raised rates."]
index = VectorStoreIndex.from_documents([Document(text=t) for t in texts], embed_model=embed_model)
print(index.as_retriever(similarity_top_k=1).retrieve("where is the food stored in a yam plant")[0].node.get_content())
