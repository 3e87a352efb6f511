"""A weighted k-nearest-neighbour classifier on cosine similarity of frozen features.

The non-parametric protocol of Wu et al. (2018), "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", the same one DINO (Caron et al., 2021) uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jepa_core.evaluate.inputs import check_train_test


def knn_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk: int = 1024,
) -> float:
    """Test accuracy of a weighted k-nearest-neighbour classifier on cosine similarity.

    Follows the non-parametric protocol of Wu et al. (2018), as popularised for SSL evaluation by DINO
    (Caron et al., 2021): features are L2-normalized, each test point takes its ``k`` most similar train
    points, and each neighbour votes for its label with weight ``exp(sim / temperature)``.

    Args:
        train_x: Train features ``[N, D]``.
        train_y: Train labels ``[N]``.
        test_x: Test features ``[M, D]``.
        test_y: Test labels ``[M]``.
        k: Number of neighbours; clamped to the train-set size.
        temperature: Softmax-style temperature of the vote weights.
        num_classes: Number of classes; inferred from the labels if None.
        chunk: Test points processed at once (bounds the ``chunk x N`` similarity matrix in memory).

    Returns:
        Test accuracy in ``[0, 1]``.
    """
    n_cls = check_train_test(train_x, train_y, test_x, test_y, num_classes)
    if k <= 0 or chunk <= 0 or temperature <= 0:
        raise ValueError(f"k, chunk and temperature must be positive, got {k}, {chunk}, {temperature}")
    device = train_x.device
    k_eff = min(k, train_x.shape[0])

    with torch.no_grad():
        bank = F.normalize(train_x.to(device, torch.float32), dim=1)
        bank_y = train_y.to(device, torch.long)
        queries = F.normalize(test_x.to(device, torch.float32), dim=1)
        targets = test_y.to(device, torch.long)
        correct = 0
        for start in range(0, queries.shape[0], chunk):
            sim = queries[start : start + chunk] @ bank.T
            top_sim, top_idx = sim.topk(k_eff, dim=1)
            # Subtracting each row's best similarity rescales that row's votes by a constant (same argmax)
            # but keeps exp() finite for small temperatures (1 / 0.01 = 100 would overflow float32).
            weights = ((top_sim - top_sim[:, :1]) / temperature).exp()
            votes = torch.zeros(sim.shape[0], n_cls, device=device)
            votes.scatter_add_(1, bank_y[top_idx], weights)
            correct += int((votes.argmax(dim=1) == targets[start : start + chunk]).sum().item())
    return correct / queries.shape[0]
