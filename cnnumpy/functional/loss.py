"""Classification losses on raw class scores: softmax cross-entropy and two multiclass hinges.

Every loss here takes ``scores: (N, C)`` (float32 or float64) and integer labels ``y: (N,)`` with
values in ``[0, C)``, averages over the batch, and returns ``(loss, dscores)``: the loss as a
Python float and ``dscores: (N, C)``, the gradient of that mean loss, in the dtype of ``scores``.
The prediction for every loss is ``scores.argmax(axis=1)``.

An empty batch (``N = 0``) has no mean: as PyTorch's cross-entropy does, every loss here then
returns NaN, with an empty ``(0, C)`` gradient (so a model's backward gives zero parameter
gradients). PyTorch's ``multi_margin_loss`` returns an arbitrary number in that case; NaN is
returned here as well.

LeNet-5's Euclidean RBF output and its MAP loss, whose prediction is an argmin, live in ``rbf.py``.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_array, check_labels, check_real


def _check_scores(scores: np.ndarray, y: np.ndarray, check_finite: bool) -> tuple[int, int]:
    """Validate ``scores: (N, C)`` and its labels; return ``(N, C)``. ``N`` may be 0, ``C`` not."""
    check_array(scores, "scores", ndim=2, finite=check_finite)
    n, c = scores.shape
    if c == 0:
        raise ValueError(f"scores must have at least one class (C >= 1), got shape {scores.shape}")
    check_labels(y, n, c)
    return n, c


def _empty_batch_loss(scores: np.ndarray) -> tuple[float, np.ndarray]:
    """``(nan, empty dscores)``: the mean loss over no samples, as PyTorch's cross-entropy."""
    return float("nan"), np.zeros(scores.shape, dtype=scores.dtype)


def softmax_cross_entropy_loss(
    scores: np.ndarray,
    y: np.ndarray,
    *,
    label_smoothing: float = 0.0,
    check_finite: bool = False,
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy between ``softmax(scores)`` and the (optionally smoothed) labels.

    Shapes: ``scores: (N, C)``, ``y: (N,)`` integers in ``[0, C)``, ``dscores: (N, C)``.

    With ``eps = label_smoothing`` the target distribution of sample ``n`` is, as in PyTorch's
    ``F.cross_entropy(..., label_smoothing=eps)``::

        t[n, c] = (1 - eps) * [c == y_n] + eps / C

    and the loss is ``L = -(1/N) sum_n sum_c t[n, c] log p[n, c]`` with ``p = softmax(scores)``.
    ``log p`` is computed as ``s - m - log(sum_c exp(s_c - m))`` with ``m`` the row's maximum, so
    every exponent is <= 0 (no overflow) and the largest term is exactly 1 (the log never sees 0):
    scores of any finite size give a finite loss.

    Gradient: ``log p[n, c] = s[n, c] - log sum_k exp(s[n, k])``, so
    ``d log p[n, c] / d s[n, k] = [c == k] - p[n, k]``. Hence
    ``dL/ds[n, k] = -(1/N) sum_c t[n, c] ([c == k] - p[n, k]) = (p[n, k] - t[n, k]) / N``,
    using ``sum_c t[n, c] = 1``.

    ``label_smoothing`` must lie in ``[0, 1]``; ``check_finite=True`` rejects NaN/inf scores.
    """
    n, c = _check_scores(scores, y, check_finite)
    eps = check_real(label_smoothing, "label_smoothing")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    if n == 0:
        return _empty_batch_loss(scores)

    shifted = scores - scores.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z
    rows = np.arange(n)

    # Written as two sums rather than through the dense target, so eps = 0 costs nothing extra.
    per_sample = -(1.0 - eps) * log_p[rows, y]
    if eps:
        per_sample = per_sample - (eps / c) * log_p.sum(axis=1)
    loss = float(per_sample.mean())

    dscores = np.exp(log_p)
    dscores[rows, y] -= 1.0 - eps
    if eps:
        dscores -= eps / c
    dscores /= n
    return loss, dscores


def _hinges(scores: np.ndarray, y: np.ndarray, margin: float) -> np.ndarray:
    """``h[n, j] = s[n, j] - s[n, y_n] + margin``, with the ``j == y_n`` entries set to 0.

    Zeroing the correct class drops the ``j == y`` term from every sum (its hinge would be the
    constant ``margin``) and, being not > 0, also from every gradient.
    """
    n = scores.shape[0]
    rows = np.arange(n)
    h = scores - scores[rows, y][:, None] + margin
    h[rows, y] = 0
    return h


def _hinge_grad(active: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Scatter per-term derivatives ``weight`` of hinges ``h_j = s_j - s_y + margin``.

    ``dh_j/ds_j = 1`` and ``dh_j/ds_y = -1``, so row ``n`` gets ``weight[n, j]`` at each active
    ``j`` and minus their sum at ``y_n``. ``active`` already excludes ``j == y_n``.
    """
    grad = np.where(active, weight, 0)
    rows = np.arange(grad.shape[0])
    grad[rows, y] = -grad.sum(axis=1)
    return grad


def svm_loss(
    scores: np.ndarray, y: np.ndarray, *, margin: float = 1.0, check_finite: bool = False
) -> tuple[float, np.ndarray]:
    """CS231n's multiclass SVM (Weston-Watkins / Crammer-Singer style sum of hinges).

    Shapes: ``scores: (N, C)``, ``y: (N,)`` integers in ``[0, C)``, ``dscores: (N, C)``.

    ``L = (1/N) sum_n sum_{j != y_n} max(0, s[n, j] - s[n, y_n] + margin)``.

    Relation to PyTorch: ``svm_loss(s, y, margin=m) == C * multi_margin_loss(s, y, margin=m, p=1)``
    (PyTorch divides each sample's sum by the number of classes ``C``).

    Gradient: each active hinge (``h = s_j - s_y + margin > 0``) contributes ``+1/N`` to
    ``dscores[n, j]`` and ``-1/N`` to ``dscores[n, y_n]``. At the kink ``h == 0`` exactly the loss
    is not differentiable; we take the subgradient 0 there (the hinge counts as inactive), as
    PyTorch does for ``multi_margin_loss``.
    """
    n, _ = _check_scores(scores, y, check_finite)
    margin = check_real(margin, "margin")
    if n == 0:
        return _empty_batch_loss(scores)
    h = _hinges(scores, y, margin)
    active = h > 0
    loss = float(np.where(active, h, 0).sum() / n)
    dscores = _hinge_grad(active, y, np.ones_like(scores)) / n
    return loss, dscores


def multi_margin_loss(
    scores: np.ndarray,
    y: np.ndarray,
    *,
    margin: float = 1.0,
    p: int = 1,
    check_finite: bool = False,
) -> tuple[float, np.ndarray]:
    """PyTorch's ``F.multi_margin_loss`` (``nn.MultiMarginLoss``) with mean reduction, no weight.

    Shapes: ``scores: (N, C)``, ``y: (N,)`` integers in ``[0, C)``, ``dscores: (N, C)``.

    ``L = (1/N) sum_n (1/C) sum_{j != y_n} max(0, margin - s[n, y_n] + s[n, j]) ** p``, p in {1, 2}.

    So for ``p=1`` this is ``svm_loss / C``: ``svm_loss(s, y, margin=m) == C * multi_margin_loss(s,
    y, margin=m, p=1)``.

    Gradient: with ``h = s_j - s_y + margin``, ``d max(0, h)^p / dh = p * max(0, h)^(p-1)``: 1 on
    active hinges for ``p=1``, ``2h`` for ``p=2``; then ``dh/ds_j = 1``, ``dh/ds_y = -1`` and the
    factor ``1/(N C)``. At ``h == 0`` exactly the ``p=1`` subgradient is taken as 0 (for ``p=2``
    the derivative is 0 there anyway).
    """
    n, c = _check_scores(scores, y, check_finite)
    margin = check_real(margin, "margin")
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2 (as in PyTorch), got {p!r}")
    if n == 0:
        return _empty_batch_loss(scores)
    h = _hinges(scores, y, margin)
    active = h > 0
    hinge = np.where(active, h, 0)
    if p == 1:
        loss = float(hinge.sum() / (n * c))
        weight = np.ones_like(scores)
    else:
        loss = float((hinge * hinge).sum() / (n * c))
        weight = 2 * hinge
    dscores = _hinge_grad(active, y, weight) / (n * c)
    return loss, dscores
