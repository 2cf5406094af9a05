"""sentence-transformers on an exported INSTRUCTOR: the same vectors with prompt=instruction.
python examples/integrations/sentence_transformers_example.py"""

import tempfile

import numpy as np
from _model import model_name
from sentence_transformers import SentenceTransformer

from instructor_embed import INSTRUCTOR

model = INSTRUCTOR(model_name(), device="cpu")
instruction, texts = "Represent the Science sentence: ", ["Parton energy loss in QCD matter"]
with tempfile.TemporaryDirectory() as folder:
    model.export_sentence_transformers(folder)  # include_prompt: false, so pooling skips the instruction
    theirs = SentenceTransformer(folder, device="cpu").encode(texts, prompt=instruction)
print(np.abs(theirs - model.encode([[instruction, t] for t in texts])).max())
