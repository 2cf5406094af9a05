"""The INSTRUCTOR contrastive loss, on embeddings (the model runs elsewhere).

For a batch of B (query, positive, hard negative) triples from one task, with cosine similarity
divided by the temperature τ (``cl_temperature``):

    loss = CE_i( [s(q_i, p_i), s(q_i, n_1), ..., s(q_i, n_B)] , target 0 )       query vs its positive
                                                                                  and every hard negative
         + CE_i( [s(p_i, q_1), ..., s(p_i, q_B)] , target i )                    positive vs its query
                                                                                  and every other query
each term averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def instructor_contrastive_loss(query: Tensor, positive: Tensor, negative: Tensor, temperature: float) -> Tensor:
    """The loss for embeddings ``query``, ``positive``, ``negative`` of shape (B, D); negatives may number N != B."""
    query, positive, negative = (F.normalize(x.float(), dim=-1) for x in (query, positive, negative))
    query_positive = query @ positive.T / temperature  # (B, B): [i, j] = s(q_i, p_j)
    query_negative = query @ negative.T / temperature  # (B, N)
    first = torch.cat([query_positive.diagonal().unsqueeze(1), query_negative], dim=1)  # (B, 1 + N)
    targets = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(first, torch.zeros_like(targets)) + F.cross_entropy(query_positive.T, targets)
