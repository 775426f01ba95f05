r"""Real data and the digits network for Part V (chapters 13-15).

Every data set here ships inside scikit-learn, so nothing is downloaded:

* :func:`breast_cancer`: 569 tumours, 30 features, 2 classes (binary labels);
* :func:`digits`: 1,797 images of 8x8 pixels, 64 features, 10 classes;
* :func:`diabetes`: 442 patients, 10 features, a real-valued target.

Each returns a :class:`Split`: a seeded, stratified (for classes) train/test
split whose features are standardised with the *training* mean and standard
deviation (a feature that is constant on the training set, such as the digits'
always-blank corner pixels, is centred and left unscaled).  Shapes, with
:math:`N` the number of samples and :math:`d` the number of features:

* ``X_train``: ``(N_train, d)``, ``y_train``: ``(N_train,)``;
* ``X_test``: ``(N_test, d)``, ``y_test``: ``(N_test,)``;
* labels are ``torch.long`` for classification, the target is float for
  regression (standardised like the features, so its scale is 1).

:func:`digits_mlp` builds the course's digits network, a tanh MLP
:math:`64 \to w \to w \to 10` with
:math:`p = 64w + w + w^2 + w + 10w + 10` parameters
(:math:`w = 128`: 26,122; :math:`w = 32`: 3,466), and :func:`train_classifier`
trains any classifier with Adam on mini-batches, seeded, so that every chapter
that trains it gets the same weights.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

__all__ = [
    "Split",
    "breast_cancer",
    "diabetes",
    "digits",
    "digits_mlp",
    "mlp_parameter_count",
    "train_classifier",
]


@dataclasses.dataclass(frozen=True)
class Split:
    """A standardised train/test split (shapes in the module docstring)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """The number of classes (0 for a regression target)."""
        return len(self.target_names)

    def __repr__(self) -> str:
        return (
            f"Split(train {tuple(self.X_train.shape)}, test {tuple(self.X_test.shape)},"
            f" {self.n_classes or 'real-valued'} {'classes' if self.n_classes else ''}"
            f" {self.X_train.dtype})".replace("  ", " ")
        )


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant features: centred, not scaled
    return (train - mean) / std, (test - mean) / std


def _split(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classification: bool,
    test_fraction: float,
    seed: int,
    dtype: torch.dtype,
    feature_names: tuple[str, ...],
    target_names: tuple[str, ...],
) -> Split:
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}.")
    X_tr, X_te, y_tr, y_te = train_test_split(
        X,
        y,
        test_size=test_fraction,
        random_state=seed,
        stratify=y if classification else None,
    )
    X_tr, X_te = _standardise(X_tr, X_te)
    if classification:
        y_train = torch.as_tensor(y_tr, dtype=torch.long)
        y_test = torch.as_tensor(y_te, dtype=torch.long)
    else:
        y_tr2, y_te2 = _standardise(y_tr[:, None], y_te[:, None])
        y_train = torch.as_tensor(y_tr2[:, 0], dtype=dtype)
        y_test = torch.as_tensor(y_te2[:, 0], dtype=dtype)
    return Split(
        torch.as_tensor(X_tr, dtype=dtype),
        y_train,
        torch.as_tensor(X_te, dtype=dtype),
        y_test,
        feature_names,
        target_names,
    )


def _bundled(
    loader: str,
    classification: bool,
    test_fraction: float,
    seed: int,
    dtype: torch.dtype,
) -> Split:
    """One of scikit-learn's bundled data sets (``sklearn.datasets.<loader>``)."""
    import sklearn.datasets

    data = getattr(sklearn.datasets, loader)()
    names = getattr(data, "target_names", ()) if classification else ()
    return _split(
        data.data,
        data.target,
        classification=classification,
        test_fraction=test_fraction,
        seed=seed,
        dtype=dtype,
        feature_names=tuple(data.feature_names),
        target_names=tuple(str(t) for t in names),
    )


def breast_cancer(
    test_fraction: float = 0.25, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Split:
    """Breast cancer (569 x 30, labels 0 = malignant, 1 = benign), split and scaled."""
    return _bundled("load_breast_cancer", True, test_fraction, seed, dtype)


def digits(
    test_fraction: float = 0.25, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Split:
    """Handwritten digits (1,797 x 64 pixels, 10 classes), split and scaled."""
    return _bundled("load_digits", True, test_fraction, seed, dtype)


def diabetes(
    test_fraction: float = 0.25, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Split:
    """Diabetes progression (442 x 10, real target); features and target scaled."""
    return _bundled("load_diabetes", False, test_fraction, seed, dtype)


def mlp_parameter_count(width: int, n_in: int = 64, n_out: int = 10) -> int:
    """:math:`p` of :func:`digits_mlp`: ``n_in*w + w + w*w + w + w*n_out + n_out``."""
    return n_in * width + width + width * width + width + width * n_out + n_out


def digits_mlp(
    width: int = 128,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    n_in: int = 64,
    n_out: int = 10,
) -> nn.Sequential:
    """The digits network: Linear(n_in, w), Tanh, Linear(w, w), Tanh, Linear(w, n_out).

    PyTorch's default initialisation, drawn from ``torch.Generator`` seeded with
    ``seed`` (the global RNG is left alone).  Its ``named_parameters()`` are
    ``0.weight, 0.bias, 2.weight, 2.bias, 4.weight, 4.bias``; the last two are
    the final linear layer (the "last-layer" block of chapters 13 and 15).
    """
    if width < 1:
        raise ValueError(f"width must be a positive integer; got {width}.")
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(n_in, width),
            nn.Tanh(),
            nn.Linear(width, width),
            nn.Tanh(),
            nn.Linear(width, n_out),
        )
    finally:
        torch.random.set_rng_state(state)
    return model.to(dtype)


def train_classifier(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 60,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> list[float]:
    """Train ``model`` in place with Adam on the mean cross-entropy; seeded shuffles.

    Returns the mean training loss of each epoch (a list of ``epochs`` floats).
    ``X``: ``(N, d)``, ``y``: ``(N,)`` long class indices.
    """
    if X.dim() != 2 or y.dim() != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"expected X of shape (N, d) and y of shape (N,); got {tuple(X.shape)} "
            f"and {tuple(y.shape)}."
        )
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    history: list[float] = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=generator)
        total = 0.0
        for start in range(0, X.shape[0], batch_size):
            idx = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            optimiser.step()
            total += loss.item() * idx.numel()
        history.append(total / X.shape[0])
    model.eval()
    return history
