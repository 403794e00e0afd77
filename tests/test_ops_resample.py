"""soft_resize semantics: ignore, errors, sparse/dense, top-K, crop windows, dtypes, batching, backends."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from softlabel_ops import (
    MODES,
    NEAREST_GRIDS,
    NEAREST_MODES,
    DenseSoftLabel,
    SparseSoftLabel,
    hard_resize,
    nearest_grid,
    nearest_of,
    resize_image,
    soft_resize,
)
from softlabel_ops import native as native_mod

needs_native = pytest.mark.skipif(not native_mod.available(),
                                  reason=f"no compiled kernel: {native_mod.error()}")


@st.composite
def labels(draw, max_side=20, batch=False):
    c = draw(st.integers(1, 7))
    n = draw(st.integers(1, 3)) if batch else None
    hh, ww = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    shape = (hh, ww) if n is None else (n, hh, ww)
    # blocky labels, like real maps, plus a share of ignore pixels
    block = int(rng.integers(1, 5))
    lab = rng.integers(0, c, (shape[:-2] + (-(-hh // block), -(-ww // block))))
    lab = np.repeat(np.repeat(lab, block, -2), block, -1)[..., :hh, :ww]
    lab[rng.random(shape) < draw(st.sampled_from([0.0, 0.1, 0.5]))] = 255
    size = (draw(st.integers(1, 2 * max_side)), draw(st.integers(1, 2 * max_side)))
    mode = draw(st.sampled_from(MODES))
    return lab.astype(np.uint8), c, size, mode


WINDOWS = st.tuples(st.integers(-5, 30), st.integers(-5, 30), st.integers(1, 25), st.integers(1, 25))


def _dense(x):
    return x.to_dense() if isinstance(x, SparseSoftLabel) else x


@settings(max_examples=150, deadline=None)
@given(prob=labels(batch=True), sparse=st.booleans(), clamp=st.booleans(),
       top_k=st.sampled_from([None, 1, 2]), crop=st.one_of(st.none(), WINDOWS))
def test_compiled_kernel_equals_torch_path(prob, sparse, clamp, top_k, crop):
    if not native_mod.available():
        return
    lab, c, size, mode = prob
    kw = dict(size=size, mode=mode, crop=crop, sparse=sparse, clamp=clamp, top_k=top_k)
    a = soft_resize(lab, c, backend="torch", **kw)
    b = soft_resize(lab, c, backend="native", **kw)
    torch.testing.assert_close(a.valid, b.valid, atol=1e-6, rtol=0)
    if sparse:
        assert a.k == b.k
    torch.testing.assert_close(_dense(a).probs, _dense(b).probs, atol=1e-6, rtol=0)


@settings(max_examples=100, deadline=None)
@given(prob=labels())
def test_distribution_invariants_and_sparse_equals_dense(prob):
    lab, c, size, mode = prob
    d = soft_resize(lab, c, size=size, mode=mode, clamp=True)
    s = soft_resize(lab, c, size=size, mode=mode, clamp=True, sparse=True)
    assert d.probs.shape == (c,) + size and d.valid.shape == size
    assert float(d.probs.min()) >= 0 and float(d.valid.min()) >= 0 and float(d.valid.max()) <= 1 + 1e-6
    sums = d.probs.sum(0)
    torch.testing.assert_close(sums[d.valid > 0], torch.ones_like(sums[d.valid > 0]), atol=1e-5, rtol=0)
    assert float(sums[d.valid == 0].abs().sum()) == 0
    torch.testing.assert_close(s.to_dense().probs, d.probs, atol=1e-6, rtol=0)
    torch.testing.assert_close(s.valid, d.valid)
    # K is what the footprints actually hold, and entries are sorted by weight
    nnz = (d.probs > 0).sum(0)
    assert s.k == max(1, int(nnz.max()))
    assert bool((s.weights[:-1] >= s.weights[1:]).all())
    assert int(s.indices[s.weights == 0].abs().sum()) == 0


@settings(max_examples=60, deadline=None)
@given(prob=labels(), top_k=st.integers(1, 3))
def test_top_k_keeps_largest_and_renormalises(prob, top_k):
    lab, c, size, mode = prob
    full = soft_resize(lab, c, size=size, mode=mode, clamp=True, sparse=True)
    cut = soft_resize(lab, c, size=size, mode=mode, clamp=True, sparse=True, top_k=top_k)
    assert cut.k == min(full.k, top_k)
    torch.testing.assert_close(cut.indices[cut.weights > 0], full.indices[: cut.k][cut.weights > 0])
    kept = full.weights[: cut.k]
    lost = (full.weights[cut.k:] > 0).any(0) if full.k > cut.k else torch.zeros(size, dtype=torch.bool)
    expect = torch.where(lost, kept / kept.sum(0).clamp_min(1e-30), kept)
    torch.testing.assert_close(cut.weights, expect, atol=1e-6, rtol=0)
    torch.testing.assert_close(cut.valid, full.valid)


@settings(max_examples=80, deadline=None)
@given(prob=labels(batch=True), sparse=st.booleans(),
       crop=st.tuples(st.integers(-6, 35), st.integers(-6, 35), st.integers(1, 30), st.integers(1, 30)))
def test_crop_equals_resize_then_crop(prob, sparse, crop):
    lab, c, size, mode = prob
    whole = soft_resize(lab, c, size=size, mode=mode, sparse=sparse)
    part = soft_resize(lab, c, size=size, mode=mode, sparse=sparse, crop=crop)
    ref = _dense(whole).crop(*crop)
    torch.testing.assert_close(_dense(part).probs, ref.probs)
    torch.testing.assert_close(part.valid, ref.valid)
    hard = hard_resize(lab, size, mode, crop=crop)
    full = hard_resize(lab, size, mode)
    top, left, h, w = crop
    pad = torch.full(full.shape[:-2] + (h, w), 255, dtype=torch.int64)
    y0, y1, x0, x1 = max(top, 0), min(top + h, size[0]), max(left, 0), min(left + w, size[1])
    if y1 > y0 and x1 > x0:
        pad[..., y0 - top: y1 - top, x0 - left: x1 - left] = full[..., y0:y1, x0:x1]
    torch.testing.assert_close(hard, pad)


def test_ignore_is_never_a_class_and_sets_valid_mass():
    lab = np.array([[0, 255], [255, 255]], np.uint8)
    out = soft_resize(lab, 3, size=(1, 1), mode="torch:area")
    torch.testing.assert_close(out.probs[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert float(out.valid) == pytest.approx(0.25)
    allign = soft_resize(np.full((4, 4), 255, np.uint8), 3, size=(2, 2), mode="torch:bilinear")
    assert float(allign.probs.abs().sum()) == 0 and float(allign.valid.abs().sum()) == 0
    custom = soft_resize(np.array([[0, 7]]), 2, size=(1, 1), mode="torch:area", ignore_value=7)
    assert float(custom.valid) == pytest.approx(0.5)


@pytest.mark.parametrize("backend", ["torch", pytest.param("native", marks=needs_native)])
def test_out_of_range_values_are_named(backend):
    lab = np.zeros((6, 6), np.int32)
    lab[0, 0], lab[1, 1], lab[2, 2] = 19, 42, 255
    with pytest.raises(ValueError, match=r"\[19, 42\].*ignore value 255"):
        soft_resize(lab, 19, size=(3, 3), backend=backend)
    lab[0, 0], lab[1, 1] = -3, 0
    with pytest.raises(ValueError, match=r"\[-3\]"):
        soft_resize(lab, 19, size=(3, 3), backend=backend)
    with pytest.raises(ValueError, match="top_k"):
        soft_resize(np.zeros((2, 2), np.uint8), 2, size=(1, 1), top_k=0)
    with pytest.raises(TypeError):
        soft_resize(np.zeros((2, 2), np.float32), 2, size=(1, 1))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64])
def test_dtypes_containers_and_batches(dtype):
    rng = np.random.default_rng(3)
    lab = rng.integers(0, 5, (3, 17, 21)).astype(dtype)
    lab[:, :2] = 255 if dtype != np.int8 else -1
    ref = soft_resize(lab[1].astype(np.int64), 5, size=(7, 9), mode="cv2:area")
    for x in (lab, torch.from_numpy(lab)):
        batch = soft_resize(x, 5, size=(7, 9), mode="cv2:area")
        assert batch.probs.shape == (3, 5, 7, 9) and batch.probs.device.type == "cpu"
        torch.testing.assert_close(batch.probs[1], ref.probs)
        one = soft_resize(x[1], 5, size=(7, 9), mode="cv2:area", sparse=True)
        assert one.indices.dtype == torch.int64 and one.weights.dtype == torch.float32
        torch.testing.assert_close(one.to_dense().probs, ref.probs)


@pytest.mark.parametrize("mode", ["torch:bicubic", "cv2:cubic", "pil:bicubic"])
def test_negative_lobes_exact_and_clamped(mode):
    lab = np.zeros((8, 8), np.uint8)
    lab[:, 4:] = 1
    exact = soft_resize(lab, 2, size=(16, 16), mode=mode)
    assert float(exact.probs.min()) < 0 < float(exact.probs.max()) - 1  # over/undershoot near the edge
    torch.testing.assert_close(exact.probs.sum(0), torch.ones(16, 16))
    clamped = soft_resize(lab, 2, size=(16, 16), mode=mode, clamp=True)
    assert float(clamped.probs.min()) >= 0 and float(clamped.probs.max()) <= 1
    torch.testing.assert_close(clamped.probs.sum(0), torch.ones(16, 16))
    pos = exact.probs.clamp(min=0)
    torch.testing.assert_close(clamped.probs, pos / pos.sum(0))


@pytest.mark.parametrize("mode", NEAREST_MODES + ("torch:bilinear", "cv2:area", "pil:box"))
@pytest.mark.parametrize("grid", NEAREST_GRIDS)
def test_hard_resize_matches_nearest_soft_labels(mode, grid):
    lab = np.random.default_rng(4).integers(0, 4, (13, 29)).astype(np.uint8)
    lab[3] = 255
    hard = hard_resize(lab, (9, 40), mode, grid=grid)
    soft = soft_resize(lab, 4, size=(9, 40), mode=nearest_of(mode, grid))
    torch.testing.assert_close(soft.argmax(min_valid=0.5), hard)


@pytest.mark.parametrize("image_mode", ["torch:bilinear", "torch:area", "cv2:linear", "cv2:area",
                                        "pil:bilinear", "pil:box"])
def test_centred_nearest_samples_the_image_filters_cell_centres(image_mode):
    """At 1/8 the centred grid picks pixel 8k + 4 (the smooth filter's centre), top-left picks 8k."""
    ramp = np.tile(np.arange(64, dtype=np.uint8)[None, :], (16, 1))
    centred = hard_resize(ramp, (2, 8), image_mode)[0]
    topleft = hard_resize(ramp, (2, 8), image_mode, grid="top-left")[0]
    torch.testing.assert_close(centred, torch.arange(8) * 8 + 4)
    torch.testing.assert_close(topleft, torch.arange(8) * 8)
    # the smooth filter's weights on the ramp are centred on the same pixel, up to half a pixel (inner
    # cells: Pillow's wide kernels are cut at the border)
    img = resize_image(np.repeat(ramp[..., None], 3, -1).astype(np.float32), (2, 8), image_mode)[0, :, 0]
    assert np.abs(img - (np.arange(8) * 8 + 4))[1:-1].max() <= 0.5
    assert nearest_grid(nearest_of(image_mode)) == "centred"
    assert nearest_grid(nearest_of(image_mode, "top-left")) == "top-left"


def test_nearest_of_rejects_unknown_grid():
    with pytest.raises(ValueError, match="grid"):
        nearest_of("torch:bilinear", "corner")


def test_resize_image_pairs_with_label_geometry():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    for mode in MODES:
        out = resize_image(img, (10, 12), mode)
        assert out.shape == (10, 12, 3) and out.dtype == np.uint8
        t = resize_image(torch.from_numpy(img).permute(2, 0, 1), (10, 12), mode)
        assert t.shape == (3, 10, 12) and t.dtype == torch.uint8
    f = rng.random((20, 30)).astype(np.float32)
    assert resize_image(f, (7, 9), "pil:box").shape == (7, 9)


def test_returns_container_types_on_label_device():
    lab = torch.zeros(4, 4, dtype=torch.int64)
    assert isinstance(soft_resize(lab, 2, size=(2, 2)), DenseSoftLabel)
    assert isinstance(soft_resize(lab, 2, size=(2, 2), sparse=True), SparseSoftLabel)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_labels_match_cpu():
    lab = torch.randint(0, 6, (2, 33, 47))
    for mode in ("torch:bilinear", "torch:area", "cv2:area", "pil:bicubic"):
        a = soft_resize(lab, 6, size=(11, 13), mode=mode)
        b = soft_resize(lab.cuda(), 6, size=(11, 13), mode=mode)
        assert b.probs.device.type == "cuda"
        torch.testing.assert_close(b.probs.cpu(), a.probs, atol=1e-6, rtol=0)


def test_ignore_value_none_and_backend_errors():
    lab = np.array([[0, 1], [1, 1]], np.uint8)
    out = soft_resize(lab, 2, size=(1, 1), mode="torch:area", ignore_value=None)
    assert float(out.valid) == 1.0 and float(out.probs[1]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"\[255\]"):
        soft_resize(np.array([[0, 255]], np.uint8), 2, size=(1, 1), ignore_value=None)
    with pytest.raises(ValueError, match="backend"):
        soft_resize(lab, 2, size=(1, 1), backend="cuda")


@pytest.mark.skipif(native_mod.compiler() is None, reason="no C compiler")
def test_kernel_source_compiles_without_warnings(tmp_path):
    """soft_resize.c ships with the package and builds without warnings under the loader's -Wall -Wextra."""
    assert "-Wall" in native_mod._FLAGS and "-Wextra" in native_mod._FLAGS
    out = tmp_path / "kernel.so"
    assert native_mod.compile_kernel(str(out), native_mod.compiler(), native_mod.source()) == ""
    assert out.is_file()


def test_kernel_builds_into_a_fresh_cache_and_falls_back(tmp_path, monkeypatch):
    """A clean cache folder gets a working build; a disabled kernel falls back to the torch path."""
    import time

    lab = np.random.default_rng(6).integers(0, 4, (2, 19, 23)).astype(np.uint8)
    ref = soft_resize(lab, 4, size=(7, 9), mode="pil:bilinear", backend="torch")
    saved = native_mod._lib, native_mod._error
    try:
        monkeypatch.setenv("SOFTLABEL_OPS_CACHE", str(tmp_path))
        native_mod._lib, native_mod._error = None, None
        t0 = time.perf_counter()
        ok = native_mod.available()
        build_s = time.perf_counter() - t0
        if ok:
            assert list(tmp_path.glob("soft_resize_*.so")) and build_s < 60
            torch.testing.assert_close(soft_resize(lab, 4, size=(7, 9), mode="pil:bilinear").probs, ref.probs)
        monkeypatch.setenv("SOFTLABEL_OPS_NATIVE", "0")
        native_mod._lib, native_mod._error = None, None
        assert not native_mod.available() and "SOFTLABEL_OPS_NATIVE" in native_mod.error()
        torch.testing.assert_close(soft_resize(lab, 4, size=(7, 9), mode="pil:bilinear").probs, ref.probs)
        with pytest.raises(RuntimeError, match="unavailable"):
            soft_resize(lab, 4, size=(7, 9), backend="native")
    finally:
        native_mod._lib, native_mod._error = saved
