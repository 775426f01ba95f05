"""helpers.data: the bundled data sets, their splits and scaling, the digits network."""

from __future__ import annotations

import pytest
import torch

from helpers import data


@pytest.mark.parametrize(
    ("load", "n", "d", "classes"),
    [
        (data.breast_cancer, 569, 30, 2),
        (data.digits, 1797, 64, 10),
        (data.diabetes, 442, 10, 0),
    ],
)
def test_splits_have_the_documented_shapes_and_dtypes(load, n, d, classes):
    split = load()
    n_train, n_test = split.X_train.shape[0], split.X_test.shape[0]
    assert n_train + n_test == n
    assert n_test == pytest.approx(0.25 * n, abs=1)
    assert split.X_train.shape == (n_train, d) and split.X_test.shape == (n_test, d)
    assert split.y_train.shape == (n_train,) and split.y_test.shape == (n_test,)
    assert split.X_train.dtype == torch.float64
    assert split.n_classes == classes and split.n_features == d
    if classes:
        assert split.y_train.dtype == torch.long
        assert set(split.y_train.tolist()) == set(range(classes))
    else:
        assert split.y_train.dtype == torch.float64


@pytest.mark.parametrize("load", [data.breast_cancer, data.digits, data.diabetes])
def test_training_features_are_standardised_with_training_statistics(load):
    split = load()
    mean, std = split.X_train.mean(0), split.X_train.std(0, unbiased=False)
    assert mean.abs().max() < 1e-12
    varying = std > 0  # digits: pixels that are blank on every training image stay 0
    assert torch.allclose(std[varying], torch.ones_like(std[varying]), atol=1e-12)
    # The test split is scaled with the training statistics, so it is not exactly
    # standardised: a split scaled with its own statistics would be.
    assert split.X_test.mean(0).abs().max() > 1e-6


def test_splits_are_seeded_and_stratified():
    a, b, c = data.digits(seed=0), data.digits(seed=0), data.digits(seed=1)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.y_train, c.y_train)
    train_share = torch.bincount(a.y_train) / a.y_train.numel()
    test_share = torch.bincount(a.y_test) / a.y_test.numel()
    assert (train_share - test_share).abs().max() < 0.01


def test_split_refuses_a_test_fraction_outside_the_open_unit_interval():
    with pytest.raises(
        ValueError, match=r"test_fraction must lie in \(0, 1\); got 1.5"
    ):
        data.breast_cancer(test_fraction=1.5)


@pytest.mark.parametrize("width", [32, 128])
def test_digits_mlp_has_the_documented_parameter_count_and_is_seeded(width):
    before = torch.random.get_rng_state()
    a, b = data.digits_mlp(width, seed=3), data.digits_mlp(width, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before), "global RNG changed"
    p = sum(t.numel() for t in a.parameters())
    assert p == data.mlp_parameter_count(width)
    assert p == {32: 3466, 128: 26122}[width]
    assert [n for n, _ in a.named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    for (_, s), (_, t) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(s, t) and s.dtype == torch.float64
    with pytest.raises(ValueError, match="width must be a positive integer; got 0"):
        data.digits_mlp(0)


def test_train_classifier_lowers_the_loss_reproducibly():
    split = data.breast_cancer()
    histories, weights = [], []
    for _ in range(2):
        model = torch.nn.Linear(30, 2).double()
        torch.nn.init.zeros_(model.weight), torch.nn.init.zeros_(model.bias)
        histories.append(
            data.train_classifier(model, split.X_train, split.y_train, epochs=5)
        )
        weights.append(model.weight.detach().clone())
    assert histories[0] == histories[1] and torch.equal(weights[0], weights[1])
    assert len(histories[0]) == 5 and histories[0][-1] < histories[0][0]


def test_train_classifier_refuses_mismatched_shapes():
    model = torch.nn.Linear(3, 2).double()
    with pytest.raises(
        ValueError, match=r"expected X of shape \(N, d\) and y of shape \(N,\)"
    ):
        data.train_classifier(
            model, torch.zeros(4, 3), torch.zeros(5, dtype=torch.long)
        )
