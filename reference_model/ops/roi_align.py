"""RoIAlign in pure PyTorch, vectorised over RoIs (torchvision / mmcv ``roi_align`` semantics).

Shape shorthand: B images, C channels, H x W feature map, R RoIs, oh x ow output bins,
G sample points per bin along one axis (the largest over the RoIs when adaptive).

For RoI ``(b, x1, y1, x2, y2)`` in image pixels and ``offset = 0.5 if aligned else 0``:

- the RoI on the map starts at ``x1 * spatial_scale - offset``; its size is
  ``(x2 - x1) * spatial_scale`` (clamped to at least 1 when not ``aligned``);
- each bin averages ``gh x gw`` bilinear samples at the centres of a regular sub-grid, with
  ``gh = sampling_ratio`` or, when ``sampling_ratio <= 0``, ``ceil(roi_h / oh)`` per RoI;
  the sum is divided by ``max(gh * gw, 1)``;
- a sample with ``y < -1`` or ``y > H`` (same for x) contributes 0; otherwise y is clamped
  to ``>= 0`` and, when ``floor(y) >= H - 1``, snapped to ``H - 1`` (both corners there).

The bilinear weights factor into a y part and an x part, so the per-axis quantities are
computed once per (RoI, bin, sample) in :func:`_axis_samples` and combined by broadcasting.
Four implementations share that helper:

- :func:`roi_align_dense` gathers every sample's four corners at once: the most literal
  transcription, O(R·oh·ow·G²·4·C) memory; the reference the others are tested against.
- :func:`roi_align_looped` loops over the G² sample offsets: O(R·oh·ow·C) memory.
- :func:`roi_align_separable` gathers each RoI's pixel window once (Hp x Wp pixels) and
  contracts it with a [oh, Hp] and a [ow, Wp] interpolation matrix: far fewer gathered
  values when RoIs are small on their map, as FPN level mapping makes them.
- :func:`roi_align_sparse` writes RoIAlign as one sparse matrix ``S [R·oh·ow, B·H·W]`` (the
  weight of each map pixel in each output bin) times the map as ``[B·H·W, C]``. The matrix
  holds only the nonzero taps of each bin, ragged (no padding to the largest RoI); the
  backward is the one product ``S^T @ grad``. Building S costs a few vectorised passes over
  the E taps; there is no Python loop over RoIs, samples or corners.

:mod:`reference_model.ops.dispatch` chooses between them (``sparse`` on CPU).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor


class _AxisSamples(NamedTuple):
    """Per-axis bilinear data, each ``Tensor[R, out, G]``.

    ``low``/``high`` are the two neighbouring integer coordinates; ``weight_low`` and
    ``weight_high`` already carry the zero for out-of-range samples and for grid slots
    beyond this RoI's own ``G``.
    """

    low: Tensor
    high: Tensor
    weight_low: Tensor
    weight_high: Tensor


def _axis_samples(
    start: Tensor, length: Tensor, grid: Tensor, max_grid: int, out_size: int, size: int
) -> _AxisSamples:
    """Sample positions and weights along one axis.

    Args:
        start, length: Tensor[R], RoI start and length on the feature map.
        grid: Tensor[R] (int64), samples per bin for each RoI.
        max_grid: G, the largest entry of ``grid``.
        out_size: bins along this axis.
        size: feature map length along this axis (H or W).
    """
    bin_size = length / out_size  # [R]
    bins = torch.arange(out_size, device=start.device, dtype=start.dtype)
    slots = torch.arange(max_grid, device=start.device)
    grid_f = grid.clamp(min=1).to(start.dtype)
    coord = (
        start[:, None, None]
        + bins[None, :, None] * bin_size[:, None, None]
        + (slots[None, None, :].to(start.dtype) + 0.5) * (bin_size / grid_f)[:, None, None]
    )  # [R, out, G]
    in_range = (coord >= -1.0) & (coord <= size) & (slots[None, None, :] < grid[:, None, None])
    coord = coord.clamp(min=0)
    low = coord.floor().to(torch.long)
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(coord), coord - low.to(coord.dtype))
    mask = in_range.to(coord.dtype)
    return _AxisSamples(low, high, (1.0 - frac) * mask, frac * mask)


class _RoIGeometry(NamedTuple):
    y: _AxisSamples
    x: _AxisSamples
    batch_index: Tensor  # [R] int64
    samples_per_bin: Tensor  # [R] at least 1


def _roi_geometry(
    input: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> _RoIGeometry:
    _, _, height, width = input.shape
    out_h, out_w = output_size
    offset = 0.5 if aligned else 0.0
    rois = rois.to(input.dtype)
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if not aligned:  # legacy: RoIs are at least one map pixel wide
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = torch.full_like(roi_h, sampling_ratio, dtype=torch.long)
        grid_w = torch.full_like(roi_w, sampling_ratio, dtype=torch.long)
    else:
        grid_h = torch.ceil(roi_h / out_h).to(torch.long)
        grid_w = torch.ceil(roi_w / out_w).to(torch.long)
    max_h = max(int(grid_h.max()), 1) if rois.shape[0] else 1
    max_w = max(int(grid_w.max()), 1) if rois.shape[0] else 1
    y = _axis_samples(y1, roi_h, grid_h, max_h, out_h, height)
    x = _axis_samples(x1, roi_w, grid_w, max_w, out_w, width)
    count = (grid_h * grid_w).clamp(min=1).to(input.dtype)
    return _RoIGeometry(y, x, rois[:, 0].to(torch.long), count)


def _check_inputs(input: Tensor, rois: Tensor, output_size: tuple[int, int]) -> None:
    if input.dim() != 4:
        raise ValueError(f"input must be Tensor[B, C, H, W], got shape {tuple(input.shape)}.")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(
            "rois must be Tensor[R, 5] (batch index, x1, y1, x2, y2), "
            f"got shape {tuple(rois.shape)}."
        )
    if min(output_size) < 1:
        raise ValueError(f"output_size must be positive, got {output_size}.")


def _as_pair(output_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(output_size, int):
        return (output_size, output_size)
    return (int(output_size[0]), int(output_size[1]))


def _flat_features(input: Tensor) -> Tensor:
    """``Tensor[B*H*W, C]`` so that one index picks one pixel's channel vector."""
    return input.permute(0, 2, 3, 1).reshape(-1, input.shape[1])


def roi_align_dense(
    input: Tensor,
    rois: Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign gathering all R·oh·ow·G² samples (times 4 corners) in one step.

    Args:
        input: Tensor[B, C, H, W].
        rois: Tensor[R, 5], rows ``(batch index, x1, y1, x2, y2)`` in input-image pixels.
        output_size: ``oh`` or ``(oh, ow)``.
        spatial_scale: feature-map pixels per image pixel (``1 / stride``).
        sampling_ratio: samples per bin and axis; ``<= 0`` picks ``ceil(roi_size / bins)``.
        aligned: shift by half a pixel so that pixel centres line up (Detectron2, mmcv default).

    Returns:
        Tensor[R, C, oh, ow].
    """
    size = _as_pair(output_size)
    _check_inputs(input, rois, size)
    num_channels, height, width = input.shape[1:]
    if rois.shape[0] == 0:
        return input.new_zeros((0, num_channels, *size))
    geo = _roi_geometry(input, rois, size, spatial_scale, sampling_ratio, aligned)
    # Corner axis of length 2 (low, high): y data [R, oh, Gy, 2], x data [R, ow, Gx, 2].
    ys = torch.stack([geo.y.low, geo.y.high], dim=-1)
    wy = torch.stack([geo.y.weight_low, geo.y.weight_high], dim=-1)
    xs = torch.stack([geo.x.low, geo.x.high], dim=-1)
    wx = torch.stack([geo.x.weight_low, geo.x.weight_high], dim=-1)
    base = geo.batch_index * (height * width)
    # [R, oh, Gy, 2, ow, Gx, 2]
    index = (
        base[:, None, None, None, None, None, None]
        + ys[:, :, :, :, None, None, None] * width
        + xs[:, None, None, None, :, :, :]
    )
    weight = wy[:, :, :, :, None, None, None] * wx[:, None, None, None, :, :, :]
    values = _flat_features(input).index_select(0, index.reshape(-1))
    values = values.view(*index.shape, num_channels) * weight[..., None]
    pooled = (
        values.sum(dim=(2, 3, 5, 6)) / geo.samples_per_bin[:, None, None, None]
    )  # [R, oh, ow, C]
    return pooled.permute(0, 3, 1, 2).contiguous()


def roi_align_looped(
    input: Tensor,
    rois: Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign with a Python loop over the G² sample offsets (never over RoIs).

    Same arguments and result as :func:`roi_align_dense`; peak memory is one gathered
    ``Tensor[R, oh, ow, C]`` per corner instead of all samples at once.
    """
    size = _as_pair(output_size)
    _check_inputs(input, rois, size)
    num_channels, height, width = input.shape[1:]
    if rois.shape[0] == 0:
        return input.new_zeros((0, num_channels, *size))
    geo = _roi_geometry(input, rois, size, spatial_scale, sampling_ratio, aligned)
    features = _flat_features(input)
    base = (geo.batch_index * (height * width))[:, None, None]  # [R, 1, 1]
    pooled = input.new_zeros((rois.shape[0], size[0], size[1], num_channels))
    for iy in range(geo.y.low.shape[2]):
        y_corners = (
            (geo.y.low[:, :, iy], geo.y.weight_low[:, :, iy]),
            (geo.y.high[:, :, iy], geo.y.weight_high[:, :, iy]),
        )
        for ix in range(geo.x.low.shape[2]):
            x_corners = (
                (geo.x.low[:, :, ix], geo.x.weight_low[:, :, ix]),
                (geo.x.high[:, :, ix], geo.x.weight_high[:, :, ix]),
            )
            for y_index, y_weight in y_corners:
                for x_index, x_weight in x_corners:
                    index = base + y_index[:, :, None] * width + x_index[:, None, :]  # [R, oh, ow]
                    weight = y_weight[:, :, None] * x_weight[:, None, :]
                    gathered = features.index_select(0, index.reshape(-1)).view(*index.shape, -1)
                    pooled = pooled + gathered * weight[..., None]
    pooled = pooled / geo.samples_per_bin[:, None, None, None]
    return pooled.permute(0, 3, 1, 2).contiguous()


def _window(samples: _AxisSamples) -> tuple[Tensor, int]:
    """First pixel ``Tensor[R]`` and common length of the window holding every used pixel."""
    used = (samples.weight_low + samples.weight_high) > 0  # [R, out, G]
    big = torch.iinfo(torch.long).max
    first = torch.where(used, samples.low, torch.full_like(samples.low, big)).amin(dim=(1, 2))
    last = torch.where(used, samples.high, torch.full_like(samples.high, -1)).amax(dim=(1, 2))
    has_samples = last >= 0
    first = torch.where(has_samples, first, torch.zeros_like(first))
    length = int((last - first + 1).clamp(min=1).max())
    return first, length


def _interpolation_matrix(samples: _AxisSamples, first: Tensor, length: int) -> Tensor:
    """``Tensor[R, out, length]``: weight of each window pixel in each output bin (summed
    over the bin's samples and both corners)."""
    num_rois, out_size, _ = samples.low.shape
    matrix = samples.weight_low.new_zeros((num_rois, out_size, length))
    for index, weight in ((samples.low, samples.weight_low), (samples.high, samples.weight_high)):
        position = (index - first[:, None, None]).clamp(0, length - 1)
        matrix.scatter_add_(2, position, weight)
    return matrix


def roi_align_separable(
    input: Tensor,
    rois: Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign as ``Ay @ window @ Ax^T`` per RoI (bilinear sampling is separable).

    Same arguments and result as :func:`roi_align_dense` (up to float summation order).
    Memory is O(R·Hp·Wp·C) for the largest RoI window Hp x Wp.
    """
    size = _as_pair(output_size)
    _check_inputs(input, rois, size)
    num_channels, height, width = input.shape[1:]
    if rois.shape[0] == 0:
        return input.new_zeros((0, num_channels, *size))
    geo = _roi_geometry(input, rois, size, spatial_scale, sampling_ratio, aligned)
    y_first, y_length = _window(geo.y)
    x_first, x_length = _window(geo.x)
    rows = (y_first[:, None] + torch.arange(y_length, device=input.device)).clamp(max=height - 1)
    cols = (x_first[:, None] + torch.arange(x_length, device=input.device)).clamp(max=width - 1)
    base = (geo.batch_index * (height * width))[:, None, None]
    index = base + rows[:, :, None] * width + cols[:, None, :]  # [R, Hp, Wp]
    window = _flat_features(input).index_select(0, index.reshape(-1))
    window = window.view(*index.shape, num_channels)  # [R, Hp, Wp, C]
    matrix_y = _interpolation_matrix(geo.y, y_first, y_length)  # [R, oh, Hp]
    matrix_x = _interpolation_matrix(geo.x, x_first, x_length)  # [R, ow, Wp]
    rows_pooled = torch.einsum("rpj,rjlc->rplc", matrix_y, window)  # [R, oh, Wp, C]
    pooled = torch.einsum("rplc,rql->rcpq", rows_pooled, matrix_x)  # [R, C, oh, ow]
    return (pooled / geo.samples_per_bin[:, None, None, None]).contiguous()


def window_elements(rois: Tensor, spatial_scale: float, num_channels: int) -> int:
    """Upper bound on the values :func:`roi_align_separable` gathers: R·Hp·Wp·C."""
    if rois.shape[0] == 0:
        return 0
    extent = (rois[:, 3:5] - rois[:, 1:3]).amax(dim=0) * spatial_scale
    return (
        rois.shape[0]
        * (math.ceil(float(extent[1])) + 3)
        * (math.ceil(float(extent[0])) + 3)
        * num_channels
    )


class _AxisTaps(NamedTuple):
    """The nonzero taps of each bin along one axis, ``pixel`` and ``weight`` each
    ``Tensor[R, out, K]`` (K: the most taps of any bin), and ``num_taps: Tensor[R, out]``;
    slots past ``num_taps`` hold weight 0."""

    pixel: Tensor
    weight: Tensor
    num_taps: Tensor


def _axis_taps(samples: _AxisSamples, size: int) -> _AxisTaps:
    """Merge a bin's samples into distinct pixels with summed weight, in increasing order.

    A bin's used pixels lie in a run ``[first, last]``: the samples' weights are added into
    that run, then the nonzero entries are moved to the front (a stable sort keeps them in
    pixel order). Zero-weight samples (out of range, unused grid slots) take no tap.
    """
    used_low = samples.weight_low > 0
    used_high = samples.weight_high > 0
    nowhere = torch.full_like(samples.low, size)
    first = torch.minimum(
        torch.where(used_low, samples.low, nowhere), torch.where(used_high, samples.high, nowhere)
    ).amin(dim=2)  # [R, out]; size where the bin has no sample on the map
    last = torch.maximum(
        torch.where(used_low, samples.low, -1), torch.where(used_high, samples.high, -1)
    ).amax(dim=2)
    span = max(int((last - first + 1).max()), 1) if first.numel() else 1
    first = first.clamp(max=size - 1)
    run = samples.weight_low.new_zeros((*first.shape, span))
    for index, weight in ((samples.low, samples.weight_low), (samples.high, samples.weight_high)):
        run.scatter_add_(2, (index - first[..., None]).clamp(0, span - 1), weight)
    nonzero = run > 0
    count = nonzero.sum(dim=2)
    taps = max(int(count.max()), 1) if count.numel() else 1
    slot = (~nonzero).to(torch.uint8).sort(dim=2, stable=True).indices[..., :taps]
    return _AxisTaps(first[..., None] + slot, run.gather(2, slot), count)


def _sparse_csr(crow: Tensor, col: Tensor, value: Tensor, shape: tuple[int, int]) -> Tensor:
    """A CSR tensor without torch's "beta" warning (the indices are built valid here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, value, shape, check_invariants=False)


def _bin_taps(y: _AxisTaps, x: _AxisTaps) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every bin's 2-D taps, the y taps times the x taps of the bin, in CSR order.

    Bin ``(r, i, j)`` (row ``(r·oh + i)·ow + j``) has ``y.num_taps[r, i] · x.num_taps[r, j]``
    taps, y-major. Returns the CSR row offsets ``Tensor[R·oh·ow + 1]`` and, for each of the E
    taps, its RoI and the flat positions of its y tap in ``y.pixel`` and of its x tap in
    ``x.pixel`` (each ``Tensor[E]``).
    """
    num_rois, out_h, y_slots = y.pixel.shape
    out_w, x_slots = x.pixel.shape[1:]
    bins_per_roi = out_h * out_w
    bins = torch.arange(num_rois * bins_per_roi, device=y.pixel.device)
    y_row = torch.div(bins, out_w, rounding_mode="floor")  # r·oh + i
    x_row = torch.div(bins, bins_per_roi, rounding_mode="floor") * out_w + bins % out_w  # r·ow + j
    x_per_bin = x.num_taps.reshape(-1)[x_row]
    taps_per_bin = y.num_taps.reshape(-1)[y_row] * x_per_bin
    crow = taps_per_bin.new_zeros(bins.numel() + 1)
    torch.cumsum(taps_per_bin, 0, out=crow[1:])
    num_taps = int(crow[-1])
    tap_bin = torch.repeat_interleave(bins, taps_per_bin, output_size=num_taps)  # [E]
    rank = torch.arange(num_taps, device=bins.device) - crow[:-1][tap_bin]  # within the bin
    tap_x_per_bin = x_per_bin[tap_bin]
    y_tap = torch.div(rank, tap_x_per_bin, rounding_mode="floor")
    x_tap = rank - y_tap * tap_x_per_bin
    roi = torch.div(tap_bin, bins_per_roi, rounding_mode="floor")
    return crow, roi, y_row[tap_bin] * y_slots + y_tap, x_row[tap_bin] * x_slots + x_tap


def roi_align_matrix(
    input: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """RoIAlign as a sparse CSR matrix ``Tensor[R·oh·ow, B·H·W]`` (``input`` gives only the
    shape, dtype and device).

    Row ``(r·oh + i)·ow + j`` holds the weight of every map pixel ``(b·H + y)·W + x`` in bin
    ``(i, j)`` of RoI r: the product of its y and x tap weights divided by the bin's sample
    count. Rows are in output order, each row's columns increase, and only nonzero weights
    are stored.
    """
    batch, _, height, width = input.shape
    geo = _roi_geometry(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
    y = _axis_taps(geo.y, height)
    x = _axis_taps(geo.x, width)
    crow, roi, y_index, x_index = _bin_taps(y, x)
    image_row = geo.batch_index[roi] * height + y.pixel.reshape(-1)[y_index]
    column = image_row * width + x.pixel.reshape(-1)[x_index]
    weight = y.weight.reshape(-1)[y_index] * x.weight.reshape(-1)[x_index]
    shape = (crow.numel() - 1, batch * height * width)
    return _sparse_csr(crow, column, weight / geo.samples_per_bin[roi], shape)


class _SparseRows(torch.autograd.Function):
    """``matrix @ input`` as ``[rows, C]`` for a fixed sparse ``matrix [rows, B·H·W]`` and
    ``input: Tensor[B, C, H, W]``; the gradient reaches ``input`` only (RoIs get none, as in
    mmcv and torchvision)."""

    @staticmethod
    def forward(ctx: Any, input: Tensor, matrix: Tensor) -> Tensor:
        ctx.matrix = matrix
        ctx.input_shape = input.shape
        return torch.sparse.mm(matrix, _flat_features(input))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None
        batch, channels, height, width = ctx.input_shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            transposed = ctx.matrix.t().to_sparse_csr()
        grad_flat = torch.sparse.mm(transposed, grad.contiguous())  # [B·H·W, C]
        grad_input = grad_flat.view(batch, height, width, channels).permute(0, 3, 1, 2)
        return grad_input.contiguous(), None


def roi_align_sparse(
    input: Tensor,
    rois: Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign as one sparse-dense product (see :func:`roi_align_matrix`).

    Same arguments and result as :func:`roi_align_dense` (up to float summation order).
    Memory is O(E + R·oh·ow·C) for E nonzero taps (about the RoIs' summed areas on their
    map), never padded to the largest RoI.
    """
    size = _as_pair(output_size)
    _check_inputs(input, rois, size)
    num_channels = input.shape[1]
    if rois.shape[0] == 0:
        return input.new_zeros((0, num_channels, *size))
    matrix = roi_align_matrix(input.detach(), rois, size, spatial_scale, sampling_ratio, aligned)
    pooled = _SparseRows.apply(input, matrix)  # [R·oh·ow, C]
    return (
        pooled.view(rois.shape[0], size[0], size[1], num_channels).permute(0, 3, 1, 2).contiguous()
    )
