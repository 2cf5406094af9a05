"""Chroma: a collection with INSTRUCTOR embeddings. python examples/integrations/chroma_example.py"""

import chromadb
from _model import model_name

from instructor_embed.integrations.chroma import InstructorEmbeddingFunction

function = InstructorEmbeddingFunction(model_name=model_name(), instruction="Represent the document for retrieval: ")
collection = chromadb.EphemeralClient().create_collection("docs", embedding_function=function)
collection.add(ids=["yam", "rice"], documents=["Yams store food in their tubers.", "Rice is a cereal grass."])
print(collection.query(query_texts=["where is the food stored in a yam plant"], n_results=1)["documents"][0][0])
