"""The PixelCNN prior: causal in raster order (by perturbation), each logit sees exactly
its claimed context, the compiled sampling loop (vertical stacks once per row, horizontal
stacks per code) draws exactly what re-running the whole network over the whole map per
code draws, it learns codes better than their unigram distribution, its VQ-VAE stays
frozen, and it needs a VQ-VAE."""
import keras
import numpy as np
import pytest
from keras import ops

import zoo
from tests.zoo._priors import assert_prior_beats_unigram, dynamo_graphs

VQ = dict(channels=16, code_dim=8, num_codes=32, n_mels=32, griffin_lim_iters=2, seed=0)


def _prior(**kwargs):
    keras.utils.set_random_seed(0)
    return zoo.load("pixelcnn", **{"vqvae": VQ, "filters": 16, "num_layers": 3, **kwargs})


def test_logits_never_see_the_current_or_later_codes():
    prior = _prior()
    rng = np.random.default_rng(0)
    rows, cols = 5, 8
    codes = rng.integers(0, 32, size=(1, rows, cols)).astype("int32")
    base = ops.convert_to_numpy(prior.logits(codes))
    for p in (0, 9, 17, 38):
        i, j = divmod(p, cols)
        changed = codes.copy().reshape(-1)
        changed[p:] = rng.integers(0, 32, size=changed[p:].shape)
        out = ops.convert_to_numpy(prior.logits(changed.reshape(codes.shape)))
        np.testing.assert_allclose(out[0, i, j], base[0, i, j], atol=1e-5)
        flat_out, flat_base = out.reshape(-1, 32), base.reshape(-1, 32)
        np.testing.assert_allclose(flat_out[:p + 1], flat_base[:p + 1], atol=1e-5)
    # and it does see the codes before: changing the first code moves a later output
    changed = codes.copy()
    changed[0, 0, 0] = (codes[0, 0, 0] + 1) % 32
    assert not np.allclose(ops.convert_to_numpy(prior.logits(changed))[0, 1, 0], base[0, 1, 0])


@pytest.mark.parametrize("num_layers, rows", [(1, 6), (3, 5)])
def test_each_codes_logits_depend_on_its_context_window_alone(num_layers, rows):
    """Which codes move the logits at a position (by perturbation, as numbers) is exactly
    the ``context`` sampling relies on; and the logits sampling computes (the vertical
    stacks over the rows above, then the horizontal stacks over the columns to the left)
    equal the whole map's at every position. With 1 layer the windows (2 rows, 3
    columns of 6 x 8) are smaller than the map; with 3 layers, 4 of its 5 rows."""
    prior = _prior(num_layers=num_layers)
    cols = 8
    above, left, right = prior.context
    assert (above, left, right) == (num_layers + 1, num_layers + 1, num_layers)  # kernel 3
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 32, size=(2, rows, cols)).astype("int32")
    full = ops.convert_to_numpy(prior.logits(codes))
    i, j = rows - 1, 4
    moved = np.zeros((rows, cols), bool)
    for a in range(rows):
        for b in range(cols):
            changed = codes.copy()
            changed[:, a, b] = (codes[:, a, b] + 7) % 32
            out = ops.convert_to_numpy(prior.logits(changed))
            moved[a, b] = np.abs(out[:, i, j] - full[:, i, j]).max() > 1e-6
    claimed = np.zeros((rows, cols), bool)
    claimed[max(i - above, 0):i, max(j - left + 1, 0):j + right + 1] = True
    claimed[i, max(j - left, 0):j] = True
    np.testing.assert_array_equal(moved, claimed)
    for row in range(rows):
        above = prior.rows_above(codes, row)
        for col in range(cols):
            np.testing.assert_allclose(
                ops.convert_to_numpy(prior.logits_at(codes[:, row], col, above)),
                full[:, row, col], atol=2e-5)


@pytest.mark.parametrize("num_layers, rows", [(3, 3), (2, 7)])
def test_sampling_equals_rerunning_the_whole_network_per_code(num_layers, rows):
    """The seed fixes the Gumbel noise; re-running the whole network over the whole map
    for every code (the keras.io example's sampler) with that noise must draw the same
    codes (a row's vertical stacks see at most 3 rows above it with 2 layers, and a
    code's horizontal stacks 4 columns: the 7 x 8 map needs both windows moved)."""
    prior = _prior(num_layers=num_layers)
    num, cols, k, temperature = 2, 8, 32, 0.7
    codes = ops.convert_to_numpy(prior.sample_codes(num, rows, seed=5, temperature=temperature))
    assert codes.shape == (num, rows, cols) and codes.min() >= 0 and codes.max() < k
    uniform = ops.convert_to_numpy(keras.random.uniform((num, rows * cols, k), 1e-9, 1.0,
                                                        seed=5))
    gumbel = -np.log(-np.log(uniform))
    naive = np.zeros((num, rows * cols), "int32")
    for p in range(rows * cols):
        logits = ops.convert_to_numpy(prior.logits(naive.reshape(num, rows, cols)))
        naive[:, p] = np.argmax(logits.reshape(num, -1, k)[:, p] / temperature + gumbel[:, p], -1)
    np.testing.assert_array_equal(codes, naive.reshape(num, rows, cols))
    assert not np.array_equal(codes, ops.convert_to_numpy(prior.sample_codes(num, rows, seed=6)))
    if num_layers == 3:
        audio = ops.convert_to_numpy(prior.sample(2, 4096, seed=1))
        assert audio.shape == (2, 4096) and np.all(np.isfinite(audio))


def test_compiled_steps_draw_the_codes_eager_steps_draw():
    """``compile_steps`` (each step one ``torch.compile``d graph on torch; JAX and TF
    compile the whole loop anyway) draws exactly the eager loop's codes, for two seeds;
    on torch dynamo builds one graph for all 2 x 40 steps of the 5 rows' loops (the index
    is a tensor, and the network is applied through its weights, with no layer calls to
    break the graph)."""
    prior = _prior(num_layers=2)
    graphs = dynamo_graphs()
    for seed in (4, 5):
        eager = ops.convert_to_numpy(prior.sample_codes(2, 5, seed=seed, compile_steps=False))
        compiled = ops.convert_to_numpy(prior.sample_codes(2, 5, seed=seed, compile_steps=True))
        np.testing.assert_array_equal(compiled, eager)
    if keras.backend.backend() == "torch":
        assert dynamo_graphs() - graphs == 1


def test_domain_conditioned_prior_learns_codes_better_than_their_unigram_and_keeps_its_vqvae(
        tmp_path):
    """Conditioned on builtin:timbre's two domains and trained 80 tiny steps through a
    k-means-initialised, saved VQ-VAE: fewer bits per held-out code than the unigram and
    than with the domain labels swapped, the VQ-VAE frozen (``tests/zoo/_priors.py``)."""
    from zoo.models.vqvae import SpectrogramVQVAE

    assert_prior_beats_unigram(tmp_path, "pixelcnn", SpectrogramVQVAE, VQ, margin_bits=0.2,
                               model_config={"filters": 16, "num_layers": 3,
                                             "domains": ["brass", "reed"]},
                               label_margin_bits=0.005)  # measured 0.02 on TF and torch


def test_a_prior_needs_a_vqvae(tmp_path):
    with pytest.raises(Exception, match="model_config.vqvae: the prior needs a trained VQ-VAE"):
        zoo.load("pixelcnn")
    with pytest.raises(Exception, match="model_config.vqvae: .*no_such_run: file not found"):
        zoo.load("pixelcnn", vqvae=str(tmp_path / "no_such_run"))
    with pytest.raises(Exception, match="models one codebook"):
        zoo.load("pixelcnn", vqvae={**VQ, "num_quantizers": 2})


def test_zoo_sample_writes_prior_samples_and_checks_the_temperature(tmp_path, capsys):
    from tests.zoo.test_cli import run_cli

    prior = _prior()
    prior.build()
    prior.save(tmp_path / "prior.keras")
    code, out, _ = run_cli(capsys, "sample", str(tmp_path / "prior.keras"),
                           str(tmp_path / "s.wav"), "--seconds", "0.3", "--num", "2",
                           "--temperature", "0.8")
    assert code == 0 and (tmp_path / "s_0.wav").is_file() and (tmp_path / "s_1.wav").is_file()
    import soundfile

    audio, sr = soundfile.read(tmp_path / "s_1.wav")
    assert sr == 16000 and len(audio) == 4800
    code, _, err = run_cli(capsys, "sample", str(tmp_path / "prior.keras"),
                           str(tmp_path / "t.wav"), "--temperature", "0")
    assert code == 2 and "--temperature must be positive" in err
    code, _, err = run_cli(capsys, "sample", str(tmp_path / "prior.keras"),
                           str(tmp_path / "t.wav"), "--domain", "brass")
    assert code == 2 and "--domain: PixelCNNPrior is not conditioned on domains" in err
    assert not (tmp_path / "t.wav").exists()
    code, _, _ = run_cli(capsys, "sample", str(tmp_path / "prior.keras"),
                         str(tmp_path / "t.wav"), "--seconds", "0.1", "--no-compile-steps")
    assert code == 0 and (tmp_path / "t.wav").is_file()


def test_a_domain_conditioned_prior_samples_each_domain_and_round_trips(tmp_path, capsys):
    """Per-domain sampling through the same compiled loop (labels change the codes), an
    exact ``.keras`` round trip, ``zoo sample --domain`` and its one-line errors."""
    from tests.zoo.test_cli import run_cli

    prior = _prior(domains=["brass", "reed"])
    prior.build()
    rng = np.random.default_rng(0)  # label embeddings that matter next to the Gumbel noise
    for emb in prior.label_embeddings:
        emb.embeddings.assign(rng.normal(0.0, 2.0, emb.embeddings.shape).astype("float32"))
    codes = {d: ops.convert_to_numpy(prior.sample_codes(2, 3, seed=4, label=d)) for d in (0, 1)}
    assert not np.array_equal(codes[0], codes[1])
    np.testing.assert_array_equal(  # the default domain is the first
        ops.convert_to_numpy(prior.sample(1, 2048, seed=4)),
        ops.convert_to_numpy(prior.sample(1, 2048, seed=4, domain="brass")))
    prior.save(tmp_path / "prior.keras")
    loaded = keras.saving.load_model(tmp_path / "prior.keras", safe_mode=True)
    assert loaded.domains == ("brass", "reed")
    np.testing.assert_array_equal(
        ops.convert_to_numpy(loaded.sample_codes(2, 3, seed=4, label=1)), codes[1])
    with pytest.raises(ValueError, match="labels: this prior is conditioned on domains"):
        prior.log_likelihood(np.zeros((1, 4096), "float32"))
    code, _, _ = run_cli(capsys, "sample", str(tmp_path / "prior.keras"),
                         str(tmp_path / "r.wav"), "--seconds", "0.3", "--domain", "reed")
    assert code == 0 and (tmp_path / "r.wav").is_file()
    code, _, err = run_cli(capsys, "sample", str(tmp_path / "prior.keras"),
                           str(tmp_path / "x.wav"), "--domain", "strings")
    assert code == 2 and "unknown domain 'strings'; this model knows brass, reed" in err
