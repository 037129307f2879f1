import math

import numpy as np
import pytest
import torch

from cnnumpy import init

CONV = (64, 32, 5, 5)  # (F, C, KH, KW): fan_in = 800, fan_out = 1600
LINEAR = (300, 500)  # (out, in): fan_in = 500, fan_out = 300
BIG = (400, 250, 2, 2)  # 400k entries for the moment checks: fan_in = 1000, fan_out = 1600


def check_moments(x, mean, var, mu4, name, n_se=5.0):
    """Sample mean and variance within ``n_se`` standard errors of the distribution's.

    Standard errors: ``sqrt(var / n)`` for the mean and ``sqrt((mu4 - var^2) / n)`` for the
    variance, with ``mu4`` the fourth central moment.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt((mu4 - var**2) / n)
    assert abs(x.mean() - mean) < n_se * se_mean, f"{name}: mean {x.mean()} vs {mean}"
    assert abs(x.var() - var) < n_se * se_var, f"{name}: var {x.var()} vs {var}"


def uniform_moments(low, high):
    w = high - low
    return (low + high) / 2, w**2 / 12, w**4 / 80  # mean, var, 4th central moment


def normal_moments(mean, std):
    return mean, std**2, 3 * std**4


# name, filler call (shape -> array), (mean, var, mu4), (low, high) or None
def _cases():
    fi, fo = 1000, 1600  # PyTorch's and Caffe's fans of BIG
    b_xavier = math.sqrt(3 / fi)
    b_glorot = math.sqrt(6 / (fi + fo))
    b_kaiming = math.sqrt(3) * math.sqrt(2) / math.sqrt(fi)
    b_lecun = 2.4 / fi
    b_default = 1 / math.sqrt(fi)
    return [
        ("gaussian", lambda s, r: init.gaussian(s, r, 0.5, 2.0), normal_moments(0.5, 2.0), None),
        ("uniform", lambda s, r: init.uniform(s, r, -1, 3), uniform_moments(-1, 3), (-1, 3)),
        ("xavier", lambda s, r: init.xavier(s, r), uniform_moments(-b_xavier, b_xavier),
         (-b_xavier, b_xavier)),
        ("xavier_fan_out", lambda s, r: init.xavier(s, r, "FAN_OUT"),
         uniform_moments(-math.sqrt(3 / fo), math.sqrt(3 / fo)), None),
        ("xavier_average", lambda s, r: init.xavier(s, r, "AVERAGE"),
         uniform_moments(-math.sqrt(6 / (fi + fo)), math.sqrt(6 / (fi + fo))), None),
        ("msra", lambda s, r: init.msra(s, r), normal_moments(0, math.sqrt(2 / fi)), None),
        ("msra_fan_out", lambda s, r: init.msra(s, r, "FAN_OUT"),
         normal_moments(0, math.sqrt(2 / fo)), None),
        ("glorot_uniform", init.glorot_uniform, uniform_moments(-b_glorot, b_glorot),
         (-b_glorot, b_glorot)),
        ("xavier_uniform_gain", lambda s, r: init.xavier_uniform(s, r, gain=2.0),
         uniform_moments(-2 * b_glorot, 2 * b_glorot), (-2 * b_glorot, 2 * b_glorot)),
        ("xavier_normal", lambda s, r: init.xavier_normal(s, r, gain=0.5),
         normal_moments(0, 0.5 * math.sqrt(2 / (fi + fo))), None),
        ("kaiming_uniform", init.kaiming_uniform, uniform_moments(-b_kaiming, b_kaiming),
         (-b_kaiming, b_kaiming)),
        ("kaiming_normal_relu_fan_out",
         lambda s, r: init.kaiming_normal(s, r, mode="fan_out", nonlinearity="relu"),
         normal_moments(0, math.sqrt(2 / fo)), None),
        ("kaiming_normal_leaky", lambda s, r: init.kaiming_normal(s, r, a=0.2),
         normal_moments(0, math.sqrt(2 / (1 + 0.04)) / math.sqrt(fi)), None),
        ("lecun_uniform", init.lecun_uniform, uniform_moments(-b_lecun, b_lecun),
         (-b_lecun, b_lecun)),
        ("default_weight", init.default_weight, uniform_moments(-b_default, b_default),
         (-b_default, b_default)),
        ("default_bias", lambda s, r: init.default_bias(s, 1000, r),
         uniform_moments(-b_default, b_default), (-b_default, b_default)),
    ]  # fmt: skip


CASES = _cases()


@pytest.mark.parametrize("name, fill, moments, bounds", CASES, ids=[c[0] for c in CASES])
def test_moments_and_bounds(name, fill, moments, bounds):
    x = fill(BIG, np.random.default_rng(1))
    assert x.shape == BIG and x.dtype == np.float32
    check_moments(x, *moments, name=name)
    if bounds is not None:
        low, high = bounds
        assert x.min() >= np.float32(low) and x.max() <= np.float32(high), name
        # the bounds are the support, not just a cap: samples come close to both ends
        width = high - low
        assert x.min() < low + 1e-3 * width and x.max() > high - 1e-3 * width, name


@pytest.mark.parametrize("name, fill, moments, bounds", CASES, ids=[c[0] for c in CASES])
def test_same_seed_same_array(name, fill, moments, bounds):
    shape = (6, 4, 3, 3)
    a = fill(shape, np.random.default_rng(7))
    b = fill(shape, np.random.default_rng(7))
    c = fill(shape, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c), f"{name}: different seeds gave the same array"


FILLERS_WITH_RNG = [
    init.gaussian, init.uniform, init.xavier, init.msra, init.positive_unitball,
    init.glorot_uniform, init.kaiming_uniform, init.kaiming_normal, init.xavier_uniform,
    init.xavier_normal, init.lecun_uniform, init.default_weight,
]  # fmt: skip


@pytest.mark.parametrize("fill", FILLERS_WITH_RNG, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_respected_and_new_array(fill, dtype):
    shape = (6, 4, 3, 3)
    x = fill(shape, np.random.default_rng(3), dtype=dtype)
    assert x.dtype == dtype and x.shape == shape and x.flags.writeable and x.flags.owndata
    # same seed, same array; the float32 array is the float64 one rounded
    y = fill(shape, np.random.default_rng(3), dtype=np.float64)
    np.testing.assert_array_equal(x, y.astype(dtype))


def test_deterministic_fillers_dtype():
    for dtype in (np.float32, np.float64):
        assert init.constant((3, 2), 1.5, dtype=dtype).dtype == dtype
        assert init.bilinear((2, 1, 4, 4), dtype=dtype).dtype == dtype
        assert init.default_bias((5,), 3, np.random.default_rng(0), dtype=dtype).dtype == dtype
    np.testing.assert_array_equal(init.constant((3, 2), 1.5), np.full((3, 2), 1.5, np.float32))
    with pytest.raises(ValueError, match="floating dtype"):
        init.gaussian((2, 2), np.random.default_rng(0), dtype=np.int32)


def test_caffe_fans():
    assert init.caffe_fan_in_and_fan_out(CONV) == (32 * 5 * 5, 64 * 5 * 5)
    assert init.caffe_fan_in_and_fan_out(LINEAR) == (500, 300)
    assert init.caffe_fan_in_and_fan_out((20, 1, 5, 5)) == (25, 500)  # LeNet conv1
    rng = np.random.default_rng(0)
    for shape, (fan_in, fan_out) in [(CONV, (800, 1600)), (LINEAR, (500, 300))]:
        for norm, n in [
            ("FAN_IN", fan_in),
            ("FAN_OUT", fan_out),
            ("AVERAGE", (fan_in + fan_out) / 2),
        ]:
            bound = math.sqrt(3 / n)
            x = init.xavier(shape, rng, norm, dtype=np.float64)
            assert bound * 0.99 < np.abs(x).max() <= bound, (shape, norm)
            y = init.msra(shape, rng, norm, dtype=np.float64)
            assert abs(y.std() / math.sqrt(2 / n) - 1) < 0.03, (shape, norm)


@pytest.mark.parametrize("shape", [CONV, LINEAR, (3, 7), (10, 3, 1, 1), (4, 6, 3, 5), (2, 3, 4)])
def test_torch_fans(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(shape) == expected


@pytest.mark.parametrize(
    "nonlinearity, param",
    [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
     ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)],
)  # fmt: skip
def test_gain(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


def test_default_weight_bound_matches_torch():
    # PyTorch Conv2d.reset_parameters: kaiming_uniform_(a=sqrt(5)) = U[-b, b], b = 1/sqrt(fan_in)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 64, 5)
    bound = 1 / math.sqrt(32 * 5 * 5)
    ours_w = init.default_weight(CONV, np.random.default_rng(0))
    ours_b = init.default_bias((64,), 800, np.random.default_rng(0))
    for name, x in [("torch weight", conv.weight.detach().numpy()), ("weight", ours_w)]:
        assert np.abs(x).max() <= bound and np.abs(x).max() > 0.99 * bound, name
    assert np.abs(conv.bias.detach().numpy()).max() <= bound
    assert np.abs(ours_b).max() <= bound
    np.testing.assert_array_equal(init.default_bias((4,), 0, np.random.default_rng(0)), 0)


def test_positive_unitball():
    x = init.positive_unitball((50, 3, 4, 4), np.random.default_rng(0), dtype=np.float64)
    assert x.min() >= 0
    np.testing.assert_allclose(x.reshape(50, -1).sum(axis=1), 1.0, rtol=1e-12)
    y = init.positive_unitball((7, 9), np.random.default_rng(0))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


def bilinear_by_loop(k):
    """Caffe's BilinearFiller entry by entry, looping over the flat index as Caffe does."""
    f = math.ceil(k / 2)
    c = (k - 1) / (2 * f)
    out = np.empty((k, k))
    for i in range(k * k):
        x, y = i % k, (i // k) % k
        out[y, x] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
    return out


def test_bilinear_known_kernel():
    # K = 4: f = 2, c = 0.75, taps (0.25, 0.75, 0.75, 0.25), kernel = outer product
    taps = [0.25, 0.75, 0.75, 0.25]
    known = np.array([[a * b for b in taps] for a in taps])
    np.testing.assert_array_equal(bilinear_by_loop(4), known)
    w = init.bilinear((3, 2, 4, 4), dtype=np.float64)
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(w[i, j], known)


@pytest.mark.parametrize("k", range(1, 13))
def test_bilinear_matches_loop_and_is_symmetric(k):
    w = init.bilinear((2, 1, k, k), dtype=np.float64)
    np.testing.assert_allclose(w[1, 0], bilinear_by_loop(k), rtol=1e-15)
    np.testing.assert_allclose(w[0, 0], w[0, 0][::-1, ::-1], rtol=1e-14)
    np.testing.assert_allclose(w[0, 0], w[0, 0].T, rtol=1e-14)
    factor = math.ceil(k / 2)
    if k == 2 * factor - factor % 2:  # the kernel sizes Caffe documents for upsampling
        # there the FCN-port centre (2f - 1 - f % 2) / (2f) gives the same kernel
        c = (2 * factor - 1 - factor % 2) / (2 * factor)
        taps = 1 - np.abs(np.arange(k) / factor - c)
        np.testing.assert_allclose(w[0, 0], np.outer(taps, taps), rtol=1e-14)


def test_bilinear_upsamples_constant_image():
    c, h, w = 3, 5, 6
    x = np.full((1, c, h, w), 2.5)
    weight = init.bilinear((c, 1, 4, 4), dtype=np.float64)  # one group per channel
    y = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(weight), stride=2, padding=1, groups=c
    ).numpy()
    assert y.shape == (1, c, 2 * h, 2 * w)
    np.testing.assert_allclose(y[:, :, 1:-1, 1:-1], 2.5, rtol=1e-15)
    # and a linear ramp along W is interpolated linearly in the interior
    ramp = np.broadcast_to(np.arange(w, dtype=np.float64), (1, c, h, w))
    z = torch.nn.functional.conv_transpose2d(
        torch.tensor(ramp.copy()), torch.tensor(weight), stride=2, padding=1, groups=c
    ).numpy()
    expected = (np.arange(2 * w) - 0.5) / 2  # output pixel o sits at input coordinate (o - 0.5)/2
    np.testing.assert_allclose(z[0, 0, 2, 1:-1], expected[1:-1], rtol=1e-14)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: init.xavier((4, 3), r, "fan_in"), "variance_norm"),
        (lambda r: init.msra((4, 3), r, "MEAN"), "variance_norm"),
        (lambda r: init.xavier((5,), r), "at least 2 dimensions"),
        (lambda r: init.msra((5,), r), "at least 2 dimensions"),
        (lambda r: init.glorot_uniform((5,), r), "at least 2 dimensions"),
        (lambda r: init.kaiming_uniform((5,), r), "at least 2 dimensions"),
        (lambda r: init.kaiming_normal((5, 2), r, mode="fan_avg"), "mode"),
        (lambda r: init.kaiming_uniform((5, 2), r, nonlinearity="swish"), "nonlinearity"),
        (lambda r: init.lecun_uniform((5,), r), "at least 2 dimensions"),
        (lambda r: init.calculate_fan_in_and_fan_out(()), "at least 2 dimensions"),
        (lambda r: init.caffe_fan_in_and_fan_out((3,)), "at least 2 dimensions"),
        (lambda r: init.bilinear((2, 1, 4, 3)), "square"),
        (lambda r: init.bilinear((4, 4)), "4-D"),
        (lambda r: init.gaussian((2, 2), r, std=-1.0), "std"),
        (lambda r: init.uniform((2, 2), r, 1.0, 0.0), "low <= high"),
        (lambda r: init.default_bias((2,), -3, r), "fan_in"),
        (lambda r: init.constant((2, -1)), "non-negative"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(np.random.default_rng(0))
