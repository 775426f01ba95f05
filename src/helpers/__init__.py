"""Helpers for the course *Second-order autodiff in PyTorch*.

``helpers.closed_form`` derives gradients, Jacobians and Hessians with SymPy and
evaluates them as float64 tensors; ``helpers.check`` compares what autograd
computed with them and says, in one line, that it matched; ``helpers.params``
flattens parameter dicts and Hessian blocks in the course's order; and
``helpers.bench`` times every method side by side (``make bench``).
"""

from helpers import check, closed_form, params

__all__ = ["check", "closed_form", "params"]
__version__ = "0.1.0"
