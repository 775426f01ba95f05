"""Helpers for the course *Second-order autodiff in PyTorch*.

``helpers.closed_form`` derives gradients, Jacobians and Hessians with SymPy and
evaluates them as float64 tensors; ``helpers.check`` compares what autograd
computed with them and says, in one line, that it matched; ``helpers.params``
flattens parameter dicts and Hessian blocks in the course's order; and
``helpers.bench`` times every method side by side (``make bench``).

Part V (real data, 10⁴-10⁵ parameters) adds, imported on demand:
``helpers.data`` (scikit-learn's bundled data sets as seeded, standardised
splits; the digits network), ``helpers.curvature`` (the data-set Hessian and
GGN as operators, batch by batch and across processes, with
``helpers.curvature_worker`` run under ``torchrun``), ``helpers.spectra``
(Lanczos, Hutch++, SLQ on such operators) and ``helpers.inverse``
(inverse-Hessian-vector products: conjugate gradients, LiSSA).
``helpers.figures`` holds the figure style every chapter uses.
"""

from helpers import check, closed_form, params

__all__ = ["check", "closed_form", "params"]
__version__ = "0.2.0"
