"""Tests of the built-in synthetic datasets (zoo.data.builtin)."""

import hashlib
import json

import librosa
import numpy as np
import pytest
import soundfile as sf

from zoo.data import TIMBRE_DOMAINS, builtin_path, load_dataset, render_timbre, render_vowel
from zoo.data import timbre_melodies
from zoo.data.builtin import (
    BUILTIN_SAMPLE_RATE,
    ENSEMBLE_DOMAINS,
    ENSEMBLE_MELODIES,
    TIMBRE_MIDI_RANGE,
    TIMBRE_TAIL,
    VOWEL_SWEEPS,
    formant_bandwidth,
    midi_to_hz,
    parse_notes,
    room_reverb,
    vowel_table,
)
from zoo.dsp import voicing
from zoo.errors import ZooError

SR = BUILTIN_SAMPLE_RATE


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("builtin_cache")


@pytest.fixture(scope="module")
def timbre(cache):
    return load_dataset("builtin:timbre", SR, 16384, cache_dir=cache, progress=False)


@pytest.fixture(scope="module")
def vowels(cache):
    return load_dataset("builtin:vowels", SR, 8192, cache_dir=cache, progress=False)


def _read(path):
    y, sr = sf.read(str(path), dtype="float32")
    assert sr == SR
    return y


def _cents(a, b):
    return 1200 * np.abs(np.log2(a / b))


# --------------------------------------------------------------------------- timbre


def test_timbre_layout_and_labels(timbre, cache):
    root = builtin_path("timbre", cache_dir=cache)
    assert timbre.root == root.resolve()
    assert timbre.domains == list(TIMBRE_DOMAINS) and len(TIMBRE_DOMAINS) >= 2
    assert timbre.num_skipped == 0
    names = {d: sorted(f.split("/")[1] for f in timbre.files("all", domain=d)) for d in TIMBRE_DOMAINS}
    assert len(names["brass"]) == 40 and all(n == names["brass"] for n in names.values())
    # parallel: same validation melodies in every domain
    val = {d: sorted(f.split("/")[1] for f in timbre.files("val", domain=d)) for d in TIMBRE_DOMAINS}
    assert val["brass"] and all(v == val["brass"] for v in val.values())

    melodies = timbre_melodies()
    stored = json.loads((root / "melodies.json").read_text())
    assert {k: [tuple(n) for n in v] for k, v in stored.items()} == melodies
    lo, hi = TIMBRE_MIDI_RANGE
    for name, notes in melodies.items():
        total = sum(d for _, d in notes)
        assert 1.8 <= total <= 3.9 and all(lo <= p <= hi for p, _ in notes)
        for domain in TIMBRE_DOMAINS:
            rel = f"{domain}/{name}.wav"
            label = timbre.labels[rel]
            assert label["melody"] == name and label["domain"] == domain
            assert parse_notes(label["notes"]) == notes
            assert len(timbre.waveform(rel)) == int(round((total + TIMBRE_TAIL) * SR))


def _expected_pitch(notes, times):
    onsets = np.concatenate([[0.0], np.cumsum([d for _, d in notes])])
    idx = np.clip(np.searchsorted(onsets, times, side="right") - 1, 0, len(notes) - 1)
    since = times - onsets[idx]
    until = onsets[idx + 1] - times
    return midi_to_hz([notes[i][0] for i in idx]), (since > 0.08) & (until > 0.08)


def test_timbre_domains_play_the_same_melodies(timbre):
    melodies = timbre_melodies()
    for name in ["mel_000", "mel_027"]:
        notes = melodies[name]
        f0s, voiced = [], []
        for domain in TIMBRE_DOMAINS:
            f0, v, _ = librosa.pyin(timbre.waveform(f"{domain}/{name}.wav"), fmin=110, fmax=720,
                                    sr=SR, frame_length=2048, hop_length=512)
            f0s.append(f0)
            voiced.append(v)
        both = voiced[0] & voiced[1]
        assert both.mean() > 0.7
        agree = _cents(f0s[0][both], f0s[1][both]) < 50
        assert agree.mean() > 0.9, (name, agree.mean())
        # and both follow the written notes in their steady parts
        times = librosa.frames_to_time(np.arange(len(f0s[0])), sr=SR, hop_length=512)
        want, steady = _expected_pitch(notes, times)
        for f0, v in zip(f0s, voiced):
            m = steady & v
            assert (_cents(f0[m], want[m]) < 50).mean() > 0.9


def _mean_log_spectrum(y):
    power = np.abs(librosa.stft(y, n_fft=1024, hop_length=256)) ** 2
    return 10 * np.log10(power.mean(axis=1) + 1e-10)


def test_timbre_domains_differ_in_spectrum(timbre):
    names = [f"mel_{j:03d}" for j in range(0, 40, 5)]
    spectra = {d: np.array([_mean_log_spectrum(timbre.waveform(f"{d}/{n}.wav")) for n in names])
               for d in TIMBRE_DOMAINS}
    a, b = (spectra[d] for d in TIMBRE_DOMAINS[:2])
    between = np.abs(a.mean(0) - b.mean(0)).mean()
    within = max(np.abs(s - s.mean(0)).mean() for s in (a, b))
    assert between > 6.0, between  # dB
    assert between > 1.5 * within, (between, within)
    # every file is closer to its own domain's mean spectrum
    for own, other in ((a, b), (b, a)):
        d_own = np.abs(own - own.mean(0)).mean(1)
        d_other = np.abs(own - other.mean(0)).mean(1)
        assert np.all(d_own < d_other)
    # the attacks differ: brass rises more slowly than reed
    rise = {}
    for d in TIMBRE_DOMAINS[:2]:
        y = render_timbre([(60, 0.5)], d)
        env = np.abs(y)
        rise[d] = np.argmax(env > 0.5 * env.max()) / SR
    assert rise["brass"] > 2 * rise["reed"]


def test_render_timbre_reproduces_the_files(cache):
    root = builtin_path("timbre", cache_dir=cache)
    melodies = timbre_melodies()
    for m in (3, 17):
        name = f"mel_{m:03d}"
        for domain in TIMBRE_DOMAINS:
            y = render_timbre(melodies[name], domain, seed=(0, m))
            stored = _read(root / domain / f"{name}.wav")
            assert y.dtype == np.float32 and len(y) == len(stored)
            np.testing.assert_allclose(stored, y, atol=1.5 / 32768)
    with pytest.raises(ValueError, match="unknown timbre domain"):
        render_timbre([(60, 0.5)], "kazoo")


# --------------------------------------------------------------------------- ensemble


def test_ensemble_is_parallel_and_in_tune(cache):
    """Six instruments, the same melodies under the same names, each following the
    written pitch (librosa's pyin) through vibrato, velocity and reverb."""
    ds = load_dataset("builtin:ensemble", SR, 16384, cache_dir=cache, progress=False)
    assert ds.domains == sorted(ENSEMBLE_DOMAINS) and set(TIMBRE_DOMAINS) < set(ds.domains)
    names = {d: sorted(f.split("/")[1] for f in ds.files("all", domain=d)) for d in ds.domains}
    assert all(n == names["brass"] for n in names.values())
    assert len(names["brass"]) == ENSEMBLE_MELODIES
    melodies = timbre_melodies()
    notes = melodies["mel_004"]
    for domain in ENSEMBLE_DOMAINS:
        y = ds.waveform(f"{domain}/mel_004.wav")
        assert parse_notes(ds.labels[f"{domain}/mel_004.wav"]["notes"]) == notes
        f0, voiced, _ = librosa.pyin(y, fmin=110, fmax=720, sr=SR, frame_length=2048,
                                     hop_length=512)
        times = librosa.frames_to_time(np.arange(len(f0)), sr=SR, hop_length=512)
        want, steady = _expected_pitch(notes, times)
        m = steady & voiced
        assert m.sum() > 0.5 * steady.sum(), domain
        assert (_cents(f0[m], want[m]) < 50).mean() > 0.8, domain


def test_ensemble_instruments_decay_sustain_and_ring_as_designed():
    """A held 1.5 s note: the plucked string and mallet die away (by 20 dB or more),
    bowed strings and flute hold (within 6 dB); the mallet's second mode sits at
    3.93 f0, not at the harmonic 4 f0; velocity spreads note levels."""
    def level_db(y, t0, t1):
        return 10 * np.log10(np.mean(y[int(t0 * SR):int(t1 * SR)] ** 2) + 1e-12)

    for domain, decays in (("pluck", True), ("mallet", True), ("strings", False),
                           ("flute", False)):
        y = render_timbre([(60, 1.5)], domain).astype(np.float64)
        drop = level_db(y, 0.05, 0.25) - level_db(y, 1.2, 1.4)
        assert (drop > 20) if decays else (abs(drop) < 6), (domain, drop)
    f0 = float(midi_to_hz(57))
    y = render_timbre([(57, 1.0)], "mallet")[: SR // 2]
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    band = (freqs > 3.5 * f0) & (freqs < 4.5 * f0)
    assert abs(freqs[band][np.argmax(spectrum[band])] / f0 - 3.93) < 0.03
    notes = [(60, 0.5)] * 8
    flat, varied = (render_timbre(notes, "reed", seed=1, velocity_db=v) for v in (0.0, 6.0))
    peaks = [[np.abs(z[int((0.5 * i + 0.2) * SR):int((0.5 * i + 0.4) * SR)]).max()
              for i in range(8)] for z in (flat, varied)]
    spread = [20 * np.log10(max(p) / min(p)) for p in peaks]
    assert spread[0] < 1.0 < 3.0 < spread[1] < 12.5, spread


@pytest.mark.parametrize("rt60", [0.3, 0.7])
def test_room_reverb_decays_60_db_in_rt60(rt60):
    """Schroeder backward integration of the room's impulse response (wet only): the
    -5 to -35 dB slope (T30) extrapolates to 60 dB within 10 % of ``rt60``; the mix
    keeps the dry signal at sqrt(1 - wet)."""
    impulse = np.zeros(2 * SR)
    impulse[0] = 1.0
    ir = room_reverb(impulse, SR, rt60, wet=1.0, seed=3)
    energy = np.cumsum(ir[::-1] ** 2)[::-1]
    edc = 10 * np.log10(energy / energy[0])
    t5, t35 = np.argmax(edc < -5) / SR, np.argmax(edc < -35) / SR
    assert abs(2 * (t35 - t5) - rt60) < 0.1 * rt60, 2 * (t35 - t5)
    mixed = room_reverb(impulse, SR, rt60, wet=0.25, seed=3)
    assert mixed[0] == pytest.approx(np.sqrt(0.75))


def test_timbre_generation_is_seeded():
    a, b = timbre_melodies(seed=0), timbre_melodies(seed=0)
    assert a == b and timbre_melodies(seed=1) != a
    notes = a["mel_005"]
    np.testing.assert_array_equal(render_timbre(notes, "reed", seed=4), render_timbre(notes, "reed", seed=4))
    assert not np.array_equal(render_timbre(notes, "reed", seed=4), render_timbre(notes, "reed", seed=5))


# --------------------------------------------------------------------------- vowels


def test_vowel_labels_and_sweeps(vowels):
    assert vowels.domains == ["vowels"] and vowels.num_skipped == 0
    labels = vowels.labels
    assert len(labels) == len(vowel_table()) == len(vowels.files("all"))
    for rel, row in labels.items():
        assert set(row) >= {"f0", "F1", "F2", "F3", "sweep"}
        assert 100 <= row["f0"] <= 300 and 200 <= row["F1"] <= 1000
        assert 1000 <= row["F2"] <= 2800 and 2000 <= row["F3"] <= 3200
    for factor, spec in VOWEL_SWEEPS.items():
        rows = [r for r in labels.values() if r["sweep"] == factor]
        lo, hi, _ = spec["range"]
        values = sorted(r[factor] for r in rows)
        assert values[0] == lo and values[-1] == hi and len(rows) >= 20
        for other in {"f0", "F1", "F2", "F3"} - {factor}:
            assert {r[other] for r in rows} == {spec["fixed"][other]}  # one factor at a time
    assert VOWEL_SWEEPS["f0"]["fixed"]["F1"] == 400 and VOWEL_SWEEPS["f0"]["fixed"]["F2"] == 2000
    assert sum(r["sweep"] == "random" for r in labels.values()) >= 50


def test_vowel_f0_matches_pyin(vowels):
    files = sorted(vowels.labels)[::25]
    for rel in files:
        want = vowels.labels[rel]["f0"]
        f0, voiced, _ = librosa.pyin(vowels.waveform(rel), fmin=80, fmax=400, sr=SR,
                                     frame_length=1024, hop_length=512)
        assert voiced.mean() > 0.8
        got = np.nanmedian(f0[voiced])
        assert abs(got - want) / want < 0.02, (rel, got, want)


def _lpc_formants(y, order=10):
    """Formant estimates (Hz) from LPC roots at 8 kHz, narrow-bandwidth poles only."""
    y8 = librosa.resample(y, orig_sr=SR, target_sr=8000)
    mid = len(y8) // 2
    seg = y8[mid - 4000:mid + 4000] * np.hamming(8000)
    seg = np.append(seg[0], seg[1:] - 0.63 * seg[:-1])
    roots = np.roots(librosa.lpc(seg.astype(np.float64), order=order))
    roots = roots[np.imag(roots) > 0]
    freq = np.angle(roots) * 8000 / (2 * np.pi)
    bandwidth = -np.log(np.abs(roots)) * 8000 / np.pi
    return np.sort(freq[(freq > 90) & (bandwidth < 600)])


def test_vowel_formants_match_lpc(vowels):
    errors = {"F1": [], "F2": []}
    for rel, row in vowels.labels.items():
        if row["sweep"] not in ("F1", "F2"):
            continue
        found = _lpc_formants(vowels.waveform(rel))
        for f in errors:
            errors[f].append(np.min(np.abs(found - row[f])) / row[f])
    for f, e in errors.items():
        e = np.array(e)
        assert np.median(e) < 0.06 and np.quantile(e, 0.9) < 0.15 and e.max() < 0.3, (f, e)


def test_render_vowel_spectrum():
    """Envelope peaks at the formants; bandwidths follow 50 (1 + F^2/6e6)."""
    assert formant_bandwidth(1000) == pytest.approx(50 * (1 + 1 / 6))
    y = render_vowel(100.0, [600.0, 1700.0, 2600.0], duration=1.0)
    assert y.dtype == np.float32 and len(y) == SR and np.abs(y).max() == pytest.approx(0.9, abs=1e-6)
    spec = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(len(y) - 4000)))
    freqs = np.fft.rfftfreq(len(y) - 4000, 1 / SR)
    harmonics = np.arange(1, 60) * 100.0
    amp = np.array([spec[np.argmin(np.abs(freqs - h))] for h in harmonics])
    db = 20 * np.log10(amp / amp.max())
    peaks = [harmonics[j] for j in range(1, len(db) - 1) if db[j] > db[j - 1] and db[j] >= db[j + 1]]
    for formant in (600, 1700, 2600):
        assert min(abs(p - formant) for p in peaks) <= 100


def test_whispered_speech_has_no_pitch_but_keeps_its_formants():
    """builtin:speech's whispered vowels and utterances (noise excitation only): pyin
    finds no pitch where the voiced rendering of the same settings has one, and LPC
    still finds the formants."""
    from zoo.data.builtin import SPEECH_WHISPER_EVERY
    from zoo.data.voices import NUM_SPEECH, render_utterance, speech_speaker, speech_table

    formants = [600.0, 1700.0, 2600.0]
    voiced = render_vowel(150.0, formants, duration=1.5)
    whispered = render_vowel(150.0, formants, duration=1.5, voiced=False)
    assert voicing(voiced, SR) > 0.5 and voicing(whispered, SR) < 0.05
    found = _lpc_formants(whispered)
    for f in formants[:2]:
        assert np.min(np.abs(found - f)) / f < 0.1, (f, found)
    rows = speech_table(0, SPEECH_WHISPER_EVERY)
    assert sum(r["whisper"] for r in rows) == NUM_SPEECH // SPEECH_WHISPER_EVERY
    row = next(r for r in rows if r["whisper"])
    speaker = speech_speaker(row)
    said = render_utterance(row["utterance"], "x", speaker={**speaker, "whisper": 0})
    whispered = render_utterance(row["utterance"], "x", speaker=speaker)
    assert said.shape == whispered.shape
    assert voicing(said, SR) > 0.3 and voicing(whispered, SR) < 0.05


def test_vowel_generation_is_seeded(tmp_path, cache):
    def digest(folder):
        return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}

    original = builtin_path("vowels", cache_dir=cache)
    again = builtin_path("vowels", cache_dir=tmp_path / "other")
    assert again != original and digest(again) == digest(original)
    assert builtin_path("vowels", cache_dir=cache) == original  # not regenerated
    assert vowel_table(seed=1) != vowel_table(seed=0)
    assert vowel_table(seed=0) == vowel_table(seed=0)
    assert [p.name for p in original.parent.iterdir() if p.name.startswith(".")] == []


def test_builtin_resampled_through_the_folder_path(cache):
    ds = load_dataset("builtin:vowels", 8000, 4096, cache_dir=cache, progress=False)
    assert ds.sample_rate == 8000 and ds.source == "builtin:vowels"
    rel = "sweep_f0_000.wav"
    assert len(ds.waveform(rel)) == int(1.5 * 8000)
    assert ds.batch(0, 4).shape == (4, 4096)


def test_unknown_builtin(cache):
    with pytest.raises(ZooError, match="builtin:timbre"):
        builtin_path("nope", cache_dir=cache)
