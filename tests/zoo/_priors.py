"""The learning check both priors share: a prior trained on ``builtin:timbre`` through a
saved VQ-VAE (its codebook set by k-means on that data, so the codes carry information)
must model held-out codes in fewer bits than the training codes' unigram distribution
does, and must leave its VQ-VAE's weights as they were. A prior conditioned on the
data's domains must also model held-out codes better with their true domain labels than
with the labels swapped (it uses the label)."""
import keras
import numpy as np
from keras import ops

from zoo.data import load_dataset
from zoo.training.trainer import train


def assert_prior_beats_unigram(tmp_path, prior_name, vqvae_class, vqvae_config, margin_bits,
                               model_config=None, label_margin_bits=0.0):
    ds = load_dataset("builtin:timbre", 16000, 4096, progress=False)
    keras.utils.set_random_seed(0)
    vq = vqvae_class(**vqvae_config, kmeans_init=True)
    vq(ds.clips(32, split="train", seed=3), training=True)  # k-means codebook
    vq.save(tmp_path / "vq.keras")
    vq_weights = [ops.convert_to_numpy(v).copy() for v in vq.weights]
    result = train(prior_name, tiny=True, steps=80, out=tmp_path / "run", verbose=0,
                   samples=False, overrides={
                       "model_config": {"vqvae": str(tmp_path / "vq.keras"),
                                        **(model_config or {})},
                       "train": {"steps_per_epoch": 80, "batch_size": 8, "learning_rate": 3e-3,
                                 "validation_steps": 1}})
    model = result.model
    for a, b in zip(vq_weights, model.vqvae.weights):
        np.testing.assert_array_equal(a, ops.convert_to_numpy(b))
    k = model.num_codes
    train_codes = ops.convert_to_numpy(model.codes_of(ds.clips(64, split="train", seed=1)))
    if model.domains:  # 8 held-out clips per domain, with their labels
        val = np.concatenate([ds.clips(8, split="val", seed=2, domain=d) for d in ds.domains])
        labels = np.repeat(np.arange(len(ds.domains), dtype="int32"), 8)
        args = (val, labels)
    else:
        val = ds.clips(16, split="val", seed=2)
        args = (val,)
    val_codes = ops.convert_to_numpy(model.codes_of(val)).reshape(-1)
    counts = np.bincount(train_codes.reshape(-1), minlength=k) + 0.5  # add-half smoothing
    unigram_bits = float(np.mean(-np.log2(counts / counts.sum())[val_codes]))
    prior_bits = float(np.mean(ops.convert_to_numpy(model.log_likelihood(*args))))
    assert unigram_bits > 1.0  # the codes carry information
    assert prior_bits < unigram_bits - margin_bits, (prior_bits, unigram_bits)
    if model.domains:
        swapped = (labels + 1) % len(ds.domains)
        swapped_bits = float(np.mean(ops.convert_to_numpy(model.log_likelihood(val, swapped))))
        assert prior_bits < swapped_bits - label_margin_bits, (prior_bits, swapped_bits)


def dynamo_graphs():
    """Graphs torch's dynamo has compiled in this process (0 on other backends): the
    compiled-steps tests count them."""
    if keras.backend.backend() != "torch":
        return 0
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]
