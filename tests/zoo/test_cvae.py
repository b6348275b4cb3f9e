"""The conditional VAE: labelled (non-parallel) training, label swap, latent arithmetic
with the domain means it stores, and one-line errors."""
import keras
import numpy as np
import pytest

from zoo.errors import ZooError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from zoo.training.trainer import train

    out = tmp_path_factory.mktemp("cvae") / "run"
    return train("cvae", tiny=True, out=out, verbose=0, samples=False)


def _clip(seconds=0.6, speaker="A", utterance=3):
    from zoo.data.voices import render_utterance

    return render_utterance(utterance, speaker)[: int(16000 * seconds)]


def test_label_swap_changes_the_output_and_the_identity_label_reconstructs(trained):
    from zoo.eval.metrics import mel_distance

    model = trained.model
    x = _clip()[None]
    same = model.convert_batch(x, source="A", target="A")
    recon = np.asarray(keras.ops.convert_to_numpy(model.reconstruct(x)))
    swapped = model.convert_batch(x, source="A", target="B")
    arith = model.convert_batch(x, "A", "A", conversion="arithmetic")
    assert swapped.shape == x.shape and np.all(np.isfinite(swapped))
    # two compiled graphs of the same maths: equal up to Griffin-Lim's float noise
    identity = max(mel_distance(same[0], recon[0], 16000), mel_distance(arith[0], recon[0], 16000))
    assert identity < 0.01
    assert mel_distance(swapped[0], same[0], 16000) > max(10 * identity, 0.02)


def test_domain_means_are_the_mean_posterior_of_training_clips(trained):
    from zoo.training.trainer import recipe_dataset
    from zoo import registry

    model = trained.model
    means = np.asarray(keras.ops.convert_to_numpy(model.domain_means))
    assert means.shape == (4, model.latent_dim) and np.all(np.isfinite(means))
    recipe = registry.run_recipe(trained.run_dir)
    dataset = recipe_dataset(recipe)
    clips = dataset.clips(model.mean_clips, split="train", seed=recipe["data"]["seed"],
                          domain="C")
    feats = model.frontend(model.frontend.pad_input(keras.ops.convert_to_tensor(clips)))
    z = model.encode_features(feats, keras.ops.full((len(clips),), 2, "int32"))[0]
    np.testing.assert_allclose(means[2], np.asarray(keras.ops.convert_to_numpy(z)).mean((0, 1)),
                               rtol=1e-4, atol=1e-5)
    # the arithmetic conversion moves the latent by exactly mu_B - mu_A
    assert not np.allclose(means[0], means[1])


def test_domain_mismatch_and_bad_names_are_one_line(trained, tmp_path):
    from zoo.training.trainer import train

    with pytest.raises(ZooError, match=r"data's domains \['A', 'B', 'C', 'D'\] are not the "
                                       r"model's \['A', 'B'\]"):
        train("cvae", tiny=True, out=tmp_path / "r", verbose=0,
              overrides={"model_config": {"domains": ["A", "B"]}})
    with pytest.raises(ZooError, match="unknown domain 'Q'"):
        trained.model.convert_batch(_clip()[None], source="Q")


def test_f0_transform_moves_the_contour_to_the_target_statistics(trained):
    from zoo.dsp.world import world_f0

    model = trained.model
    stats = np.asarray(keras.ops.convert_to_numpy(model.domain_f0))
    assert np.all(stats[:, 1] > 0)  # learned from the training clips of every speaker
    x = _clip(1.0)
    src_f0 = world_f0(x, 16000, f0_floor=stats[0, 2], f0_ceil=stats[0, 3])[0]
    # a target exactly one octave above the source, same spread
    forced = stats.copy()
    forced[1] = [stats[0, 0] + np.log(2.0), stats[0, 1], stats[0, 2] * 2, stats[0, 3] * 2]
    model.domain_f0.assign(forced)
    try:
        y = model.convert_batch(x[None], "A", "B")[0]
    finally:
        model.domain_f0.assign(stats)
    out_f0 = world_f0(y, 16000, f0_floor=forced[1, 2], f0_ceil=forced[1, 3])[0]
    shift = 1200 * (np.median(np.log2(out_f0[out_f0 > 0])) - np.median(np.log2(src_f0[src_f0 > 0])))
    assert abs(shift - 1200) < 50, shift
