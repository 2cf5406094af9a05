"""The INSTRUCTOR contrastive loss, on embeddings (the model runs elsewhere).

For a batch of B (query, positive, hard negative) triples from one task, with cosine similarity
divided by the temperature τ (``cl_temperature``):

    loss = CE_i( [s(q_i, p_i), s(q_i, n_1), ..., s(q_i, n_B)] , target 0 )       query vs its positive
                                                                                  and every hard negative
         + CE_i( [s(p_i, q_1), ..., s(p_i, q_B)] , target i )                    positive vs its query
                                                                                  and every other query
each term averaged over the batch. Across P processes, ``gathered_instructor_contrastive_loss`` lets each
process's rows compete with the queries and hard negatives of all P·B rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def instructor_contrastive_loss(
    query: Tensor,
    positive: Tensor,
    negative: Tensor,
    temperature: float,
    *,
    all_queries: Tensor | None = None,
    all_negatives: Tensor | None = None,
    offset: int = 0,
) -> Tensor:
    """The loss for this batch's rows ``query``, ``positive``, ``negative`` (B, D).

    ``all_queries``/``all_negatives`` (M, D) widen the candidates (default: this batch's own);
    row i's own query is ``all_queries[offset + i]``.
    """
    query, positive, negative = (F.normalize(x.float(), dim=-1) for x in (query, positive, negative))
    all_queries = query if all_queries is None else F.normalize(all_queries.float(), dim=-1)
    all_negatives = negative if all_negatives is None else F.normalize(all_negatives.float(), dim=-1)
    own = (query * positive).sum(-1, keepdim=True) / temperature  # (B, 1): s(q_i, p_i)
    query_negative = query @ all_negatives.T / temperature  # (B, M)
    positive_query = positive @ all_queries.T / temperature  # (B, M): [i, j] = s(p_i, q_j)
    targets = torch.arange(query.shape[0], device=query.device)
    first = F.cross_entropy(torch.cat([own, query_negative], dim=1), torch.zeros_like(targets))
    return first + F.cross_entropy(positive_query, targets + offset)


def gathered_instructor_contrastive_loss(
    query: Tensor, positive: Tensor, negative: Tensor, temperature: float
) -> Tensor:
    """The loss with queries and hard negatives gathered from every process (gradients flow back to their owners)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return instructor_contrastive_loss(query, positive, negative, temperature)
    from torch.distributed.nn.functional import all_gather

    return instructor_contrastive_loss(
        query,
        positive,
        negative,
        temperature,
        all_queries=torch.cat(all_gather(query)),
        all_negatives=torch.cat(all_gather(negative)),
        offset=dist.get_rank() * query.shape[0],
    )
