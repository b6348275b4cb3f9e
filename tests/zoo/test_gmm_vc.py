"""Joint-density GMM voice conversion and its signal pieces: DTW against a brute-force
dynamic programme, MLPG against a dense least-squares solve, the mel-cepstrum against
its closed form (and pysptk where installed), a GMM that recovers a known linear map,
the in-graph feature mapping against numpy, parallel-file errors, and a fitted model
that moves a speaker towards another."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.errors import ZooError


# ------------------------------------------------------------------ signal pieces
_FIRST_IMPORT_IN_THREADS = """
import importlib.util, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
spec = importlib.util.spec_from_file_location("world", sys.argv[1])
world = importlib.util.module_from_spec(spec)
spec.loader.exec_module(world)
x = np.random.default_rng(0).normal(size=800)
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda _: world.world_f0(x, 16000, method="dio"), range(8)))
"""


def test_pyworld_first_import_from_many_threads_at_once():
    """Eight threads analysing at once in a fresh interpreter, as the cvae's f0
    statistics do: none may see a half-imported pyworld (a CI failure)."""
    module = Path(__file__).parents[2] / "zoo" / "dsp" / "world.py"
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", _FIRST_IMPORT_IN_THREADS, str(module)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]


def _brute_force_dtw_cost(x, y):
    cost = np.linalg.norm(x[:, None] - y[None], axis=-1)
    acc = np.full((len(x) + 1, len(y) + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    return acc[-1, -1]


def test_dtw_path_is_optimal_against_a_brute_force_programme():
    from zoo.dsp import dtw_path

    rng = np.random.default_rng(0)
    for n, m in ((5, 7), (9, 4), (6, 6)):
        x, y = rng.standard_normal((n, 3)), rng.standard_normal((m, 3))
        path = dtw_path(x, y)
        assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)
        steps = np.diff(path, axis=0)
        assert np.all((steps >= 0) & (steps <= 1)) and np.all(steps.sum(axis=1) >= 1)
        cost = np.linalg.norm(x[path[:, 0]] - y[path[:, 1]], axis=-1).sum()
        assert cost == pytest.approx(_brute_force_dtw_cost(x, y), rel=1e-9)


def test_mlpg_equals_the_dense_weighted_least_squares_solution():
    from zoo.dsp.mlpg import delta_matrix, mlpg, static_delta

    rng = np.random.default_rng(1)
    T, D = 17, 3
    mean = rng.standard_normal((T, 2 * D))
    var = rng.uniform(0.1, 2.0, (T, 2 * D))
    y = mlpg(mean, var)
    W = delta_matrix(T).toarray()
    for d in range(D):
        mu = np.concatenate([mean[:, d], mean[:, D + d]])
        w = 1.0 / np.sqrt(np.concatenate([var[:, d], var[:, D + d]]))
        ref = np.linalg.lstsq(W * w[:, None], mu * w, rcond=None)[0]
        np.testing.assert_allclose(y[:, d], ref, rtol=1e-8, atol=1e-10)
    # a consistent static + delta target is reproduced exactly
    traj = np.cumsum(rng.standard_normal((T, D)), axis=0)
    np.testing.assert_allclose(mlpg(static_delta(traj), np.ones((T, 2 * D))), traj, atol=1e-9)


def test_mel_cepstrum_is_the_warped_cepstrum_of_the_log_power():
    from zoo.dsp.world import freqt, mc2sp, sp2mc

    bins = 257
    w = np.linspace(0, np.pi, bins)
    power = np.exp(1.5 * np.cos(w) - 0.8 * np.cos(2 * w) + 0.3 * np.cos(5 * w))[None]
    # alpha = 0: the real cepstrum of log power, whose cosine series is given above
    c = sp2mc(power, 8, 0.0)[0]
    np.testing.assert_allclose(c[:6], [0, 1.5 / 2 * 2 / 2, -0.8 / 2, 0, 0, 0.3 / 2], atol=1e-9)
    # warping: the mel-cepstrum's cosine series on the all-pass warped axis is log power
    alpha = 0.42
    mc = sp2mc(power, 40, alpha)[0]
    warped = w + 2 * np.arctan(alpha * np.sin(w) / (1 - alpha * np.cos(w)))
    series = mc[0] + np.sum(mc[1:, None] * np.cos(np.arange(1, 41)[:, None] * warped), 0)
    np.testing.assert_allclose(series, 0.5 * np.log(power[0]), atol=2e-3)  # log |X|
    # round trip, and freqt with -alpha undoes +alpha
    np.testing.assert_allclose(np.log(mc2sp(sp2mc(power, 60, alpha), alpha, 512)),
                               np.log(power), atol=1e-3)
    back = freqt(freqt(c, 60, alpha), 8, -alpha)
    np.testing.assert_allclose(back, c, atol=1e-6)


def test_mel_cepstrum_matches_pysptk_where_installed():
    from zoo.dsp.world import _pyworld, mc2sp, sp2mc

    _pyworld()  # the pkg_resources stand-in pysptk also needs
    pysptk = pytest.importorskip("pysptk")
    power = np.exp(np.random.default_rng(2).standard_normal((4, 513)).cumsum(axis=1) * 0.05)
    np.testing.assert_allclose(sp2mc(power, 24, 0.42), pysptk.sp2mc(power, 24, 0.42), atol=1e-10)
    mc = pysptk.sp2mc(power, 24, 0.42)
    np.testing.assert_allclose(mc2sp(mc, 0.42, 1024), pysptk.mc2sp(mc, 0.42, 1024), rtol=1e-9)


# ------------------------------------------------------------------ the model
def _tiny_model(**kw):
    from zoo.models.gmm_vc import GMMVoiceConversion

    return GMMVoiceConversion(**{"order": 3, "components": 2, "global_variance": False,
                                 "conversion": "mean", **kw})


def _fit_linear_map(model, seed=0):
    """A GMM fitted on joint vectors of x and y = A x + b."""
    from sklearn.mixture import GaussianMixture

    from zoo.dsp.mlpg import static_delta

    rng = np.random.default_rng(seed)
    A = np.array([[0.8, 0.1, 0.0], [-0.2, 1.1, 0.3], [0.0, 0.2, 0.7]])
    b = np.array([0.5, -0.3, 0.1])
    x = np.cumsum(rng.standard_normal((3000, 3)) * 0.3, axis=0) % 4.0 - 2.0
    y = x @ A.T + b
    joint = np.concatenate([static_delta(x), static_delta(y)], axis=1)
    gmm = GaussianMixture(model.components, covariance_type="full", reg_covar=1e-6,
                          random_state=0).fit(joint)
    model._store(gmm)
    return A, b, rng


@pytest.mark.parametrize("conversion", ["mean", "mlpg"])
def test_gmm_conversion_recovers_a_known_linear_map(conversion):
    model = _tiny_model(conversion=conversion)
    A, b, rng = _fit_linear_map(model)
    x = np.cumsum(rng.standard_normal((200, 3)) * 0.3, axis=0) % 4.0 - 2.0
    y = model.convert_mcep(x)
    np.testing.assert_allclose(y, x @ A.T + b, atol=2e-3 if conversion == "mean" else 2e-2)


def test_graph_feature_mapping_equals_numpy():
    import keras

    model = _tiny_model()
    _fit_linear_map(model)
    x = np.random.default_rng(3).standard_normal((2, 40, 3)).astype("float32")
    graph = np.asarray(keras.ops.convert_to_numpy(model.convert_features(x)))
    ref = np.stack([model._convert_static(row.astype(np.float64)) for row in x])
    np.testing.assert_allclose(graph, ref, rtol=2e-3, atol=2e-3)


def _voices(folder, names, speakers=("A", "B"), drop=None):
    from zoo.data.audio import write_audio
    from zoo.data.voices import render_utterance

    for spk in speakers:
        for u in names:
            if (spk, u) != drop:
                write_audio(folder / spk / f"utt_{u:03d}.wav", render_utterance(u, spk), 16000)
    return folder


def test_missing_parallel_partner_is_one_line_naming_the_file(tmp_path):
    from zoo.training.trainer import train

    data = _voices(tmp_path / "data", range(4), drop=("B", 2))
    with pytest.raises(ZooError) as err:
        train("gmm_vc", data=data, tiny=True, out=tmp_path / "run", verbose=0,
              overrides={"data": {"val_fraction": 0.0}})
    message = str(err.value)
    assert "\n" not in message and "utt_002.wav" in message and "no parallel partner" in message
    with pytest.raises(ZooError, match="target_domain 'Z' is not a domain folder"):
        train("gmm_vc", data=data, tiny=True, out=tmp_path / "run2", verbose=0,
              overrides={"model_config": {"target_domain": "Z"}})


def test_fitted_model_moves_speaker_a_towards_b_and_round_trips(tmp_path):
    import zoo
    from zoo.data.voices import render_utterance
    from zoo.eval.metrics import mel_cepstral_distortion
    from zoo.training.trainer import train

    data = _voices(tmp_path / "data", range(8))
    result = train("gmm_vc", data=data, tiny=True, out=tmp_path / "run", verbose=0,
                   overrides={"data": {"val_fraction": 0.0}})
    model = result.model
    assert model.is_fitted and model.source_domain == "A" and model.target_domain == "B"
    x, target = render_utterance(9, "A"), render_utterance(9, "B")  # held out
    y = model.convert(x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    world = dict(method="world", hop=80, n_fft=1024)
    before = mel_cepstral_distortion(x, target, 16000, **world)
    after = mel_cepstral_distortion(y, target, 16000, **world)
    assert after < before - 1.0, (before, after)
    restored = zoo.load(tmp_path / "run")
    np.testing.assert_allclose(restored.convert(x), y, atol=1e-5)
