"""LanceDB: a table whose rows and queries are embedded with INSTRUCTOR. python examples/integrations/lancedb_example.py"""

import tempfile

import lancedb
from _model import model_name
from lancedb.embeddings import get_registry
from lancedb.pydantic import LanceModel, Vector

import instructor_embed.integrations.lancedb  # noqa: F401 - registers "instructor-embed"

instructor = (
    get_registry()
    .get("instructor-embed")
    .create(
        name=model_name(),
        source_instruction="Represent the document for retrieval: ",
        query_instruction="Represent the question for retrieving supporting documents: ",
        show_progress_bar=False,
    )
)


class Document(LanceModel):
    text: str = instructor.SourceField()
    vector: Vector(instructor.ndims()) = instructor.VectorField()


with tempfile.TemporaryDirectory() as folder:
    table = lancedb.connect(folder).create_table("docs", schema=Document)
    table.add([{"text": "Yams store food in their tubers."}, {"text": "Rice is a cereal grass."}])
    print(table.search("where is the food stored in a yam plant").limit(1).to_list()[0]["text"])
