"""The training losses, on embeddings (the model runs elsewhere).

The INSTRUCTOR loss, for a batch of B queries with their positives and the batch's M hard negatives, with cosine
similarity divided by the temperature τ (``cl_temperature``):

    loss = CE_i( [s(q_i, p_i), s(q_i, n_1), ..., s(q_i, n_M)] , target 0 )       query vs its positive
                                                                                  and every hard negative
         + CE_i( [s(p_i, q_1), ..., s(p_i, q_B)] , target i )                    positive vs its query
                                                                                  and every other query
each term averaged over the batch. With ``in_batch_positives`` (pairs without enough hard negatives), the
first term's candidates also hold the other rows' positives. Across P processes the gathered forms let each
process's rows compete with the candidates of all P·B rows.

CoSENT (graded or 0/1 pairs): ``log(1 + Σ_{score_i > score_j} exp(λ (cos_j - cos_i)))`` over the batch's pairs,
λ = ``scale`` — every pair whose score is higher must have the higher cosine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

COSENT_SCALE = 20.0  # λ of the CoSENT paper and AnglE


def instructor_contrastive_loss(
    query: Tensor,
    positive: Tensor,
    negative: Tensor,
    temperature: float,
    *,
    in_batch_positives: bool = False,
    all_queries: Tensor | None = None,
    all_positives: Tensor | None = None,
    all_negatives: Tensor | None = None,
    negative_mask: Tensor | None = None,
    offset: int = 0,
) -> Tensor:
    """The loss for this batch's rows ``query``, ``positive`` (B, D) and hard negatives ``negative`` (M, D; M may
    be 0).

    ``all_queries``/``all_positives``/``all_negatives`` widen the candidates (default: this batch's own); row i's
    own query and positive are at ``offset + i`` of them; ``negative_mask`` (bool, one per negative candidate)
    leaves padding out.
    """
    query, positive, negative = (F.normalize(x.float(), dim=-1) for x in (query, positive, negative))
    all_queries = query if all_queries is None else F.normalize(all_queries.float(), dim=-1)
    all_positives = positive if all_positives is None else F.normalize(all_positives.float(), dim=-1)
    all_negatives = negative if all_negatives is None else F.normalize(all_negatives.float(), dim=-1)
    targets = torch.arange(query.shape[0], device=query.device)
    query_negative = query @ all_negatives.T / temperature  # (B, M)
    if negative_mask is not None:
        query_negative = query_negative.masked_fill(~negative_mask, float("-inf"))
    if in_batch_positives:
        query_positive = query @ all_positives.T / temperature  # [i, j] = s(q_i, p_j)
        first = F.cross_entropy(torch.cat([query_positive, query_negative], dim=1), targets + offset)
    else:
        own = (query * positive).sum(-1, keepdim=True) / temperature  # (B, 1): s(q_i, p_i)
        first = F.cross_entropy(torch.cat([own, query_negative], dim=1), torch.zeros_like(targets))
    positive_query = positive @ all_queries.T / temperature  # (B, B'): [i, j] = s(p_i, q_j)
    return first + F.cross_entropy(positive_query, targets + offset)


def gathered_instructor_contrastive_loss(
    query: Tensor, positive: Tensor, negative: Tensor, temperature: float, *, in_batch_positives: bool = False
) -> Tensor:
    """The loss with queries, positives and hard negatives gathered from every process (gradients flow back to
    their owners). Processes may hold different numbers of hard negatives: each pads to the largest, masked."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return instructor_contrastive_loss(
            query, positive, negative, temperature, in_batch_positives=in_batch_positives
        )
    from torch.distributed.nn.functional import all_gather

    counts = [torch.zeros(1, dtype=torch.long, device=query.device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([negative.shape[0]], device=query.device))
    widest = max(int(count) for count in counts)
    padded = torch.cat([negative, negative.new_zeros(widest - negative.shape[0], negative.shape[1])])
    mask = torch.cat([torch.arange(widest, device=query.device) < int(count) for count in counts])
    return instructor_contrastive_loss(
        query,
        positive,
        negative,
        temperature,
        in_batch_positives=in_batch_positives,
        all_queries=torch.cat(all_gather(query)),
        all_positives=torch.cat(all_gather(positive)),
        all_negatives=torch.cat(all_gather(padded)),
        negative_mask=mask,
        offset=dist.get_rank() * query.shape[0],
    )


def cosent_loss(first: Tensor, second: Tensor, scores: Tensor, scale: float = COSENT_SCALE) -> Tensor:
    """CoSENT over the pairs (``first[i]``, ``second[i]``) with similarity ``scores[i]``; 0 when all scores tie."""
    cosine = F.cosine_similarity(first.float(), second.float(), dim=-1) * scale
    difference = cosine[None, :] - cosine[:, None]  # [i, j] = λ (cos_j - cos_i)
    ordered = scores[:, None] > scores[None, :]  # pairs where i should be the more similar
    difference = difference.masked_fill(~ordered, float("-inf"))
    return torch.logsumexp(torch.cat([difference.new_zeros(1), difference.flatten()]), dim=0)


def gathered_cosent_loss(first: Tensor, second: Tensor, scores: Tensor, scale: float = COSENT_SCALE) -> Tensor:
    """CoSENT over every process's pairs (each process computes the same global loss; gradients reach owners)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return cosent_loss(first, second, scores, scale)
    from torch.distributed.nn.functional import all_gather

    return cosent_loss(
        torch.cat(all_gather(first)), torch.cat(all_gather(second)), torch.cat(all_gather(scores)), scale
    )
