"""helpers.bench.peak_tensor_bytes: the CPU allocator's peak for one call.

Exact to the byte, so the expected values are the tensors' bytes plus, where
an operation takes a Python number, the 8-byte 0-d tensors PyTorch wraps such
numbers in (at most :data:`WRAPPED` bytes in these examples).
"""

from __future__ import annotations

import torch

from helpers import bench

WRAPPED = 32  # bytes: a few 0-d tensors holding Python numbers


def about(expected: int, peak: float) -> bool:
    return expected <= peak <= expected + WRAPPED


def test_known_allocations():
    f64 = torch.float64
    assert bench.peak_tensor_bytes(lambda: torch.empty(1000, dtype=f64)) == 8000
    assert bench.peak_tensor_bytes(lambda: torch.empty(3, dtype=torch.float32)) == 12

    def freed_before_the_next():
        a = torch.ones(1000, dtype=f64)
        b = a * 2  # both alive: 16000
        del a
        c = b.sum()  # a is gone: b and c
        del b
        return c

    assert about(16000, bench.peak_tensor_bytes(freed_before_the_next))


def test_views_and_inputs_are_not_new_memory():
    x = torch.zeros(1000, dtype=torch.float64)
    assert bench.peak_tensor_bytes(lambda: x.view(10, 100).T) == 0
    assert about(0, bench.peak_tensor_bytes(lambda: x.add_(1.0)))
    assert about(80, bench.peak_tensor_bytes(lambda: x.detach()[:10] * 1))


def test_tensors_autograd_saves_stay_counted():
    def graph():
        x = torch.ones(1000, dtype=torch.float64, requires_grad=True)  # 8000
        y = torch.tanh(x)  # 8000, saved by tanh's backward
        z = (y * y).sum()  # y * y: 8000, freed once summed; z: 8
        del y  # the Python name goes; autograd still holds y
        return z

    # peak: x, y, y*y alive together; y is still counted after del
    assert about(24000 + 8, bench.peak_tensor_bytes(graph))


def test_a_hessian_holds_at_least_its_own_bytes():
    p = bench.make_problem("scalar", 50)
    for method in ("hessian_func", "hessian_row_loop"):
        peak = bench.peak_tensor_bytes(bench.METHODS[method][1](p))
        assert peak >= 8 * 50 * 50, f"{method}: {peak}"


def test_temporaries_inside_an_operator_count():
    """``mv`` on a transposed matrix copies it to a contiguous n × n block
    inside the kernel and frees it before returning: that is memory the
    process needs, so the peak includes it (a count of the tensors operators
    return saw 8n bytes here, 100 to 400 times too little at n ≥ 1000)."""
    n = 300
    p = bench.make_problem("scalar", n)
    peak = bench.peak_tensor_bytes(bench.METHODS["hvp_fwd_rev"][1](p))
    assert peak >= 8 * n * n, f"forward over reverse at n = {n}: {peak} bytes"
