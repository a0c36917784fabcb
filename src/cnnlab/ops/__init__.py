"""Chapter-7 operators from scratch (d2l 7.2-7.5).

The book's loops (:mod:`cnnlab.ops.reference`) are the readable reference; the
vectorised ``conv2d``, ``max_pool2d`` and ``avg_pool2d`` have the semantics of
``torch.nn.functional`` and are built only from padding, ``as_strided``/reshape,
gather and matmul.

Example:
    >>> import torch
    >>> from cnnlab import ops
    >>> X = torch.arange(9.0).reshape(3, 3)
    >>> ops.corr2d(X, torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    tensor([[19., 25.],
            [37., 43.]])
    >>> ops.output_shape(8, 3, padding=1, stride=2)
    (4, 4)
"""

from cnnlab.ops.conv import conv2d
from cnnlab.ops.pool import avg_pool2d, max_pool2d
from cnnlab.ops.reference import (
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    pool2d,
)
from cnnlab.ops.shape import output_shape

__all__ = [
    "avg_pool2d",
    "conv2d",
    "corr2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "max_pool2d",
    "output_shape",
    "pool2d",
]
