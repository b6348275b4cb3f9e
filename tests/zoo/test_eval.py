"""zoo.eval: Frechet distance, the cached domain classifier, the evaluation runner and `zoo eval`.

Frechet distances are checked against closed forms and scipy.linalg.sqrtm; the
runner on stand-in models (identity, silence, shortening) whose metric values are
known, on bad input, and end to end on a tiny trained VAE and on the shipped
TraVeLGAN weights.
"""
import json
import math
import os
import re

import numpy as np
import pytest
import scipy.linalg

from zoo.cli import main
from zoo.data import load_dataset, write_audio
from zoo.engine import Capability
from zoo.errors import ZooError
from zoo.eval import (f0_correlation, f0_error_cents, f0_metrics, frechet_distance,
                      frechet_distance_gaussians, voicing_agreement)
from zoo.eval import classifier as C
from zoo.eval.runner import evaluate, format_table

SR = 16000


# ------------------------------------------------------------------ helpers
def _tone(f0, seconds, sr, bright, seed):
    """An arpeggio from ``f0`` up (four notes of 0.25 s, repeated) with vibrato; ``bright``
    sets how slowly the harmonics roll off."""
    t = np.arange(int(seconds * sr)) / sr
    notes = f0 * np.array([1.0, 1.25, 1.5, 2.0])[(t / 0.25).astype(int) % 4]
    phase = 2 * np.pi * np.cumsum(notes * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / sr
    y = sum(bright ** k * np.sin(k * phase) for k in range(1, 12))
    y = y + 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def _folder(root, sr=SR, files=3, seconds=1.5, lengths=None):
    """Two parallel domains: 'dark' (fast roll-off) and 'bright' tones of the same melodies."""
    for j in range(files):
        for domain, bright in (("bright", 0.9), ("dark", 0.3)):
            secs = (lengths or {}).get(domain, seconds)
            write_audio(root / domain / f"take_{j}.wav", _tone(180 + 10 * j, secs, sr, bright, j),
                        sr)
    return root


def _no_nan(text):
    def reject(token):
        raise AssertionError(f"eval.json contains {token}")

    return json.loads(text, parse_constant=reject)


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, float):
        yield obj


def _metric(result, task, name):
    (row,) = [r for r in result["metrics"] if r["task"] == task and r["name"] == name]
    return row


class Declared:
    """A stand-in model: declares its capabilities as the model contract asks."""

    capabilities = ()

    def supports(self, capability):
        return Capability(capability) in self.capabilities


class Identity(Declared):
    sample_rate = SR
    capabilities = (Capability.RECONSTRUCT,)

    def reconstruct(self, x):
        return x


class Silent(Identity):
    def reconstruct(self, x):
        return np.zeros_like(x)


class Shorter(Identity):
    def reconstruct(self, x):
        return x[:, :-400]


class IdentityConverter(Declared):
    sample_rate = SR
    capabilities = (Capability.CONVERT,)

    def convert(self, x):
        return x


# ------------------------------------------------------------------ Frechet distance
def test_frechet_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance_gaussians([1.5], [[4.0]], [-0.5], [[0.25]]) == pytest.approx(
        2.0 ** 2 + (2.0 - 0.5) ** 2, rel=1e-12)
    # diagonal: the 1-D form summed over dimensions
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 1.0])
    s1, s2 = np.array([1.0, 0.5, 2.0]), np.array([3.0, 0.5, 0.1])
    assert frechet_distance_gaussians(m1, np.diag(s1 ** 2), m2, np.diag(s2 ** 2)) == pytest.approx(
        np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2), rel=1e-12)


def test_frechet_full_covariance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for d in (2, 5, 16):
        a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
        s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        reference = (np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2)
                     - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
        assert frechet_distance_gaussians(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-8)


def test_frechet_of_samples_identity_and_estimate():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 4))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(x, x + 3.0) == pytest.approx(4 * 9.0, rel=1e-9)  # shift only
    # N(0, 1) vs N(1, 2^2) in 1-D: 1 + 1 = 2, estimated from samples
    a, b = rng.standard_normal(20000), 1.0 + 2.0 * rng.standard_normal(20000)
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=0.1)
    # fewer items than dimensions: singular covariances, still finite and >= 0
    assert 0.0 < frechet_distance(x[:3], x[3:6] + 1.0) < np.inf
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x[:1], x)
    with pytest.raises(ValueError, match="dims"):
        frechet_distance(x, x[:, :3])


def test_f0_metrics_match_the_single_metrics_and_report_silence():
    t = np.arange(SR) / SR
    glide = np.sin(2 * np.pi * np.cumsum(200 + 60 * t) / SR)
    shifted = np.sin(2 * np.pi * np.cumsum((200 + 60 * t) * 2 ** (1 / 12)) / SR)
    values, reasons = f0_metrics(glide, shifted, SR)
    assert reasons == {}
    assert values["f0_error_cents"] == f0_error_cents(glide, shifted, SR)
    assert values["f0_correlation"] == f0_correlation(glide, shifted, SR)
    assert values["voicing_agreement"] == voicing_agreement(glide, shifted, SR)
    assert abs(values["f0_error_cents"] - 100.0) < 15.0
    values, reasons = f0_metrics(glide, np.zeros(SR), SR)
    assert values["f0_error_cents"] is None and values["f0_correlation"] is None
    assert "silent" in reasons["f0_error_cents"]
    assert values["voicing_agreement"] == voicing_agreement(glide, np.zeros(SR), SR)


# ------------------------------------------------------------------ classifier
def test_classifier_learns_and_is_cached(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    root = _folder(tmp_path / "data", files=6)
    ds = load_dataset(str(root), SR, 2048, cache_dir=cache, progress=False)
    clf = C.domain_classifier(ds, cache_dir=cache)
    assert not clf.from_cache and clf.train_accuracy == 1.0
    for domain in ("bright", "dark"):  # the held-out (val) takes
        (rel,) = ds.files("val", domain=domain)
        clips = C.clips_of(ds.waveform(rel), SR)
        assert clf.share(clips, domain) == 1.0
    assert clf.embed(clips).shape == (len(clips), clf.hidden)
    (saved,) = (cache / "classifiers").glob("*.npz")
    mtime = saved.stat().st_mtime_ns

    def no_training(self, clips, labels):
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(C.DomainClassifier, "fit", no_training)
    again = C.domain_classifier(ds, cache_dir=cache)
    assert again.from_cache and saved.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.embed(clips), clf.embed(clips))
    monkeypatch.undo()
    # other settings, or a touched training file: a new key, trained again
    assert not C.domain_classifier(ds, cache_dir=cache, hidden=8).from_cache
    rel = ds.files("train", domain="dark")[0]
    st = os.stat(root / rel)
    os.utime(root / rel, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ds = load_dataset(str(root), SR, 2048, cache_dir=cache, progress=False)
    assert not C.domain_classifier(ds, cache_dir=cache).from_cache
    assert len(list((cache / "classifiers").glob("*.npz"))) == 3


# ------------------------------------------------------------------ runner on stand-in models
def test_identity_resampled_data_and_outputs(tmp_path):
    """22.05 kHz files are resampled to the model's 16 kHz; identity scores are exact."""
    root = _folder(tmp_path / "data", sr=22050)
    out = tmp_path / "eval"
    result = evaluate(Identity(), str(root), out=out, cache_dir=tmp_path / "cache")
    assert result["tasks"] == ["reconstruction"]
    assert result["files"]["original_sample_rates"] == {"22050": 6}
    assert any("22050 Hz to the model's 16000 Hz" in n for n in result["notes"])
    for name in ("multiscale_spectral_distance", "log_spectral_distance", "mel_distance",
                 "mel_cepstral_distortion", "f0_error_cents"):
        assert _metric(result, "reconstruction", name)["value"] == pytest.approx(0.0, abs=1e-9)
    assert _metric(result, "reconstruction", "si_sdr")["value"] == 300.0
    assert _metric(result, "reconstruction", "voicing_agreement")["value"] == 1.0
    row = _metric(result, "reconstruction", "domain_accuracy")
    assert row["value"] == row["reference"]  # the same clips as the inputs
    assert _metric(result, "reconstruction", "real_time_factor")["value"] > 0
    saved = _no_nan((out / "eval.json").read_text())
    assert saved["metrics"] == result["metrics"]
    import soundfile as sf

    wav = sf.info(result["outputs"]["examples"][0])
    assert wav.samplerate == SR and wav.duration == pytest.approx(1.5, abs=1e-3)


def test_silent_output_is_na_never_nan(tmp_path):
    root = _folder(tmp_path / "data")
    result = evaluate(Silent(), str(root), out=tmp_path / "eval", cache_dir=tmp_path / "cache")
    n = len(result["files"]["evaluated"]["reconstruction"])
    for name in ("f0_error_cents", "si_sdr"):
        row = _metric(result, "reconstruction", name)
        assert row["value"] is None and row["missing"] == row["count"] == n
        assert "silent" in row["missing_reason"]
    assert _metric(result, "reconstruction", "mel_distance")["value"] > 1.0
    saved = _no_nan((tmp_path / "eval" / "eval.json").read_text())
    assert all(math.isfinite(v) for v in _numbers(saved))
    row = _metric(saved, "reconstruction", "f0_error_cents")
    assert row["value"] is None
    assert f"n/a ({n} of {n} undefined)" in format_table(result)
    assert "nan" not in format_table(result).lower()
    assert "n/a" in (tmp_path / "eval" / "report.md").read_text()


def test_different_lengths_are_trimmed(tmp_path):
    root = _folder(tmp_path / "data")
    result = evaluate(Shorter(), str(root), out=tmp_path / "a", cache_dir=tmp_path / "cache")
    assert any("2 output(s) of another length" in n for n in result["notes"])
    assert _metric(result, "reconstruction", "mel_distance")["value"] < 0.05
    # parallel targets longer than their sources: identity conversion = unconverted source
    root = _folder(tmp_path / "pairs", lengths={"bright": 2.0})
    result = evaluate(IdentityConverter(), str(root), pairs=True, out=tmp_path / "b",
                      cache_dir=tmp_path / "cache", source_domain="dark")
    assert any("1 file(s) whose input, output or target differ" in n for n in result["notes"])
    row = _metric(result, "conversion", "mel_distance_to_target")
    assert row["value"] == row["reference"] and row["value"] > 0.1
    row = _metric(result, "conversion", "target_domain_share")
    assert row["value"] == row["reference"]
    assert _metric(result, "conversion", "f0_error_cents")["value"] == 0.0


def test_generation_prefers_real_like_samples(tmp_path):
    root = _folder(tmp_path / "data", files=6)
    ds = load_dataset(str(root), SR, 2048, cache_dir=tmp_path / "cache", progress=False)
    real = [ds.waveform(r)[:SR] for r in ds.files("train")]

    class Sampler(Declared):
        sample_rate, capabilities = SR, (Capability.SAMPLE,)

        def __init__(self, noise):
            self.noise = noise

        def sample(self, n, length, seed=None):
            if self.noise:
                return np.random.default_rng(seed).uniform(-0.5, 0.5, (n, length))
            return np.stack([real[i % len(real)][:length] for i in range(n)])

    kw = dict(out=tmp_path / "eval", cache_dir=tmp_path / "cache", write=False)
    fd_real = _metric(evaluate(Sampler(False), str(root), **kw), "generation", "frechet_distance")
    fd_noise = _metric(evaluate(Sampler(True), str(root), **kw), "generation", "frechet_distance")
    assert fd_real["value"] < fd_noise["value"] and fd_real["reference"] is not None


def test_likelihood_beside_the_unigram_prior_of_the_training_codes(tmp_path):
    """A stand-in prior whose codes are each sample's sign (2 codes) and which claims
    0.25 bits per code: the row is 0.25 beside the unigram prior's bits, recomputed here
    from the training files' clips; a conditioned prior gets each file's domain label."""
    root = _folder(tmp_path / "data", files=4)
    ds = load_dataset(str(root), SR, 2048, cache_dir=tmp_path / "cache", progress=False)

    class Prior(Declared):
        sample_rate, num_codes = SR, 2
        capabilities = (Capability.LIKELIHOOD, Capability.DOMAIN_LABELS)
        seen = []

        def index(self, domain):
            return ["bright", "dark"].index(domain)

        def codes_of(self, x):
            return (np.asarray(x) > 0).astype("int32")

        def log_likelihood(self, x, labels):
            self.seen.append(int(labels[0]))
            return np.full(len(x), 0.25)

    kw = dict(out=tmp_path / "eval", cache_dir=tmp_path / "cache", write=False)
    result = evaluate(Prior(), str(root), split="all", **kw)
    row = _metric(result, "likelihood", "bits_per_code")
    assert result["tasks"] == ["likelihood"] and row["value"] == 0.25
    train = np.concatenate([C.clips_of(ds.waveform(r), SR, per_file=2)
                            for r in ds.files("train")]) > 0
    p1 = (train.sum() + 1) / (train.size + 2)  # add-one smoothed share of code 1
    clips = [c > 0 for r in ds.files("all") for c in C.clips_of(ds.waveform(r), SR, per_file=2)]
    expected = np.mean([-np.mean(np.where(c, np.log2(p1), np.log2(1 - p1))) for c in clips])
    assert row["reference"] == pytest.approx(expected, rel=1e-9) and 0.9 < expected <= 1.0
    assert sorted(set(Prior.seen)) == [0, 1] and "uniform prior: 1.00" in row["label"]


def test_silent_and_unreadable_files_are_skipped_and_listed(tmp_path):
    root = _folder(tmp_path / "data")
    write_audio(root / "dark" / "quiet.wav", np.zeros(SR), SR)
    (root / "bright" / "broken.wav").write_bytes(b"not audio")
    result = evaluate(Identity(), str(root), write=False, cache_dir=tmp_path / "cache")
    skipped = {s["file"]: s["reason"] for s in result["files"]["skipped"]}
    assert "silent" in skipped["dark/quiet.wav"] and "unreadable" in skipped["bright/broken.wav"]
    assert any("skipped 2 unusable" in n for n in result["notes"])


@pytest.fixture(scope="module")
def tiny_vae_run(tmp_path_factory):
    from zoo.training.trainer import train

    return train("vae", tiny=True, steps=2, out=tmp_path_factory.mktemp("vae") / "run",
                 verbose=0, samples=False, overrides={"train": {"validation_steps": 1}}).run_dir


@pytest.mark.parametrize("make,message", [
    (lambda p: p.mkdir(), "No audio files found in {root}"),
    (lambda p: write_audio(p / "a" / "x.wav", np.zeros(SR), SR), "No usable audio file in {root}"),
])
def test_bad_folders_are_one_line_errors(tmp_path, capsys, monkeypatch, tiny_vae_run, make,
                                         message):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "data"
    make(root)
    code = main(["eval", str(tiny_vae_run), "--data", str(root), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert message.format(root=root.resolve()) in lines[0]


def test_models_and_folders_that_do_not_fit(tmp_path):
    root = _folder(tmp_path / "data")
    kw = dict(write=False, cache_dir=tmp_path / "cache")
    with pytest.raises(ZooError, match="nothing to evaluate"):
        evaluate(type("Nothing", (Declared,), {"sample_rate": SR})(), str(root), **kw)
    with pytest.raises(ZooError, match="one sub-folder per domain"):
        evaluate(IdentityConverter(), str(root / "dark"), **kw)
    with pytest.raises(ZooError, match="no domain 'brass'"):
        evaluate(IdentityConverter(), str(root), source_domain="brass", **kw)
    for f in (root / "dark").iterdir():
        f.rename(f.with_name("other_" + f.name))
    with pytest.raises(ZooError, match=f"--pairs: no file in {root.resolve() / 'dark'} has "):
        evaluate(IdentityConverter(), str(root), pairs=True, **kw)


# ------------------------------------------------------------------ end to end
def _check_outputs(folder):
    saved = _no_nan((folder / "eval.json").read_text())
    assert all(math.isfinite(v) for v in _numbers(saved))
    report = (folder / "report.md").read_text()
    pngs = re.findall(r"\]\(([^)]+\.png)\)", report)
    wavs = re.findall(r"\]\(([^)]+\.wav)\)", report)
    assert pngs and wavs
    for name in pngs + wavs:
        assert (folder / name).is_file(), name
    return saved, report


def test_zoo_eval_on_a_tiny_trained_vae(tiny_vae_run, capsys):
    run = tiny_vae_run
    code = main(["eval", str(run), "--data", "builtin:timbre", "--max-files", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "reconstruction" in out and "generation" in out and "mel distance" in out
    saved, report = _check_outputs(run / "eval")
    assert saved["tasks"] == ["reconstruction", "generation"]
    assert len(saved["files"]["evaluated"]["reconstruction"]) == 2
    assert {f.split("/")[0] for f in saved["files"]["evaluated"]["reconstruction"]} == {
        "brass", "reed"}
    for name in ("multiscale_spectral_distance", "log_spectral_distance", "mel_distance",
                 "mel_cepstral_distortion", "real_time_factor"):
        assert _metric(saved, "reconstruction", name)["value"] is not None, name
    assert _metric(saved, "generation", "frechet_distance")["value"] is not None
    assert "| reconstruction | mel distance [nepers] |" in report


def test_zoo_eval_pairs_with_the_shipped_travelgan(tmp_path, capsys):
    code = main(["eval", "travelgan", "--weights", "timbre", "--data", "builtin:timbre",
                 "--pairs", "--max-files", "2", "--out", str(tmp_path / "eval")])
    assert code == 0, capsys.readouterr().err
    saved, _ = _check_outputs(tmp_path / "eval")
    assert saved["tasks"] == ["conversion"] and saved["model"] == "travelgan (weights timbre)"
    row = _metric(saved, "conversion", "mel_distance_to_target")
    assert row["count"] == 2 and row["value"] < row["reference"]
    row = _metric(saved, "conversion", "mcd_dtw_to_target")
    assert row["value"] < row["reference"]
    row = _metric(saved, "conversion", "target_domain_share")
    assert row["value"] >= 0.75 and row["reference"] <= 0.25
    row = _metric(saved, "conversion", "frechet_distance_to_target")
    assert row["value"] < row["reference"]
    assert _metric(saved, "conversion", "f0_error_cents")["value"] < 50.0


def test_eval_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0 and "--pairs" in capsys.readouterr().out
