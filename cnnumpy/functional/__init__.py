"""Pure kernels: arrays in, ``(out, cache)`` out, and a backward that consumes the cache.

Every layer ``NAME`` has ``NAME_forward(x, *params, **hyper) -> (out, cache)`` and
``NAME_backward(dout, cache) -> dx`` or ``(dx, dparam1, ...)`` in the order of the forward's
array arguments. Losses are ``NAME_loss(scores, y) -> (loss, dscores)``. Where the fast kernel
is not itself obviously the formula, ``NAME_forward_naive``/``NAME_backward_naive`` are plain
loops over it: they document the maths and the tests compare against them.

Every kernel takes an empty batch (``N = 0``) as PyTorch does: an empty output, an empty
``dx`` and zero parameter gradients (a loss: NaN and an empty gradient). Where the general
code cannot (chunked loops, reductions), an early return handles it, outside the hot path.
Inputs may be any NumPy views; results are new arrays in the input's dtype.
"""

from ._checks import pair
from .activation import (
    elu_backward,
    elu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    log_softmax_backward,
    log_softmax_forward,
    noisy_relu_backward,
    noisy_relu_forward,
    prelu_backward,
    prelu_forward,
    relu_backward,
    relu_forward,
    scaled_tanh_backward,
    scaled_tanh_forward,
    sigmoid_backward,
    sigmoid_forward,
    softmax_backward,
    softmax_forward,
    tanh_backward,
    tanh_forward,
)
from .conv import conv2d_backward, conv2d_forward
from .conv_naive import (
    conv2d_backward_naive,
    conv2d_forward_naive,
    conv_transpose2d_backward_naive,
    conv_transpose2d_forward_naive,
)
from .conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward
from .curvature import (
    conv2d_curvature,
    cross_entropy_curvature,
    linear_curvature,
    map_loss_curvature,
    rbf_curvature,
    relu_curvature,
    scaled_tanh_curvature,
    sigmoid_curvature,
    subsampling_curvature,
    tanh_curvature,
)
from .dropout import dropout_backward, dropout_forward
from .group_norm import (
    group_norm_backward,
    group_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
)
from .group_norm_naive import (
    group_norm_backward_naive,
    group_norm_forward_naive,
    layer_norm_backward_naive,
    layer_norm_forward_naive,
)
from .linear import linear_backward, linear_forward
from .loss import multi_margin_loss, softmax_cross_entropy_loss, svm_loss
from .norm import (
    batch_norm_backward,
    batch_norm_forward,
    local_response_norm_backward,
    local_response_norm_forward,
    spatial_batch_norm_backward,
    spatial_batch_norm_forward,
)
from .norm_naive import (
    batch_norm_backward_naive,
    batch_norm_forward_naive,
    local_response_norm_backward_naive,
    local_response_norm_forward_naive,
    spatial_batch_norm_backward_naive,
    spatial_batch_norm_forward_naive,
)
from .pad import constant_pad2d_backward, constant_pad2d_forward
from .pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    subsampling_backward,
    subsampling_forward,
)
from .pool_naive import (
    avg_pool2d_backward_naive,
    avg_pool2d_forward_naive,
    global_avg_pool2d_backward_naive,
    global_avg_pool2d_forward_naive,
    max_pool2d_backward_naive,
    max_pool2d_forward_naive,
    subsampling_backward_naive,
    subsampling_forward_naive,
)
from .rbf import map_loss, rbf_backward, rbf_backward_naive, rbf_forward, rbf_forward_naive
from .sync_batch_norm import (
    sync_batch_norm_backward,
    sync_batch_norm_backward_naive,
    sync_batch_norm_forward,
    sync_batch_norm_forward_naive,
)
from .table_conv import (
    table_conv2d_backward,
    table_conv2d_curvature,
    table_conv2d_forward,
    table_conv2d_forward_naive,
)

__all__ = [
    "avg_pool2d_backward",
    "avg_pool2d_backward_naive",
    "avg_pool2d_forward",
    "avg_pool2d_forward_naive",
    "batch_norm_backward",
    "batch_norm_backward_naive",
    "batch_norm_forward",
    "batch_norm_forward_naive",
    "constant_pad2d_backward",
    "constant_pad2d_forward",
    "conv2d_backward",
    "conv2d_backward_naive",
    "conv2d_curvature",
    "conv2d_forward",
    "conv2d_forward_naive",
    "conv_transpose2d_backward",
    "conv_transpose2d_backward_naive",
    "conv_transpose2d_forward",
    "conv_transpose2d_forward_naive",
    "cross_entropy_curvature",
    "dropout_backward",
    "dropout_forward",
    "elu_backward",
    "elu_forward",
    "global_avg_pool2d_backward",
    "global_avg_pool2d_backward_naive",
    "global_avg_pool2d_forward",
    "global_avg_pool2d_forward_naive",
    "group_norm_backward",
    "group_norm_backward_naive",
    "group_norm_forward",
    "group_norm_forward_naive",
    "layer_norm_backward",
    "layer_norm_backward_naive",
    "layer_norm_forward",
    "layer_norm_forward_naive",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "linear_backward",
    "linear_curvature",
    "linear_forward",
    "local_response_norm_backward",
    "local_response_norm_backward_naive",
    "local_response_norm_forward",
    "local_response_norm_forward_naive",
    "log_softmax_backward",
    "log_softmax_forward",
    "map_loss",
    "map_loss_curvature",
    "max_pool2d_backward",
    "max_pool2d_backward_naive",
    "max_pool2d_forward",
    "max_pool2d_forward_naive",
    "multi_margin_loss",
    "noisy_relu_backward",
    "noisy_relu_forward",
    "pair",
    "prelu_backward",
    "prelu_forward",
    "rbf_backward",
    "rbf_backward_naive",
    "rbf_curvature",
    "rbf_forward",
    "rbf_forward_naive",
    "relu_backward",
    "relu_curvature",
    "relu_forward",
    "scaled_tanh_backward",
    "scaled_tanh_curvature",
    "scaled_tanh_forward",
    "sigmoid_backward",
    "sigmoid_curvature",
    "sigmoid_forward",
    "softmax_backward",
    "softmax_cross_entropy_loss",
    "softmax_forward",
    "spatial_batch_norm_backward",
    "spatial_batch_norm_backward_naive",
    "spatial_batch_norm_forward",
    "spatial_batch_norm_forward_naive",
    "subsampling_backward",
    "subsampling_backward_naive",
    "subsampling_curvature",
    "subsampling_forward",
    "subsampling_forward_naive",
    "svm_loss",
    "sync_batch_norm_backward",
    "sync_batch_norm_backward_naive",
    "sync_batch_norm_forward",
    "sync_batch_norm_forward_naive",
    "table_conv2d_backward",
    "table_conv2d_curvature",
    "table_conv2d_forward",
    "table_conv2d_forward_naive",
    "tanh_backward",
    "tanh_curvature",
    "tanh_forward",
]
