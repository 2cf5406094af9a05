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
