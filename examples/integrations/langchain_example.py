"""LangChain: an in-memory vector store with INSTRUCTOR embeddings. python examples/integrations/langchain_example.py"""

from _model import model_name
from langchain_core.vectorstores import InMemoryVectorStore

from instructor_embed.integrations.langchain import HuggingFaceInstructEmbeddings

embeddings = HuggingFaceInstructEmbeddings(model_name=model_name())  # documents and queries get their own instructions
store = InMemoryVectorStore.from_texts(
    ["Yams store food in their tubers.", "Rice is a cereal grass.", "The central bank raised rates."],
    embedding=embeddings,
)
print(store.similarity_search("where is the food stored in a yam plant", k=1)[0].page_content)
