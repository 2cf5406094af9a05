"""An ``INSTRUCTOR`` as an mteb 2.x encoder, giving each task (and each retrieval side) its instruction."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..model import INSTRUCTOR
from .instruction_sets import Instruction, instruction_for


class MTEBEncoder:
    """Implements mteb's ``EncoderProtocol`` over an ``INSTRUCTOR``."""

    def __init__(
        self,
        model: INSTRUCTOR,
        name: str,
        instructions: dict[str, Instruction],
        batch_size: int = 32,
        show_progress: bool = False,
    ):
        self.model = model
        self.instructions = instructions
        self.batch_size = batch_size
        self.show_progress = show_progress  # a bar over batches inside long tasks (a retrieval corpus)
        self.mteb_model_meta = _model_meta(model, name, bool(instructions))

    def encode(
        self, inputs, *, task_metadata, hf_split: str, hf_subset: str, prompt_type=None, **kwargs: Any
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        side = (
            "corpus"
            if prompt_type is not None and getattr(prompt_type, "value", prompt_type) == "document"
            else "query"
        )
        instruction = instruction_for(self.instructions, task_metadata.name, side)
        items = texts if instruction is None else [[instruction, text] for text in texts]
        return self.model.encode(items, batch_size=self.batch_size, show_progress_bar=self.show_progress)

    def similarity(self, embeddings1, embeddings2) -> torch.Tensor:
        a, b = (F.normalize(torch.as_tensor(x, dtype=torch.float32), dim=-1) for x in (embeddings1, embeddings2))
        return a @ b.T

    def similarity_pairwise(self, embeddings1, embeddings2) -> torch.Tensor:
        a, b = (torch.as_tensor(x, dtype=torch.float32) for x in (embeddings1, embeddings2))
        return F.cosine_similarity(a, b, dim=-1)


def _model_meta(model: INSTRUCTOR, name: str, uses_instructions: bool):
    from mteb.models.model_meta import ModelMeta

    if "/" not in name:  # mteb wants "organisation/model"
        name = f"local/{name}"
    return ModelMeta(
        loader=None,
        name=name,
        revision="local",
        release_date=None,
        languages=None,
        n_parameters=sum(p.numel() for p in model.parameters()),
        memory_usage_mb=None,
        max_tokens=model.max_seq_length,
        embed_dim=model.get_sentence_embedding_dimension(),
        license=None,
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=["PyTorch"],
        reference=None,
        similarity_fn_name="cosine",
        use_instructions=uses_instructions,
        training_datasets=None,
    )
