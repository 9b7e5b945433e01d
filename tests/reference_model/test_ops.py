"""Ops against hand-computed values and slow, obviously-correct loops."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from reference_model.ops import batched_nms, box_iou, box_overlaps, nms, roi_align  # noqa: E402
from reference_model.ops.dispatch import NMS_IMPLEMENTATIONS, ROI_ALIGN_IMPLEMENTATIONS  # noqa: E402


def _random_boxes(n: int, generator: torch.Generator, size: float = 100.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * size
    wh = torch.rand(n, 2, generator=generator) * size / 2 + 1
    return torch.cat([xy, xy + wh], dim=1)


def _iou_python(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _greedy_nms_python(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    """Brute force: visit by (score desc, index asc), keep unless IoU > thr with a kept box."""
    rows, values = boxes.tolist(), scores.tolist()
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    kept: list[int] = []
    for i in order:
        if all(_iou_python(rows[i], rows[j]) <= thr for j in kept):
            kept.append(i)
    return kept


def test_box_iou_hand_computed() -> None:
    boxes1 = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 20.0, 10.0]])
    boxes2 = torch.tensor(
        [[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]]
    )
    expected = torch.tensor([[50 / 150, 0.0, 1.0], [100 / 200, 0.0, 0.5]])
    torch.testing.assert_close(box_iou(boxes1, boxes2), expected)
    torch.testing.assert_close(box_overlaps(boxes1, boxes2), expected)
    # IoF divides by the area of the first argument only.
    iof = box_overlaps(boxes1, boxes2, mode="iof")
    torch.testing.assert_close(iof, torch.tensor([[0.5, 0.0, 1.0], [0.5, 0.0, 0.5]]))


def test_box_overlaps_degenerate_boxes_give_zero_not_nan() -> None:
    point = torch.tensor([[5.0, 5.0, 5.0, 5.0]])
    assert box_overlaps(point, point).item() == 0.0
    assert math.isnan(box_iou(point, point).item())


@pytest.mark.parametrize("implementation", sorted(NMS_IMPLEMENTATIONS))
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_brute_force_greedy_with_ties(implementation: str, thr: float) -> None:
    generator = torch.Generator().manual_seed(int(thr * 10))
    boxes = _random_boxes(300, generator)
    # Scores quantised to 20 levels: many exact ties, resolved by index.
    scores = torch.randint(0, 20, (300,), generator=generator).float() / 20
    boxes[10] = boxes[3]  # identical boxes with identical scores
    scores[10] = scores[3]
    kept = nms(boxes, scores, thr, implementation=implementation)
    assert kept.tolist() == _greedy_nms_python(boxes, scores, thr)


def test_nms_chunked_equals_reference_across_chunk_boundaries() -> None:
    from reference_model.ops.nms import nms_chunked

    generator = torch.Generator().manual_seed(1)
    boxes = _random_boxes(700, generator, size=60.0)  # dense: long suppression chains
    scores = torch.rand(700, generator=generator)
    expected = NMS_IMPLEMENTATIONS["reference"](boxes, scores, 0.5)
    for chunk_size in (3, 64, 1000):
        assert torch.equal(nms_chunked(boxes, scores, 0.5, chunk_size=chunk_size), expected)


def test_nms_threshold_is_strict_and_empty_input_works() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0]])  # IoU exactly 1/3
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 1 / 3).tolist() == [0, 1]
    assert nms(boxes, scores, 0.33).tolist() == [0]
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0
    assert batched_nms(boxes[:0], scores[:0], scores[:0].long(), 0.5).numel() == 0


def test_batched_nms_suppresses_only_within_groups() -> None:
    generator = torch.Generator().manual_seed(2)
    boxes = _random_boxes(200, generator)
    scores = torch.rand(200, generator=generator)
    idxs = torch.randint(0, 4, (200,), generator=generator)
    kept = batched_nms(boxes, scores, idxs, 0.5)
    expected = []
    for group in range(4):
        members = torch.nonzero(idxs == group).squeeze(1)
        expected += members[_greedy_nms_python(boxes[members], scores[members], 0.5)].tolist()
    assert sorted(kept.tolist()) == sorted(expected)
    assert torch.all(scores[kept][:-1] >= scores[kept][1:])  # by decreasing score


def test_batched_nms_split_path_matches_offset_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from reference_model.ops import dispatch

    generator = torch.Generator().manual_seed(3)
    boxes = _random_boxes(300, generator)
    scores = torch.rand(300, generator=generator)
    idxs = torch.randint(0, 3, (300,), generator=generator)
    monkeypatch.setattr(dispatch, "BATCHED_NMS_GROUP_MIN_BOXES", 10**9)  # one shifted NMS
    offset_result = batched_nms(boxes, scores, idxs, 0.6)
    monkeypatch.setattr(dispatch, "BATCHED_NMS_SPLIT_THRESHOLD", 10)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.6), offset_result)


@pytest.mark.parametrize("thr", [0.0, 0.3, 0.7])
def test_batched_nms_per_group_on_shifted_boxes_equals_one_shifted_nms(
    monkeypatch: pytest.MonkeyPatch, thr: float
) -> None:
    from reference_model.ops import dispatch

    generator = torch.Generator().manual_seed(4)
    boxes = _random_boxes(600, generator)
    boxes[300:400] = boxes[:100]  # the same boxes in other groups must not suppress each other
    scores = torch.randint(0, 50, (600,), generator=generator).float()  # many ties
    idxs = torch.randint(0, 5, (600,), generator=generator)
    monkeypatch.setattr(dispatch, "BATCHED_NMS_GROUP_MIN_BOXES", 10**9)
    one_nms = batched_nms(boxes, scores, idxs, thr)
    monkeypatch.setattr(dispatch, "BATCHED_NMS_GROUP_MIN_BOXES", 1)
    monkeypatch.setattr(dispatch, "BATCHED_NMS_MIN_BOXES_PER_GROUP", 0)
    assert torch.equal(batched_nms(boxes, scores, idxs, thr), one_nms)
    # A negative coordinate could let shifted groups touch: one NMS over all boxes then.
    shifted_left = boxes - 20.0
    monkeypatch.setattr(dispatch, "nms", _fail_if_called_per_group(dispatch.nms, 600))
    assert batched_nms(shifted_left, scores, idxs, thr).numel() > 0


def _fail_if_called_per_group(nms_fn, num_boxes: int):
    def checked(boxes: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        assert boxes.shape[0] == num_boxes, "batched_nms split groups of boxes with x < 0"
        return nms_fn(boxes, *args, **kwargs)

    return checked


# ----------------------------------------------------------------------------- RoIAlign


def _bilinear_python(feature: list[list[float]], y: float, x: float) -> float:
    """torchvision/mmcv bilinear_interpolate, transcribed as scalar Python."""
    height, width = len(feature), len(feature[0])
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (
        hy * hx * feature[y_low][x_low]
        + hy * lx * feature[y_low][x_high]
        + ly * hx * feature[y_high][x_low]
        + ly * lx * feature[y_high][x_high]
    )


def _roi_align_python(
    features: torch.Tensor,
    rois: torch.Tensor,
    out: tuple[int, int],
    scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """Slow direct loop over RoIs, channels, bins and samples."""
    result = torch.zeros(rois.shape[0], features.shape[1], *out, dtype=torch.float64)
    offset = 0.5 if aligned else 0.0
    for r, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        start_x, start_y = x1 * scale - offset, y1 * scale - offset
        roi_w, roi_h = x2 * scale - offset - start_x, y2 * scale - offset - start_y
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out[0], roi_w / out[1]
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out[0])
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out[1])
        count = max(grid_h * grid_w, 1)
        for c in range(features.shape[1]):
            fmap = features[int(b), c].tolist()
            for ph in range(out[0]):
                for pw in range(out[1]):
                    total = 0.0
                    for iy in range(grid_h):
                        y = start_y + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                        for ix in range(grid_w):
                            x = start_x + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                            total += _bilinear_python(fmap, y, x)
                    result[r, c, ph, pw] = total / count
    return result.float()


def test_roi_align_hand_computed_bilinear_values() -> None:
    # f(y, x) = 10 y + x is reproduced exactly by bilinear interpolation inside the map.
    height, width = 6, 8
    ys, xs = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    feature = (10 * ys + xs)[None, None]
    # aligned, one sample per bin (sampling_ratio=1): bin centres of a 2x2 grid over the
    # RoI [1, 5] x [1, 3] shifted by -0.5: x centres 1.5, 3.5; y centres 1.0, 2.0.
    rois = torch.tensor([[0.0, 1.0, 1.0, 5.0, 3.0]])
    out = roi_align(feature, rois, (2, 2), 1.0, 1, True)
    expected = torch.tensor(
        [[[[10 * 1.0 + 1.5, 10 * 1.0 + 3.5], [10 * 2.0 + 1.5, 10 * 2.0 + 3.5]]]]
    )
    torch.testing.assert_close(out, expected)
    # Not aligned, spatial_scale 0.5: RoI [2, 10] x [2, 6] -> map [1, 5] x [1, 3].
    out = roi_align(feature, torch.tensor([[0.0, 2.0, 2.0, 10.0, 6.0]]), (1, 1), 0.5, 2, False)
    # samples at y in {1.5, 2.5}, x in {2, 4}: mean = 10*2 + 3.
    torch.testing.assert_close(out, torch.tensor([[[[23.0]]]]))
    # Edge rules: y beyond the last row snaps to it; samples past H contribute zero.
    edge = roi_align(feature, torch.tensor([[0.0, 0.0, 5.5, 1.0, 6.5]]), (1, 1), 1.0, 1, False)
    torch.testing.assert_close(edge, torch.tensor([[[[10 * 5.0 + 0.5]]]]))
    outside = roi_align(feature, torch.tensor([[0.0, 0.0, 7.5, 1.0, 8.5]]), (1, 1), 1.0, 1, False)
    assert outside.item() == 0.0


@pytest.mark.parametrize("implementation", sorted(ROI_ALIGN_IMPLEMENTATIONS))
@pytest.mark.parametrize(
    ("sampling_ratio", "aligned"), [(0, True), (2, False), (-1, False), (3, True)]
)
def test_roi_align_matches_slow_loop(
    implementation: str, sampling_ratio: int, aligned: bool
) -> None:
    generator = torch.Generator().manual_seed(sampling_ratio + 10 * aligned)
    features = torch.randn(2, 3, 9, 11, generator=generator)
    xy = torch.rand(12, 2, generator=generator) * 60 - 10  # some RoIs hang off the map
    wh = torch.rand(12, 2, generator=generator) * 30
    rois = torch.cat([torch.randint(0, 2, (12, 1), generator=generator).float(), xy, xy + wh], 1)
    rois[0, 1:] = torch.tensor([8.0, 8.0, 8.0, 8.0])  # zero-size RoI
    expected = _roi_align_python(features, rois, (3, 2), 0.25, sampling_ratio, aligned)
    result = roi_align(
        features, rois, (3, 2), 0.25, sampling_ratio, aligned, implementation=implementation
    )
    torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


def test_roi_align_implementations_agree_with_gradients() -> None:
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(2, 4, 20, 24, generator=generator)
    xy = torch.rand(40, 2, generator=generator) * 70
    rois = torch.cat(
        [
            torch.randint(0, 2, (40, 1), generator=generator).float(),
            xy,
            xy + torch.rand(40, 2, generator=generator) * 40 + 1,
        ],
        1,
    )
    grads = {}
    outputs = {}
    for name in sorted(ROI_ALIGN_IMPLEMENTATIONS):
        x = features.clone().requires_grad_(True)
        outputs[name] = roi_align(x, rois, 7, 0.25, 0, True, implementation=name)
        (outputs[name] * torch.arange(49.0).view(7, 7)).sum().backward()
        grads[name] = x.grad
    for name in outputs:
        torch.testing.assert_close(outputs[name], outputs["dense"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(grads[name], grads["dense"], rtol=1e-4, atol=1e-4)
    assert roi_align(features, rois[:0], 7, 0.25, 0, True).shape == (0, 4, 7, 7)


def _rois_of_every_kind(generator: torch.Generator, num: int) -> torch.Tensor:
    """RoIs on a 2-image 20 x 24 map at scale 0.25: inside, off the map, zero-size, long."""
    xy = torch.rand(num, 2, generator=generator, dtype=torch.float64) * 110 - 15
    wh = torch.rand(num, 2, generator=generator, dtype=torch.float64) * 60
    rois = torch.cat([torch.randint(0, 2, (num, 1), generator=generator).double(), xy, xy + wh], 1)
    rois[0, 1:] = torch.tensor([8.0, 8.0, 8.0, 8.0])  # zero-size
    rois[1, 1:] = torch.tensor([2.0, 30.0, 90.0, 33.0])  # 22 x 0.75 map pixels
    rois[2, 1:] = torch.tensor([40.0, -30.0, 42.0, 70.0])  # tall, hangs off the top
    rois[3, 1:] = torch.tensor([120.0, 90.0, 160.0, 130.0])  # entirely off the map
    return rois


def _dense_matrix(rois: torch.Tensor, size: tuple[int, int], **kwargs: float) -> torch.Tensor:
    """``Tensor[R·oh·ow, B·H·W]`` from roi_align_dense on one-hot channels (channel k is
    pixel k of the flattened ``[B, H, W]`` map), so entry (bin, k) is pixel k's weight."""
    from reference_model.ops.roi_align import roi_align_dense

    batch, height, width = 2, 20, 24
    pixels = batch * height * width
    one_hot = torch.eye(pixels, dtype=torch.float64).view(pixels, batch, height, width)
    pooled = roi_align_dense(one_hot.permute(1, 0, 2, 3), rois, size, **kwargs)  # [R, BHW, oh, ow]
    return pooled.permute(0, 2, 3, 1).reshape(-1, pixels)


@pytest.mark.parametrize(
    ("sampling_ratio", "aligned"), [(0, True), (0, False), (2, True), (1, False), (5, True)]
)
def test_roi_align_matrix_equals_dense_weights_and_stores_no_zeros(
    sampling_ratio: int, aligned: bool
) -> None:
    from reference_model.ops.roi_align import roi_align_matrix

    generator = torch.Generator().manual_seed(7 + sampling_ratio)
    rois = _rois_of_every_kind(generator, 30)
    kwargs = {"spatial_scale": 0.25, "sampling_ratio": sampling_ratio, "aligned": aligned}
    expected = _dense_matrix(rois, (7, 5), **kwargs)
    matrix = roi_align_matrix(
        torch.zeros(2, 1, 20, 24, dtype=torch.float64), rois, (7, 5), **kwargs
    )
    torch.testing.assert_close(matrix.to_dense(), expected, rtol=0, atol=1e-13)
    assert bool((matrix.values() > 0).all())  # only the taps that carry weight
    assert matrix.values().numel() == int((expected != 0).sum())
    columns = matrix.col_indices()
    row_of = torch.repeat_interleave(
        torch.arange(matrix.shape[0]), matrix.crow_indices().diff(), output_size=columns.numel()
    )
    same_row = row_of[1:] == row_of[:-1]
    assert bool((columns[1:][same_row] > columns[:-1][same_row]).all())  # CSR order


def test_roi_align_matrix_hand_computed() -> None:
    from reference_model.ops.roi_align import roi_align_matrix

    feature = torch.zeros(1, 1, 3, 3)
    # Not aligned, one bin, one sample at (0.5, 0.5): the four pixels around it, 1/4 each.
    rois = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0], [0.0, 0.5, 0.5, 1.5, 1.5]])
    matrix = roi_align_matrix(feature, rois, (1, 1), 1.0, 0, False)
    assert matrix.to_dense().tolist() == [
        [0.25, 0.25, 0.0, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # sample exactly on pixel (1, 1)
    ]
    assert matrix.crow_indices().tolist() == [0, 4, 5]


@pytest.mark.parametrize(("sampling_ratio", "aligned"), [(0, True), (2, False), (3, True)])
def test_roi_align_sparse_forward_and_gradient_equal_dense(
    sampling_ratio: int, aligned: bool
) -> None:
    from reference_model.ops.roi_align import roi_align_dense, roi_align_sparse

    generator = torch.Generator().manual_seed(8)
    features = torch.randn(2, 3, 20, 24, generator=generator, dtype=torch.float64)
    rois = _rois_of_every_kind(generator, 40)
    weights = torch.randn(40, 3, 7, 7, generator=generator, dtype=torch.float64)
    results = {}
    for fn in (roi_align_dense, roi_align_sparse):
        x = features.clone().requires_grad_(True)
        out = fn(x, rois, 7, 0.25, sampling_ratio, aligned)
        (out * weights).sum().backward()
        results[fn.__name__] = (out.detach(), x.grad)
    out_dense, grad_dense = results["roi_align_dense"]
    out_sparse, grad_sparse = results["roi_align_sparse"]
    torch.testing.assert_close(out_sparse, out_dense, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_sparse, grad_dense, rtol=0, atol=1e-12)
    small = features[:, :1, :6, :7].clone().requires_grad_(True)
    small_rois = torch.tensor([[0.0, 1.0, 2.0, 20.0, 18.0], [1.0, -3.0, 0.0, 9.0, 30.0]]).double()
    assert torch.autograd.gradcheck(
        lambda x: roi_align_sparse(x, small_rois, 3, 0.25, sampling_ratio, aligned), (small,)
    )


def test_roi_align_sparse_gives_rois_no_gradient_and_dispatches_on_cpu() -> None:
    from reference_model.ops.roi_align import roi_align_sparse

    generator = torch.Generator().manual_seed(9)
    features = torch.randn(2, 4, 20, 24, generator=generator)
    rois = _rois_of_every_kind(generator, 12).float().requires_grad_(True)
    out = roi_align_sparse(features.requires_grad_(True), rois, 7, 0.25, 0, True)
    out.sum().backward()
    assert rois.grad is None and features.grad is not None
    assert torch.equal(roi_align(features, rois, 7, 0.25, 0, True), out)  # CPU default


def test_dispatcher_rejects_unknown_implementation() -> None:
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="chunked"):
        nms(boxes, torch.ones(1), 0.5, implementation="triton")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ops_cpu_cuda_agree() -> None:
    generator = torch.Generator().manual_seed(6)
    boxes = _random_boxes(2000, generator)
    scores = torch.rand(2000, generator=generator)
    idxs = torch.randint(0, 5, (2000,), generator=generator)
    assert torch.equal(nms(boxes, scores, 0.5), nms(boxes.cuda(), scores.cuda(), 0.5).cpu())
    assert torch.equal(
        batched_nms(boxes, scores, idxs, 0.5),
        batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5).cpu(),
    )
    features = torch.randn(2, 8, 40, 48, generator=generator)
    rois = torch.cat([idxs[:100, None].float() % 2, boxes[:100]], 1)
    for name in sorted(ROI_ALIGN_IMPLEMENTATIONS):
        cpu = roi_align(features, rois, 7, 0.25, 0, True, implementation=name)
        gpu = roi_align(features.cuda(), rois.cuda(), 7, 0.25, 0, True, implementation=name)
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)
