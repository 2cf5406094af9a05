import torch
import torch.nn.functional as F

from instructor_embed.training.loss import instructor_contrastive_loss


def slow_reference(query, positive, negative, temperature):
    """The formula written out item by item, as DEVELOPERS.md states it."""

    def s(a, b):
        return F.cosine_similarity(a, b, dim=0) / temperature

    batch = query.shape[0]
    first = second = 0.0
    for i in range(batch):
        logits = torch.stack([s(query[i], positive[i])] + [s(query[i], negative[j]) for j in range(negative.shape[0])])
        first = first - torch.log_softmax(logits, dim=0)[0]
        others = [j for j in range(batch) if j != i]
        logits = torch.stack([s(positive[i], query[i])] + [s(positive[i], query[j]) for j in others])
        second = second - torch.log_softmax(logits, dim=0)[0]
    return first / batch + second / batch


def test_matches_the_slow_reference():
    generator = torch.Generator().manual_seed(0)
    q, p, n = (torch.randn(5, 16, generator=generator, dtype=torch.float64) for _ in range(3))
    for temperature in (0.01, 0.05, 1.0):
        fast = instructor_contrastive_loss(q, p, n, temperature)
        slow = slow_reference(q.float(), p.float(), n.float(), temperature)
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-4)


def test_gradients_flow_and_a_perfect_batch_has_low_loss():
    q = torch.eye(4, requires_grad=True)
    loss = instructor_contrastive_loss(q, torch.eye(4), -torch.eye(4), 0.05)
    loss.backward()
    assert q.grad is not None and loss.item() < 1e-3


def test_gathered_form_splits_the_global_loss_by_rows():
    """Two processes each computing their rows against all queries and negatives = the global batch's loss."""
    generator = torch.Generator().manual_seed(1)
    q, p, n = (torch.randn(6, 8, generator=generator) for _ in range(3))
    whole = instructor_contrastive_loss(q, p, n, 0.05)
    halves = [
        instructor_contrastive_loss(q[s], p[s], n[s], 0.05, all_queries=q, all_negatives=n, offset=s.start)
        for s in (slice(0, 3), slice(3, 6))
    ]
    torch.testing.assert_close((halves[0] + halves[1]) / 2, whole)


def test_in_batch_positives_and_several_negatives_per_row_match_the_slow_reference():
    """Pairs: row i's candidates are every row's positive and every hard negative of the batch (any number)."""
    generator = torch.Generator().manual_seed(2)
    q, p = (torch.randn(4, 8, generator=generator, dtype=torch.float64) for _ in range(2))
    n = torch.randn(7, 8, generator=generator, dtype=torch.float64)

    def s(a, b):
        return F.cosine_similarity(a, b, dim=0) / 0.05

    first = second = 0.0
    for i in range(4):
        logits = torch.stack([s(q[i], p[i])] + [s(q[i], p[j]) for j in range(4) if j != i] + [s(q[i], x) for x in n])
        first = first - torch.log_softmax(logits, dim=0)[0]
        logits = torch.stack([s(p[i], q[i])] + [s(p[i], q[j]) for j in range(4) if j != i])
        second = second - torch.log_softmax(logits, dim=0)[0]
    fast = instructor_contrastive_loss(q, p, n, 0.05, in_batch_positives=True)
    torch.testing.assert_close(fast, ((first + second) / 4).float(), rtol=1e-5, atol=1e-5)
    no_negatives = instructor_contrastive_loss(q, p, n[:0], 0.05, in_batch_positives=True)
    assert torch.isfinite(no_negatives) and no_negatives < fast


def test_masked_padding_leaves_the_loss_unchanged():
    """Processes with fewer hard negatives pad to the widest; the mask keeps the padding out."""
    generator = torch.Generator().manual_seed(3)
    q, p, n = torch.randn(3, 8, generator=generator), torch.randn(3, 8, generator=generator), torch.randn(2, 8)
    padded = torch.cat([n, torch.zeros(3, 8)])
    mask = torch.tensor([True, True, False, False, False])
    for in_batch in (False, True):
        plain = instructor_contrastive_loss(q, p, n, 0.05, in_batch_positives=in_batch)
        masked = instructor_contrastive_loss(
            q, p, n, 0.05, in_batch_positives=in_batch, all_negatives=padded, negative_mask=mask
        )
        torch.testing.assert_close(masked, plain)


def cosent_reference(first, second, scores, scale=20.0):
    """CoSENT written out pair by pair: log(1 + sum over score_i > score_j of exp(scale (cos_j - cos_i)))."""
    cosine = [F.cosine_similarity(a, b, dim=0) for a, b in zip(first, second, strict=True)]
    total = torch.tensor(1.0, dtype=first.dtype)
    for i in range(len(cosine)):
        for j in range(len(cosine)):
            if scores[i] > scores[j]:
                total = total + torch.exp(scale * (cosine[j] - cosine[i]))
    return torch.log(total)


def test_cosent_matches_the_pairwise_formula_and_ranks_by_score():
    from instructor_embed.training.loss import cosent_loss

    generator = torch.Generator().manual_seed(4)
    a, b = (torch.randn(6, 8, generator=generator, dtype=torch.float64) for _ in range(2))
    scores = torch.tensor([5.0, 3.2, 3.2, 0.0, 1.5, 4.0], dtype=torch.float64)
    torch.testing.assert_close(cosent_loss(a, b, scores), cosent_reference(a, b, scores).float())
    assert cosent_loss(a, b, torch.full((6,), 2.0)).item() == 0.0  # all scores tie: nothing to rank
    x, y = torch.eye(2)
    first, second = torch.stack([x, x, x]), torch.stack([x, x + y, x + 3 * y])  # cosines 1, 0.71, 0.32
    right = cosent_loss(first, second, torch.tensor([3.0, 2.0, 1.0]))
    wrong = cosent_loss(first, second, torch.tensor([1.0, 2.0, 3.0]))
    assert right < 0.1 < wrong
