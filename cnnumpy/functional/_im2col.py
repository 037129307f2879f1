"""im2col / col2im and the hyper-parameter checks shared by the convolution kernels.

Layout. The fast kernels work on a *channel-major* copy of the input, ``xp: (C, N, Hp, Wp)``
(zero padded, batch and channel axes swapped), and build the column matrix

    cols[c, kh, kw, n, i, j] = xp[c, n, i*sh + kh*dh, j*sw + kw*dw]     (C, KH, KW, N, H', W')

so that ``cols.reshape(C*KH*KW, N*H'*W')`` is the right operand of one matrix product with the
weight ``(F, C*KH*KW)``. In this layout every kernel tap ``(kh, kw)`` is a single strided-slice
copy from ``xp`` that keeps the order of the axes (no transposing copy of the big matrix), and
the products over the whole batch are single large BLAS calls. ``col2im`` is the adjoint of
``im2col``: it adds each column entry back onto the input pixel it was copied from, so
overlapping windows accumulate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backend
from ._checks import check_array, check_same_dtype, check_shape, conv_output_size, pair

_SCRATCH = backend.Workspace("im2col")


class ConvGeometry(NamedTuple):
    """Resolved hyper-parameters of one convolution, all as ``(h, w)`` pairs of ints."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]  # (top, bottom, left, right): 'same' may be asymmetric
    in_size: tuple[int, int]  # spatial size of the unpadded input of the correlation
    out_size: tuple[int, int]  # spatial size of its output

    @property
    def padded_size(self) -> tuple[int, int]:
        top, bottom, left, right = self.pads
        return self.in_size[0] + top + bottom, self.in_size[1] + left + right


def _at_least(value: int | tuple[int, int], name: str, minimum: int) -> tuple[int, int]:
    h, w = pair(value, name)
    if h < minimum or w < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return h, w


def check_groups(groups: int, channels: int, filters: int) -> None:
    """``groups`` must be a positive int dividing both the input and the output channels."""
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if channels % groups:
        raise ValueError(f"groups={groups} must divide the input channels, got C={channels}")
    if filters % groups:
        raise ValueError(f"groups={groups} must divide the output channels, got F={filters}")


def resolve_padding(
    padding: int | tuple[int, int] | str,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` from an int, a pair, ``'valid'`` or ``'same'``.

    ``'same'`` keeps the spatial size at stride 1: the total padding along an axis is
    ``dilation * (k - 1)``, split as PyTorch does with the odd pixel on the bottom/right.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding != "same":
            raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
        total_h, total_w = (d * (k - 1) for d, k in zip(dilation, kernel, strict=True))
        return total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2
    ph, pw = _at_least(padding, "padding", 0)
    return ph, ph, pw, pw


def conv2d_geometry(
    x: np.ndarray,
    weight: np.ndarray,
    *,
    stride: int | tuple[int, int],
    padding: int | tuple[int, int] | str,
    dilation: int | tuple[int, int],
    groups: int,
) -> ConvGeometry:
    """Validate conv2d's shapes and hyper-parameters; the caller has checked ndim and dtype."""
    _, c, h, w = x.shape
    f, c_per_group, kh, kw = weight.shape
    check_groups(groups, c, f)
    if c != c_per_group * groups:
        raise ValueError(
            f"x has C={c} channels but weight of shape {weight.shape} with groups={groups} "
            f"expects weight.shape[1] * groups = {c_per_group * groups}"
        )
    stride = _at_least(stride, "stride", 1)
    dilation = _at_least(dilation, "dilation", 1)
    pads = resolve_padding(padding, (kh, kw), stride, dilation)
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    reach_h, reach_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if kh < 1 or kw < 1 or reach_h > hp or reach_w > wp:
        raise ValueError(
            f"kernel {kh}x{kw} (spanning {reach_h}x{reach_w} with dilation {dilation}) does not "
            f"fit the padded input {hp}x{wp} (input {h}x{w}, padding {padding!r})"
        )
    out_size = (
        conv_output_size(hp, kh, stride[0], 0, dilation[0]),
        conv_output_size(wp, kw, stride[1], 0, dilation[1]),
    )
    return ConvGeometry((kh, kw), stride, dilation, pads, (h, w), out_size)


def conv_transpose2d_geometry(
    x: np.ndarray,
    weight: np.ndarray,
    *,
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    output_padding: int | tuple[int, int],
    dilation: int | tuple[int, int],
    groups: int,
) -> ConvGeometry:
    """Validate conv_transpose2d's arguments and describe the conv2d it is the adjoint of.

    That conv2d maps the transposed output ``(H_out, W_out)`` back to ``x``'s ``(H, W)``, so in
    the returned geometry ``in_size`` is ``(H_out, W_out)`` and ``out_size`` is ``(H, W)``.
    """
    _, c, h, w = x.shape
    c_w, f_per_group, kh, kw = weight.shape
    if c != c_w:
        raise ValueError(
            f"x has C={c} channels but weight of shape {weight.shape} expects "
            f"weight.shape[0] = {c_w} (weight is (C_in, F/groups, KH, KW))"
        )
    check_groups(groups, c, f_per_group * groups)
    stride = _at_least(stride, "stride", 1)
    dilation = _at_least(dilation, "dilation", 1)
    ph, pw = _at_least(padding, "padding", 0)
    oph, opw = _at_least(output_padding, "output_padding", 0)
    # Without the extra rows the adjoint conv2d cannot tell H_out apart from H_out + op when
    # op < stride; PyTorch also allows op < dilation, where the extra rows are never written.
    for axis, op, s, d in zip(("height", "width"), (oph, opw), stride, dilation, strict=True):
        if op >= s and op >= d:
            raise ValueError(
                f"output_padding must be smaller than stride or dilation, got output_padding={op} "
                f"with stride={s} and dilation={d} along the {axis}"
            )
    out_h = (h - 1) * stride[0] - 2 * ph + dilation[0] * (kh - 1) + oph + 1
    out_w = (w - 1) * stride[1] - 2 * pw + dilation[1] * (kw - 1) + opw + 1
    if kh < 1 or kw < 1 or out_h < 1 or out_w < 1:
        raise ValueError(
            f"conv_transpose2d output would be {out_h}x{out_w} for input {h}x{w}, kernel "
            f"{kh}x{kw}, stride {stride}, padding {(ph, pw)}, dilation {dilation}, "
            f"output_padding {(oph, opw)}"
        )
    return ConvGeometry((kh, kw), stride, dilation, (ph, ph, pw, pw), (out_h, out_w), (h, w))


def check_bias(bias: np.ndarray | None, x: np.ndarray, filters: int) -> None:
    """A bias, when given, is ``(F,)`` with the input's dtype."""
    if bias is not None:
        check_array(bias, "bias", ndim=1)
        check_same_dtype(x, bias, "bias")
        check_shape(bias, (filters,), "bias")


def pad_channel_major(
    x: np.ndarray, pads: tuple[int, int, int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """``x: (N, C, H, W)`` -> zero-padded ``(C, N, H + top + bottom, W + left + right)``.

    With ``out`` (a scratch buffer of that shape), only its border is zeroed before the copy.
    """
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    if out is None:
        out = np.zeros((c, n, h + top + bottom, w + left + right), dtype=x.dtype)
    else:
        out[:, :, :top] = 0
        out[:, :, top + h :] = 0
        out[:, :, top : top + h, :left] = 0
        out[:, :, top : top + h, left + w :] = 0
    out[:, :, top : top + h, left : left + w] = x.transpose(1, 0, 2, 3)
    return out


def crop_batch_major(
    xp: np.ndarray, pads: tuple[int, int, int, int], size: tuple[int, int]
) -> np.ndarray:
    """Inverse of ``pad_channel_major``: ``(C, N, Hp, Wp)`` -> contiguous ``(N, C, H, W)``."""
    top, _, left, _ = pads
    h, w = size
    return np.ascontiguousarray(xp[:, :, top : top + h, left : left + w].transpose(1, 0, 2, 3))


def _tap(kh: int, kw: int, g: ConvGeometry) -> tuple[slice, slice]:
    """The padded-input rows and columns that kernel tap ``(kh, kw)`` sees, one per output."""
    (sh, sw), (dh, dw), (oh, ow) = g.stride, g.dilation, g.out_size
    return (
        slice(kh * dh, kh * dh + sh * (oh - 1) + 1, sh),
        slice(kw * dw, kw * dw + sw * (ow - 1) + 1, sw),
    )


def im2col(xp: np.ndarray, g: ConvGeometry, out: np.ndarray | None = None) -> np.ndarray:
    """``xp: (C, N, Hp, Wp)`` -> ``cols: (C, KH, KW, N, H', W')``, one copy per kernel tap.

    ``out``, when given, is the array of that shape to write the columns into. With a vertical
    stride of 1 the copy goes in two passes (see ``_rows``): first the ``KW`` column shifts of
    every padded row, then, for each ``kh``, one copy of whole contiguous ``H' x W'`` planes.
    A tap-by-tap copy moves rows of only ``W'`` numbers (10 in LeNet's C3), where NumPy's
    per-row overhead costs more than the copying; the two passes are up to twice as fast.
    """
    c, n = xp.shape[:2]
    kh_, kw_ = g.kernel
    cols = np.empty((c, kh_, kw_, n, *g.out_size), dtype=xp.dtype) if out is None else out
    if g.stride[0] == 1:
        rows = _rows(xp.shape, g, xp.dtype)
        for kw in range(kw_):
            rows[:, kw] = xp[:, :, :, _tap(0, kw, g)[1]]
        for kh in range(kh_):
            cols[:, kh] = rows[:, :, :, _tap(kh, 0, g)[0]]
        return cols
    for kh in range(kh_):
        for kw in range(kw_):
            tap_rows, tap_columns = _tap(kh, kw, g)
            cols[:, kh, kw] = xp[:, :, tap_rows, tap_columns]
    return cols


def col2im(cols: np.ndarray, g: ConvGeometry, out: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of ``im2col``: ``cols: (C, KH, KW, N, H', W')`` -> ``xp: (C, N, Hp, Wp)``.

    ``xp[c, n, y, x]`` is the sum of every column entry that ``im2col`` copied from that pixel.
    Within one tap the output pixels read distinct input pixels, so each tap is a single strided
    ``+=``; the overlap between windows is handled by the loop over taps (with a vertical stride
    of 1, in im2col's two passes taken backwards: the ``kh`` planes summed into rows, then the
    rows added at their ``KW`` shifts). With ``out`` (a view is fine) the sums are added into
    it and it is returned; otherwise into fresh zeros.
    """
    c, kh_, kw_, n = cols.shape[:4]
    xp = np.zeros((c, n, *g.padded_size), dtype=cols.dtype) if out is None else out
    if g.stride[0] == 1:
        rows = _rows(xp.shape, g, cols.dtype)
        oh = g.out_size[0]
        rows[:, :, :, :oh] = cols[:, 0]  # tap kh = 0 covers rows 0 .. H'-1
        rows[:, :, :, oh:] = 0
        for kh in range(1, kh_):
            rows[:, :, :, _tap(kh, 0, g)[0]] += cols[:, kh]
        for kw in range(kw_):
            xp[:, :, :, _tap(0, kw, g)[1]] += rows[:, kw]
        return xp
    for kh in range(kh_):
        for kw in range(kw_):
            tap_rows, tap_columns = _tap(kh, kw, g)
            xp[:, :, tap_rows, tap_columns] += cols[:, kh, kw]
    return xp


def _rows(xp_shape: tuple[int, ...], g: ConvGeometry, dtype: np.dtype) -> np.ndarray:
    """Scratch for the first pass of a stride-1 im2col (and the last of its col2im):
    ``rows[c, kw, n, y, j] = xp[c, n, y, j*sw + kw*dw]`` for every padded row ``y``. Tap
    ``(kh, kw)`` then reads rows ``kh*dh .. kh*dh + H' - 1`` of it, one contiguous block."""
    c, n, hp = xp_shape[:3]
    return _SCRATCH.buffer("rows", (c, g.kernel[1], n, hp, g.out_size[1]), dtype)
