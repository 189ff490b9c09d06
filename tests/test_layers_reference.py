"""The NumPy reference of every layer against independent oracles.

Oracles: naive loops over output positions written from the lectures' equations (conv as
cross-correlation, lecture "Convolutional neural networks" (2016); pooling, lecture "Supervised
learning"), the 4x4 pooling example of lecture "Deep Neural Networks" ("Max pooling"), and
PyTorch's conv/pool when it is installed."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcore.layers import reference as ref
from dlcore.layers.geometry import Window

DEEP_NETWORKS_POOLING_EXAMPLE = np.array(
    [[1, 2, 0, 3], [4, 3, 6, 5], [3, 4, 1, 2], [2, 7, 2, 0]], dtype=np.float64).reshape(1, 1, 4, 4)


def naive_conv(x, kernel, bias, stride, padding):
    """z[n, f, y, x] = b[f] + sum_{c,i,j} K[f, c, i, j] xpad[n, c, S y + i, S x + j]."""
    n, channels, height, width = x.shape
    filters, _, kh, kw = kernel.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h = (height - kh + 2 * padding) // stride + 1
    out_w = (width - kw + 2 * padding) // stride + 1
    z = np.empty((n, filters, out_h, out_w))
    for s in range(n):
        for f in range(filters):
            for y in range(out_h):
                for x_ in range(out_w):
                    patch = padded[s, :, y * stride:y * stride + kh, x_ * stride:x_ * stride + kw]
                    z[s, f, y, x_] = bias[f] + (kernel[f] * patch).sum()
    return z


def naive_pool(x, size, stride, reduce):
    n, channels, height, width = x.shape
    out_h, out_w = (height - size) // stride + 1, (width - size) // stride + 1
    out = np.empty((n, channels, out_h, out_w))
    for y in range(out_h):
        for x_ in range(out_w):
            patch = x[:, :, y * stride:y * stride + size, x_ * stride:x_ * stride + size]
            out[:, :, y, x_] = reduce(patch.reshape(n, channels, -1))
    return out


def window(shape, size, stride, padding=0):
    return Window.fit(shape, (size, size), (stride, stride), (padding, padding), "test")


conv_geometries = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(3, 9),
                            st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
                            st.integers(0, 2))


@settings(max_examples=40, deadline=None)
@given(conv_geometries, st.integers(0, 2 ** 32 - 1))
def test_conv_forward_equals_naive_cross_correlation(geometry, seed):
    n, channels, size, filters, k, stride, padding = geometry
    k = min(k, size + 2 * padding)
    stride = stride if (size - k + 2 * padding) % stride == 0 else 1
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((n, channels, size, size))
    kernel = rs.standard_normal((filters, channels, k, k))
    bias = rs.standard_normal(filters)
    w = window((channels, size, size), k, stride, padding)
    np.testing.assert_allclose(ref.conv2d_forward(x, kernel, bias, w),
                               naive_conv(x, kernel, bias, stride, padding), atol=1e-10)


def test_col2im_is_the_adjoint_of_im2col(random_state):
    """<im2col(x), c> = <x, col2im(c)> for all x, c: col2im is im2col's transpose."""
    w = window((2, 7, 7), 3, 2, 1)
    x = random_state.standard_normal((3, 2, 7, 7))
    cols = random_state.standard_normal((w.patch_size, 3 * w.out_pixels))
    assert np.isclose((ref.im2col(x, w) * cols).sum(), (x * ref.col2im(cols, 3, w)).sum())


def test_conv_matches_pytorch(random_state):
    torch = pytest.importorskip("torch")
    x = random_state.standard_normal((2, 3, 9, 9))
    kernel = random_state.standard_normal((4, 3, 3, 3))
    bias = random_state.standard_normal(4)
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(kernel),
                                          torch.tensor(bias), stride=2, padding=1).numpy()
    np.testing.assert_allclose(ref.conv2d_forward(x, kernel, bias, window((3, 9, 9), 3, 2, 1)),
                               expected, atol=1e-10)


def test_max_pooling_of_the_deep_networks_lecture_example_gives_4_6_7_2():
    y, _ = ref.max_pool_forward(DEEP_NETWORKS_POOLING_EXAMPLE, window((1, 4, 4), 2, 2))
    np.testing.assert_array_equal(y[0, 0], [[4, 6], [7, 2]])


def test_average_pooling_of_the_deep_networks_lecture_example_gives_the_means():
    """The slide rounds the last mean, 1.25, to 1.2."""
    y = ref.avg_pool_forward(DEEP_NETWORKS_POOLING_EXAMPLE, window((1, 4, 4), 2, 2))
    np.testing.assert_array_equal(y[0, 0], [[2.5, 3.5], [4, 1.25]])


def test_l2_pooling_of_the_deep_networks_lecture_example_is_the_root_sum_of_squares():
    y = ref.l2_pool_forward(DEEP_NETWORKS_POOLING_EXAMPLE, window((1, 4, 4), 2, 2))
    np.testing.assert_allclose(y[0, 0], np.sqrt([[30, 70], [78, 9]]))


def test_max_pooling_records_where_each_maximum_was():
    _, argmax = ref.max_pool_forward(DEEP_NETWORKS_POOLING_EXAMPLE, window((1, 4, 4), 2, 2))
    # 4 at (1, 0), 6 at (1, 2), 7 at (3, 1), 2 at (2, 3): index row * 4 + column
    np.testing.assert_array_equal(argmax[0, 0], [[4, 6], [13, 11]])


pool_geometries = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 8),
                            st.integers(1, 3), st.integers(1, 3))


@settings(max_examples=40, deadline=None)
@given(pool_geometries, st.integers(0, 2 ** 32 - 1))
def test_poolings_equal_naive_loops(geometry, seed):
    n, channels, size, pool, stride = geometry
    pool = min(pool, size)
    stride = stride if (size - pool) % stride == 0 else 1
    x = np.random.default_rng(seed).standard_normal((n, channels, size, size))
    w = window((channels, size, size), pool, stride)
    np.testing.assert_allclose(ref.max_pool_forward(x, w)[0],
                               naive_pool(x, pool, stride, lambda p: p.max(-1)))
    np.testing.assert_allclose(ref.avg_pool_forward(x, w),
                               naive_pool(x, pool, stride, lambda p: p.mean(-1)))
    np.testing.assert_allclose(ref.l2_pool_forward(x, w),
                               naive_pool(x, pool, stride, lambda p: np.sqrt((p * p).sum(-1))))


def test_overlapping_max_pool_backward_sums_shared_maxima():
    """A 3x3 input whose centre is the maximum of all four overlapping 2x2 pools."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    w = window((1, 3, 3), 2, 1)
    _, argmax = ref.max_pool_forward(x, w)
    grad = ref.max_pool_backward(np.ones((1, 1, 2, 2)), argmax, w)
    assert grad[0, 0, 1, 1] == 4 and grad.sum() == 4


def test_softmax_is_stable_for_huge_logits():
    p = ref.softmax(np.array([[1000.0, 0.0, -1000.0]]))
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0]])


def test_dropout_mask_keeps_the_right_fraction_with_inverted_scale():
    mask = ref.dropout_mask(200, 500, 0.3, seed=7, step=0)
    kept = mask > 0
    assert abs(kept.mean() - 0.7) < 0.005
    np.testing.assert_allclose(mask[kept], 1 / 0.7, rtol=1e-6)
