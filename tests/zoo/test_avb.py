"""AVB: the critic T(x, z) learns the closed-form KL of a Gaussian encoder, adaptive
contrast's estimate is exact when T is zero, the implicit encoder is stochastic while
``encode`` is deterministic, and bad arguments fail in one line."""
import keras
import numpy as np
import pytest
from keras import ops

from layers import gaussian_kl
from zoo import registry
from zoo.errors import ZooError

TINY = registry.load_recipe("avb", tiny=True)


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def tones(n, seed, length=4096):
    """Tones of random pitch and loudness over a little noise: latents that vary with x."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 16000
    f, a = rng.uniform(100, 2000, (n, 1)), rng.uniform(0.01, 0.5, (n, 1))
    return (a * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal((n, length))).astype(
        "float32")


def gaussian_model(mean_scale=2.0, **overrides):
    """A Gaussian-encoder AVB whose encoder weights come from numpy (the same posterior
    on every backend): log-variances near -1, means that depend on the input."""
    keras.utils.set_random_seed(0)
    model = registry.build(TINY, encoder="gaussian", latent_dim=4, kl_warmup_steps=0,
                           **overrides)
    rng = np.random.default_rng(0)
    for w in model.encoder.weights:
        shape = tuple(w.shape)
        if len(shape) > 1:
            value = rng.standard_normal(shape) * np.sqrt(2.0 / (np.prod(shape[:-1]) + shape[-1]))
        else:
            value = np.zeros(shape)
        w.assign(value.astype("float32"))
    last = model.encoder.layers[-1]
    kernel = numpy(last.kernel)
    kernel[..., :4] *= mean_scale
    kernel[..., 4:] *= 0.2
    bias = np.concatenate([np.full(4, 0.5), np.full(4, -1.0)]).astype("float32")
    last.kernel.assign(kernel)
    last.bias.assign(bias)
    return model


def posterior_and_estimate(model, waves, draws=16):
    feats = model.frontend(model.frontend.pad_input(ops.convert_to_tensor(waves)))
    z, mean, log_var = model.posterior_draws(feats, draws, seed=3)
    estimate = np.mean([numpy(model.kl_estimate(feats, z[i], mean, log_var))
                        for i in range(draws)], axis=0)
    return estimate, numpy(gaussian_kl(mean, log_var))


def test_trained_critic_estimates_the_closed_form_kl():
    """T's optimum is log q(z|x) - log p(z): trained alone (the VAE frozen by the
    schedule), its mean over q tracks KL(q(z|x) || N(0, I)) frame by frame."""
    model = gaussian_model(critic_channels=64)
    model.compile_from_recipe({**TINY["train"], "adversary_learning_rate": 2e-3,
                               "schedule": {"vae": {"every": 10 ** 6, "at": 10 ** 6 - 1}}})
    encoder_before = [numpy(w) for w in model.encoder.weights]
    model.fit(tones(600 * 8, seed=1), batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, w in zip(encoder_before, model.encoder.weights):  # the VAE never ran
        np.testing.assert_array_equal(a, numpy(w))
    estimate, analytic = posterior_and_estimate(model, tones(32, seed=99))
    assert analytic.std() > 0.3  # the KL really varies from frame to frame
    ratio = estimate.mean() / analytic.mean()
    assert 0.75 < ratio < 1.25, (estimate.mean(), analytic.mean())
    assert np.corrcoef(estimate.ravel(), analytic.ravel())[0, 1] > 0.6
    report = model.kl_report(tones(4, seed=5))
    assert report["analytic"] is not None and np.isfinite(report["estimate"])


def test_adaptive_contrast_with_a_zero_critic_is_the_closed_form():
    """With adaptive contrast the estimate is T(x, z~) + log r(z|x) - log p(z); for a
    Gaussian encoder r = q, so with T = 0 its mean over q is the analytic KL."""
    model = gaussian_model(adaptive_contrast=True)
    for w in model.critic.out.weights:
        w.assign(np.zeros(tuple(w.shape), "float32"))
    estimate, analytic = posterior_and_estimate(model, tones(8, seed=2), draws=400)
    np.testing.assert_allclose(estimate.mean(), analytic.mean(), rtol=0.03)
    # normalised codes are what the critic sees: exactly N(0, I) draws for this encoder
    feats = model.frontend(model.frontend.pad_input(ops.convert_to_tensor(tones(8, seed=2))))
    z, mean, log_var = model.posterior_draws(feats, 64, seed=4)
    codes = numpy(model._critic_codes(z, mean, log_var))
    assert abs(codes.mean()) < 0.05 and abs(codes.std() - 1.0) < 0.05


def test_implicit_posterior_is_stochastic_and_encode_deterministic():
    keras.utils.set_random_seed(0)
    model = registry.build(TINY)
    assert model.encoder_type == "implicit"
    x = tones(2, seed=7)
    feats = model.frontend(model.frontend.pad_input(ops.convert_to_tensor(x)))
    z, mean, _ = model.posterior_draws(feats, 4, seed=1)
    z = numpy(z)
    assert z.shape[0] == 4 and np.std(z, axis=0).mean() > 1e-3  # the noise matters
    np.testing.assert_array_equal(numpy(model.encode(x)), numpy(model.encode(x)))
    np.testing.assert_allclose(numpy(mean), z.mean(0), rtol=1e-5, atol=1e-6)


def test_bad_arguments_are_one_line():
    with pytest.raises(ZooError, match="model_config: encoder must be one of"):
        registry.build(TINY, encoder="flow")
    with pytest.raises(ZooError, match="model_config: AdversarialVAE is variational"):
        registry.build(TINY, variational=False)
    with pytest.raises(ZooError, match="model_config: noise_dim"):
        registry.build(TINY, noise_dim=0)
