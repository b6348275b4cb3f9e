"""KL and Itakura-Saito against closed forms and numpy."""
import numpy as np
from keras import ops

from layers import gaussian_kl, itakura_saito, itakura_saito_log


def test_gaussian_kl_against_scipy_closed_form_and_monte_carlo():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(3, 5)).astype("float32")
    log_var = rng.normal(scale=0.5, size=(3, 5)).astype("float32")
    ours = ops.convert_to_numpy(gaussian_kl(mean, log_var))
    var = np.exp(log_var)
    closed = 0.5 * np.sum(mean ** 2 + var - log_var - 1, axis=-1)
    np.testing.assert_allclose(ours, closed, rtol=1e-5)
    # Monte-Carlo E_q[log q - log p] for the first row
    z = mean[0] + np.sqrt(var[0]) * rng.standard_normal((200000, 5))
    log_q = -0.5 * (((z - mean[0]) ** 2) / var[0] + log_var[0] + np.log(2 * np.pi))
    log_p = -0.5 * (z ** 2 + np.log(2 * np.pi))
    assert abs(np.mean(np.sum(log_q - log_p, axis=1)) - ours[0]) < 0.05


def test_itakura_saito_formula_and_properties():
    x = np.array([1.0, 2.0, 0.5, 3.0], "float32")
    v = np.array([1.0, 1.0, 2.0, 0.3], "float32")
    ours = ops.convert_to_numpy(itakura_saito(x, v, eps=0.0))
    np.testing.assert_allclose(ours, x / v - np.log(x / v) - 1, rtol=1e-5)
    assert ours[0] == 0.0 and np.all(ours >= 0)
    # scale invariance
    np.testing.assert_allclose(ops.convert_to_numpy(itakura_saito(7 * x, 7 * v, eps=0.0)), ours,
                               rtol=1e-4)
    log_form = ops.convert_to_numpy(itakura_saito_log(np.log(x), np.log(v)))
    np.testing.assert_allclose(log_form, ours, rtol=1e-4, atol=1e-6)


def test_itakura_saito_log_is_finite_for_extreme_inputs():
    out = ops.convert_to_numpy(itakura_saito_log(np.array([80.0, -80.0], "float32"),
                                                 np.array([-80.0, 80.0], "float32")))
    assert np.all(np.isfinite(out))


def test_itakura_saito_log_keeps_a_gradient_everywhere():
    from tests.layers._grad import grad

    log_x = np.zeros(4, "float32")
    g = grad(lambda lv: itakura_saito_log(log_x, lv, max_log_ratio=30.0),
             np.array([-60.0, -5.0, 5.0, 60.0], "float32"))
    assert np.all(np.isfinite(g))
    assert g[0] < 0 and g[1] < 0  # variance too small: increase it
    assert g[2] > 0 and g[3] > 0  # variance too large: decrease it
