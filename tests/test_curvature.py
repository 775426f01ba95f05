"""helpers.curvature: data-set Hessian and GGN operators, on one process and two."""

from __future__ import annotations

import copy
import functools
import textwrap

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from helpers import curvature
from helpers.curvature import batches, curvature_operator, shard

N, D, C = 23, 4, 3  # 23 samples: batches of 5 leave a last batch of 3


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (N,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(D, 5), nn.Tanh(), nn.Linear(5, C)).double()
    return model, X, y


CE = nn.CrossEntropyLoss(reduction="none")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny products: one thread avoids OpenMP's spinning on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _flat_fn(model):
    names = [n for n, _ in model.named_parameters()]
    shapes = [t.shape for _, t in model.named_parameters()]
    sizes = [t.numel() for _, t in model.named_parameters()]
    theta = torch.cat([t.detach().reshape(-1) for _, t in model.named_parameters()])

    def outputs(flat, X):
        parts = flat.split(sizes)
        params = {n: q.reshape(s) for n, q, s in zip(names, parts, shapes, strict=True)}
        return functional_call(model, params, (X,))

    return theta, outputs


def _dense(model, X, y, kind, reduce):
    """The reference matrix from torch.func on the whole data set at once."""
    theta, outputs = _flat_fn(model)
    scale = 1 / X.shape[0] if reduce == "mean" else 1.0
    if kind == "hessian":
        return torch.func.hessian(lambda t: CE(outputs(t, X), y).sum() * scale)(theta)
    J = jacrev(outputs)(theta, X)  # (N, C, p)
    s = outputs(theta, X).detach().softmax(-1)
    H_out = torch.diag_embed(s) - s[:, :, None] * s[:, None, :]
    return torch.einsum("ncp,ncd,ndq->pq", J, H_out, J) * scale


@pytest.mark.parametrize("kind", ["hessian", "ggn"])
@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_uneven_batches_match_the_whole_data_set(kind, reduce):
    model, X, y = _problem()
    op = curvature_operator(model, CE, batches(X, y, 5), kind=kind, reduce=reduce)
    p = sum(t.numel() for t in model.parameters())
    assert op.shape == (p, p)
    dense = _dense(model, X, y, kind, reduce)
    torch.testing.assert_close(op.to_dense(), dense, rtol=1e-12, atol=1e-13)
    assert op.num_products == p and op.num_samples == N
    v = torch.randn(p, dtype=torch.float64)
    out = op @ v
    assert out.shape == (p,) and out.dtype == torch.float64
    torch.testing.assert_close(out, dense @ v, rtol=1e-12, atol=1e-13)


def test_a_mean_of_batch_means_is_not_the_data_set_mean():
    model, X, y = _problem()
    v = torch.randn(sum(t.numel() for t in model.parameters()), dtype=torch.float64)
    right = curvature_operator(model, CE, batches(X, y, 5)) @ v
    means = [curvature_operator(model, CE, [b]) @ v for b in batches(X, y, 5)]
    wrong = torch.stack(means).mean(0)
    assert (wrong - right).abs().max() > 1e-3


def test_block_of_vectors_equals_columns_and_scipy_view():
    model, X, y = _problem()
    op = curvature_operator(model, CE, batches(X, y, 8), kind="ggn")
    p = op.shape[0]
    V = torch.randn(p, 3, dtype=torch.float64)
    block = op @ V
    assert op.num_products == 3
    for j in range(3):
        torch.testing.assert_close(block[:, j], op @ V[:, j], rtol=1e-13, atol=1e-14)
    lin = op.to_scipy()
    x = V[:, 0].numpy()
    np.testing.assert_allclose(lin @ x, block[:, 0].numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lin.matmat(V.numpy()), block.numpy(), rtol=1e-12)


def test_parameters_that_do_not_require_grad_are_left_out():
    model, X, y = _problem()
    model[0].weight.requires_grad_(False)
    op = curvature_operator(model, CE, batches(X, y, 23))
    assert op.names == ("0.bias", "2.weight", "2.bias")
    assert op.shape[0] == 5 + 15 + 3


def test_shard_is_contiguous_and_covers_every_sample_once():
    _, X, y = _problem()
    parts = [shard(X, y, r, 2) for r in range(2)]
    assert [len(a) for a, _ in parts] == [12, 11]
    torch.testing.assert_close(torch.cat([a for a, _ in parts]), X)
    with pytest.raises(ValueError, match="rank must lie in"):
        shard(X, y, 2, 2)
    assert shard(X, y, 1, 2, sizes=[20, 3])[0].shape == (3, D)
    with pytest.raises(ValueError, match="summing to 23"):
        shard(X, y, 0, 2, sizes=[20, 2])


def test_errors_say_what_is_wrong():
    model, X, y = _problem()
    p = sum(t.numel() for t in model.parameters())
    v = torch.randn(p, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown kind 'fisher'"):
        curvature_operator(model, CE, batches(X, y, 5), kind="fisher")
    with pytest.raises(ValueError, match="unknown reduce 'avg'"):
        curvature_operator(model, CE, batches(X, y, 5), reduce="avg")
    op = curvature_operator(model, CE, batches(X, y, 5))
    with pytest.raises(ValueError, match=rf"expected \({p},\)"):
        op @ torch.randn(p + 1, dtype=torch.float64)
    with pytest.raises(TypeError, match="v is float32 but the parameters are float64"):
        op @ v.float()
    with pytest.raises(TypeError, match="needs a torch.Tensor"):
        op @ v.numpy()
    with pytest.raises(ValueError, match="loader yielded no samples"):
        curvature_operator(model, CE, []) @ v
    once = curvature_operator(model, CE, iter(batches(X, y, 5)))
    once @ v
    with pytest.raises(ValueError, match="exhausted generator"):
        once @ v
    mean_loss = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"expected per-sample losses of shape \(B,\)"):
        curvature_operator(model, mean_loss, batches(X, y, 5)) @ v
    with pytest.raises(ValueError, match="must be a pair"):
        curvature_operator(model, CE, [(X, y, None)]) @ v
    with pytest.raises(TypeError, match="loader must be an iterable"):
        curvature_operator(model, CE, X)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        batches(X, y, 0)


def test_saved_bytes_grow_with_the_batch():
    model, X, y = _problem()
    v = torch.randn(sum(t.numel() for t in model.parameters()), dtype=torch.float64)
    small = curvature_operator(model, CE, batches(X, y, 5))
    whole = curvature_operator(model, CE, batches(X, y, N))
    params = list(model.parameters())
    _, b_small = curvature.saved_bytes(lambda: small @ v, exclude=params)
    _, b_whole = curvature.saved_bytes(lambda: whole @ v, exclude=params)
    assert 0 < b_small < b_whole


def test_the_count_is_exact_in_low_precision():
    """301 samples: a bfloat16 count would round to 300 or 302."""
    model, X, y = _problem()
    X, y = X.repeat(14, 1)[:301], y.repeat(14)[:301]
    op = curvature_operator(model.bfloat16(), CE, batches(X.bfloat16(), y, 301))
    op @ torch.ones(op.shape[0], dtype=torch.bfloat16)
    assert op.num_samples == 301


def test_probe_mismatch_is_refused():
    good = curvature._autograd_probe().tolist()
    curvature._check_probes([good, good])
    with pytest.raises(RuntimeError, match="worker 1's autograd differs"):
        curvature._check_probes([good, [x * 1.001 for x in good]])


PRELUDE = textwrap.dedent(
    """
    import functools
    import torch

    _orig = torch.autograd.grad

    @functools.wraps(_orig)
    def _scaled(*args, **kwargs):
        return tuple(None if g is None else g * 1.001 for g in _orig(*args, **kwargs))

    torch.autograd.grad = _scaled
    """
)


def test_two_processes_with_unequal_shards_and_a_prelude(tmp_path, monkeypatch):
    """One torchrun launch: two processes, unequal shards, both kinds, float32 too.

    A prelude scales every gradient in the workers by 1.001, and the same patch is
    applied here, so the probes agree and the products must match this process's,
    scaled products: the prelude reaches the workers, and the all-reduce sums.
    """
    model, X, y = _problem()
    p = sum(t.numel() for t in model.parameters())
    V = torch.randn(
        p, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    model32 = copy.deepcopy(model).float()
    prelude = tmp_path / "prelude.py"
    prelude.write_text(PRELUDE)
    monkeypatch.setenv("HELPERS_WORKER_PRELUDE", str(prelude))
    jobs = [
        {
            "model": model,
            "loss_fn": CE,
            "X": X,
            "y": y,
            "vectors": V,
            "batch_size": 5,
            "shard_sizes": [17, 6],
        },
        {
            **{"model": model, "loss_fn": CE, "X": X, "y": y, "vectors": V},
            "kind": "ggn",
            "reduce": "sum",
            "batch_size": 4,
        },
        {  # float32: the count is all-reduced as an int64 of its own
            **{"model": model32, "loss_fn": CE, "X": X.float(), "y": y},
            "vectors": V.float(),
            "shard_sizes": [20, 3],
        },
    ]
    orig = torch.autograd.grad

    @functools.wraps(orig)
    def scaled(*args, **kwargs):
        return tuple(None if g is None else g * 1.001 for g in orig(*args, **kwargs))

    monkeypatch.setattr(torch.autograd, "grad", scaled)
    result = curvature.torchrun(jobs, nproc=2, timeout=300)
    assert result["world_size"] == 2
    job32 = result["jobs"][2]
    assert job32["num_samples"] == N and job32["products"].dtype == torch.float32
    local32 = curvature_operator(model32, CE, batches(X.float(), y, 7)) @ V.float()
    torch.testing.assert_close(job32["products"], local32, rtol=1e-5, atol=1e-6)
    for job, kind, reduce in zip(
        result["jobs"][:2], ["hessian", "ggn"], ["mean", "sum"], strict=True
    ):
        local = curvature_operator(
            model, CE, batches(X, y, 7), kind=kind, reduce=reduce
        )
        expected = local @ V
        assert job["num_samples"] == N
        torch.testing.assert_close(job["products"], expected, rtol=1e-12, atol=1e-14)
    assert [j["shard_sizes"] for j in result["jobs"]] == [[17, 6], [12, 11], [20, 3]]
    monkeypatch.setattr(torch.autograd, "grad", orig)
    clean = curvature_operator(model, CE, batches(X, y, 7)) @ V
    assert (
        result["jobs"][0]["products"] - clean
    ).abs().max() > 1e-4 * clean.abs().max()
    assert result.command.startswith("torchrun --standalone --nproc-per-node=2")


def test_torchrun_refuses_bad_jobs():
    with pytest.raises(ValueError, match="lacks"):
        curvature.torchrun([{"model": nn.Linear(2, 2)}])
    with pytest.raises(ValueError, match="kind must be one of"):
        job = {"model": 0, "loss_fn": 0, "X": 0, "y": 0, "vectors": 0, "kind": "x"}
        curvature.torchrun([job])
