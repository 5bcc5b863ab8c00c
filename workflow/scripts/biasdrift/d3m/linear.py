"""An exact reference world: L2-regularised logistic regression on bag-of-words
features of the synthetic task, fitted by Newton's method to convergence.

Leave-one-out retraining is cheap and exact here, so the attribution code (TRAK and
kronfluence, the same functions the workflow runs on BERT) can be checked against the
truth, and D3M's removal can be compared with random removal without training noise
(spec section 9.2-9.3). The model is an ``nn.Linear(d, 2)`` whose two logit rows are
``-w/2, +w/2``: with penalty ``l2/2 * |W|^2`` on both rows it is the same model as
binary logistic regression with penalty ``l2/4 * |w|^2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def vocabulary_of(texts: Sequence[str]) -> list[str]:
    return sorted({w for t in texts for w in t.split()})


def bag_of_words(texts: Sequence[str], vocab: Sequence[str]) -> np.ndarray:
    """Word counts (n, len(vocab)) float64; unknown words are ignored."""
    index = {w: i for i, w in enumerate(vocab)}
    out = np.zeros((len(texts), len(vocab)))
    for row, text in enumerate(texts):
        for word in text.split():
            if word in index:
                out[row, index[word]] += 1
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Binary logistic regression with bias (last entry), penalty ``l2/4 |theta|^2``
    on the summed loss (the two-logit model's ``l2/2 |W|^2``), by Newton's method."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(xb.shape[1])
    reg = l2 / 2  # second derivative of l2/4 |theta|^2
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(xb @ theta)))
        grad = xb.T @ (p - y) + reg * theta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg * np.eye(len(theta))
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < tol:
            break
    return theta


def decision(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``logit_1 - logit_0`` (for two classes this is the margin of label 1)."""
    return x @ theta[:-1] + theta[-1]


def margins_of(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    z = decision(x, theta)
    return np.where(np.asarray(y) == 1, z, -z)


def predictions(frame: pd.DataFrame, x: np.ndarray, theta: np.ndarray) -> pd.DataFrame:
    """A predictions table (see :mod:`biasdrift.d3m.metrics`)."""
    z = decision(x, theta)
    prob = 1 / (1 + np.exp(-z))
    y = frame["label"].to_numpy(int)
    loss = np.logaddexp(0, np.where(y == 1, -z, z))
    out = frame[["uid", "label", "group", "cell"]].reset_index(drop=True).copy()
    out["prob_1"], out["pred"], out["loss"] = prob, (z > 0).astype(int), loss
    return out


def to_module(theta: np.ndarray):
    """The fitted model as ``forward(features) -> logits`` (an nn.Linear(d, 2) inside)."""
    import torch

    class Logistic(torch.nn.Module):
        def __init__(self, d: int):
            super().__init__()
            self.linear = torch.nn.Linear(d, 2)

        def forward(self, features):
            return self.linear(features)

    model = Logistic(len(theta) - 1)
    w = torch.tensor(theta[:-1], dtype=torch.float32)
    b = torch.tensor(theta[-1], dtype=torch.float32)
    with torch.no_grad():
        model.linear.weight.copy_(torch.stack([-w / 2, w / 2]))
        model.linear.bias.copy_(torch.stack([-b / 2, b / 2]))
    return model.eval()


def tensors(x: np.ndarray, y: Sequence[int]) -> dict:
    import torch

    return {"features": torch.tensor(x, dtype=torch.float32), "labels": torch.tensor(np.asarray(y), dtype=torch.long)}


def leave_one_out(
    x: np.ndarray, y: np.ndarray, xq: np.ndarray, yq: np.ndarray, l2: float, removed: Sequence[int]
) -> np.ndarray:
    """(len(removed), n_query): query margin of the full model minus that of the model
    retrained without each removed example (positive = the example helped)."""
    full = margins_of(xq, yq, fit_logistic(x, y, l2))
    out = np.empty((len(removed), len(xq)))
    for row, i in enumerate(removed):
        keep = np.arange(len(x)) != i
        out[row] = full - margins_of(xq, yq, fit_logistic(x[keep], y[keep], l2))
    return out
