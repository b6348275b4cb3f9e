"""Built-in synthetic datasets, generated in seconds with no download.

Each dataset is rendered once (seeded) as WAV files into the cache and then
loaded through exactly the same folder path as user data
(:func:`zoo.data.load_dataset` with ``"builtin:<name>"``).

``timbre``
    Two instrument-like domains, :data:`TIMBRE_DOMAINS` = ("brass", "reed"),
    playing the *same* 40 random melodies (2-4 s, MIDI 48-76, with vibrato), so
    ``brass/mel_007.wav`` and ``reed/mel_007.wav`` are a parallel pair: the
    ground truth of a conversion. The domains differ in spectral envelope
    (formant-like resonances; the reed's odd-harmonic bore), attack (brass:
    slow, brightening with loudness, slight pitch scoop; reed: fast) and noise
    (reed: strong high breath noise; brass: a little low breath noise).
    ``labels.csv`` gives ``file, domain, melody, num_notes, duration, notes``
    (notes as ``"midi/seconds ..."``) and ``melodies.json`` the note lists;
    :func:`timbre_melodies` returns them without touching files and
    :func:`render_timbre` renders any melody in any domain.

``ensemble``
    The harder instrument set: the first :data:`ENSEMBLE_MELODIES` timbre melodies
    played by six instruments, :data:`ENSEMBLE_DOMAINS`: brass and reed as above, bowed
    strings (deep vibrato, bow noise at each attack), a breathy flute, and two decaying
    ones, a plucked string (higher partials dying sooner) and a mallet (inharmonic
    modes 1 : 3.93 : 9.54). Each note's level varies by +-6 dB and every melody is
    played in its own synthetic room (RT60 0.2-0.8 s, 15-40 % reverberant energy, the
    same for all six instruments, so same-named files stay parallel pairs).

``vowels``
    Source-filter vowels (soundgen-like, 1.5 s each, 16 kHz) labelled with
    ``f0, F1, F2, F3`` in ``labels.csv`` (plus ``sweep``): four sweeps varying
    one factor with the others fixed (f0 100-300 Hz, F1 200-1000, F2 1000-2800,
    F3 2000-3200) and 100 random combinations. :func:`render_vowel` is the
    synthesiser: harmonics rolling off -9 dB/octave, 2-pole formant resonators
    with bandwidth ``50 (1 + F^2 / 6e6)`` Hz, +6 dB/octave lip radiation.

``voices``
    A parallel speech-like corpus (:mod:`zoo.data.voices`): four synthetic speakers
    ``A`` .. ``D`` (f0 range, vocal-tract length, spectral tilt, breathiness, speaking
    rate) saying the same 48 vowel-sequence utterances; ``A/utt_007.wav`` and
    ``B/utt_007.wav`` are a parallel pair that does not line up frame by frame.

``speech``
    Unlabelled speech-like audio for the source-filter VAE (:mod:`zoo.data.voices`):
    240 vowel-sequence utterances (about 1-3.7 s), each by its own random speaker
    (f0 median 90-280 Hz with intonation, vocal-tract length, tilt, breathiness, rate),
    and 240 sustained vowels (:func:`render_vowel`, f0 80-320 Hz, random F1-F3, tilt and
    breath noise), so f0 and formants vary independently and continuously. One in
    :data:`SPEECH_WHISPER_EVERY` utterances and sustained vowels is whispered (noise
    excitation only), as real speech has unvoiced frames: the VAE then learns to decode
    noise-excited spectra, which whispering (removing the f0 subspace) relies on. No
    ``labels.csv`` is written (nothing is needed for training); each utterance's voice,
    ``whisper`` included, is its row of :func:`zoo.data.voices.speech_table`.
"""

import csv
import io
import json
from pathlib import Path

import numpy as np

from zoo.data.audio import write_audio
from zoo.data.cache import cache_root
from zoo.files import atomic_folder, atomic_write_bytes
from zoo.errors import ZooError

#: Bump when the synthesis changes: cached datasets are then regenerated.
BUILTIN_VERSION = 3

#: Rate the built-in datasets are rendered at.
BUILTIN_SAMPLE_RATE = 16000

#: Domains of ``builtin:timbre``.
TIMBRE_DOMAINS = ("brass", "reed")

#: MIDI range of the timbre melodies (inclusive).
TIMBRE_MIDI_RANGE = (48, 76)

#: Seconds every timbre rendering lasts beyond the sum of its note durations.
TIMBRE_TAIL = 0.2

#: Fixed values of the vowel sweeps: the factor named by the key varies.
VOWEL_SWEEPS = {
    "f0": {"range": (100.0, 300.0, 5.0), "fixed": {"f0": 150.0, "F1": 400.0, "F2": 2000.0, "F3": 2800.0}},
    "F1": {"range": (200.0, 1000.0, 20.0), "fixed": {"f0": 150.0, "F1": 400.0, "F2": 2000.0, "F3": 2800.0}},
    "F2": {"range": (1000.0, 2800.0, 50.0), "fixed": {"f0": 150.0, "F1": 400.0, "F2": 2000.0, "F3": 3200.0}},
    "F3": {"range": (2000.0, 3200.0, 40.0), "fixed": {"f0": 150.0, "F1": 400.0, "F2": 1400.0, "F3": 2800.0}},
}
VOWEL_DURATION = 1.5
VOWEL_RANDOM = 100

#: Sustained vowels of random voices in ``builtin:speech`` (beside its utterances).
SPEECH_VOWELS = 240

#: Every this many utterances and sustained vowels of ``builtin:speech``, one is whispered.
SPEECH_WHISPER_EVERY = 5


def midi_to_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


# --------------------------------------------------------------------------- timbre

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_DURATIONS = np.array([0.125, 0.25, 0.25, 0.375, 0.5, 0.5, 0.75])

# Per-domain synthesis parameters.
_TIMBRE = {
    "brass": dict(
        attack=0.07, decay=0.15, sustain=0.8, release=0.08,
        vibrato_rate=5.0, vibrato_cents=18.0, scoop_cents=-20.0,
        # dB bumps on log2 frequency: (centre Hz, gain dB, width octaves)
        peaks=[(1100.0, 14.0, 0.7), (2600.0, 5.0, 0.5)], lowpass=3200.0, lowpass_db_oct=18.0,
        tilt=1.1, bright=0.9, odd_even_db=0.0,
        noise_db=-36.0, noise_band=(400.0, 2500.0), noise_attack_db=0.0,
    ),
    "reed": dict(
        attack=0.015, decay=0.05, sustain=0.9, release=0.04,
        vibrato_rate=5.6, vibrato_cents=12.0, scoop_cents=0.0,
        peaks=[(550.0, 6.0, 0.8), (2900.0, 12.0, 0.45)], lowpass=4500.0, lowpass_db_oct=24.0,
        tilt=1.0, bright=0.0, odd_even_db=-14.0,
        noise_db=-24.0, noise_band=(2000.0, 6500.0), noise_attack_db=6.0,
    ),
    # The other instruments of ``builtin:ensemble``.
    "strings": dict(
        attack=0.09, decay=0.2, sustain=0.85, release=0.12,
        vibrato_rate=6.0, vibrato_cents=30.0, scoop_cents=-10.0,
        peaks=[(280.0, 8.0, 0.5), (1000.0, 6.0, 0.6), (3000.0, 4.0, 0.5)], lowpass=5000.0,
        lowpass_db_oct=12.0, tilt=0.9, bright=0.3, odd_even_db=0.0,
        noise_db=-30.0, noise_band=(1500.0, 7000.0), noise_attack_db=10.0,
    ),
    "flute": dict(
        attack=0.05, decay=0.1, sustain=0.9, release=0.06,
        vibrato_rate=4.8, vibrato_cents=22.0, scoop_cents=0.0,
        peaks=[(800.0, 4.0, 1.0)], lowpass=2500.0, lowpass_db_oct=24.0,
        tilt=2.0, bright=0.5, odd_even_db=0.0,
        noise_db=-16.0, noise_band=(1000.0, 7000.0), noise_attack_db=8.0,
    ),
    # Decaying instruments: no sustain; partial k dies ``k ** 0.7`` times faster than
    # the fundamental (``partial_decay`` seconds); the mallet's modes are inharmonic.
    "pluck": dict(
        attack=0.003, decay=0.6, sustain=0.0, release=0.05,
        vibrato_rate=5.0, vibrato_cents=0.0, scoop_cents=0.0,
        peaks=[(900.0, 6.0, 0.8)], lowpass=5000.0, lowpass_db_oct=12.0,
        tilt=0.8, bright=0.0, odd_even_db=0.0, partial_decay=1.0,
        noise_db=-40.0, noise_band=(2000.0, 7000.0), noise_attack_db=20.0,
    ),
    "mallet": dict(
        attack=0.002, decay=0.35, sustain=0.0, release=0.05,
        vibrato_rate=5.0, vibrato_cents=0.0, scoop_cents=0.0,
        peaks=[], lowpass=6000.0, lowpass_db_oct=12.0,
        tilt=0.0, bright=0.0, odd_even_db=0.0, partial_decay=0.5,
        ratios=[1.0, 3.93, 9.54], ratio_db=[0.0, -8.0, -18.0],
        noise_db=-36.0, noise_band=(500.0, 5000.0), noise_attack_db=20.0,
    ),
}

#: Instruments of ``builtin:ensemble`` (the timbre domains plus four harder ones).
ENSEMBLE_DOMAINS = ("brass", "flute", "mallet", "pluck", "reed", "strings")

#: Melodies of ``builtin:ensemble`` (the first of the timbre melodies).
ENSEMBLE_MELODIES = 24


def timbre_melodies(num=40, seed=0):
    """The melodies of ``builtin:timbre``: ``{"mel_000": [(midi, seconds), ...], ...}``.

    Diatonic random walks in a random key, MIDI 48-76, note lengths from 1/8 s
    to 3/4 s, 2-4 s in all (plus a :data:`TIMBRE_TAIL` release when rendered).
    """
    rng = np.random.default_rng([int(seed), 0x6D656C])
    lo, hi = TIMBRE_MIDI_RANGE
    out = {}
    for m in range(int(num)):
        total = rng.uniform(2.0, 4.0) - TIMBRE_TAIL
        key = int(rng.integers(0, 12))
        scale = np.array([p for p in range(lo, hi + 1) if (p - key) % 12 in _MAJOR])
        pos = int(rng.integers(len(scale) // 4, 3 * len(scale) // 4))
        notes, t = [], 0.0
        while t < total - 0.1:
            dur = float(min(rng.choice(_DURATIONS), total - t))
            notes.append((int(scale[pos]), round(dur, 4)))
            t += dur
            step = int(rng.choice([-3, -2, -1, -1, 1, 1, 2, 3, 4, -4]))
            pos = int(np.clip(pos + step, 0, len(scale) - 1))
        out[f"mel_{m:03d}"] = notes
    return out


def _db_envelope(freq, p):
    """Spectral envelope of a timbre domain in dB at frequencies ``freq`` (Hz)."""
    lf = np.log2(np.maximum(freq, 1.0))
    db = np.zeros_like(freq)
    for centre, gain, width in p["peaks"]:
        db += gain * np.exp(-0.5 * ((lf - np.log2(centre)) / width) ** 2)
    over = np.maximum(lf - np.log2(p["lowpass"]), 0.0)
    db -= p["lowpass_db_oct"] * over
    return db


def render_timbre(notes, domain, sample_rate=BUILTIN_SAMPLE_RATE, seed=0, velocity_db=0.0):
    """Renders a melody as one of the :data:`TIMBRE_DOMAINS` (or
    :data:`ENSEMBLE_DOMAINS`) instruments.

    The rendering lasts ``sum(durations) + TIMBRE_TAIL`` seconds whatever the
    domain, so renderings of one melody in two domains align sample by sample
    (same pitch track up to the domain's vibrato and scoop). ``builtin:timbre``
    renders melody ``m`` of seed ``s`` with ``seed=(s, m)``; the noise is the
    only random part.

    Args:
        notes: sequence of ``(midi, seconds)``; midi may be fractional.
        domain: "brass" or "reed" (or an ensemble instrument).
        sample_rate: output rate in Hz.
        seed: int or sequence of ints for the breath noise.
        velocity_db: each note's level varies uniformly within +- this many dB
            (the same for every domain given the same ``seed``).

    Returns:
        float32 waveform, peak 0.9.
    """
    from scipy import signal

    if domain not in _TIMBRE:
        raise ValueError(f"unknown timbre domain {domain!r}; choose from {sorted(_TIMBRE)}")
    if len(notes) == 0:
        raise ValueError("a melody needs at least one note")
    p = _TIMBRE[domain]
    sr = int(sample_rate)
    midis = np.array([float(n[0]) for n in notes])
    durs = np.array([float(n[1]) for n in notes])
    onsets = np.concatenate([[0.0], np.cumsum(durs)])
    n = int(round((onsets[-1] + TIMBRE_TAIL) * sr))
    t = np.arange(n) / sr
    note_of = np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, len(notes) - 1)
    since = t - onsets[note_of]  # time since the onset of the sounding note

    # Pitch: note pitch + delayed vibrato + attack scoop, in MIDI units.
    pitch = midis[note_of].copy()
    vib_depth = p["vibrato_cents"] / 100.0 * np.clip((since - 0.15) / 0.2, 0.0, 1.0)
    pitch += vib_depth * np.sin(2 * np.pi * p["vibrato_rate"] * t)
    pitch += p["scoop_cents"] / 100.0 * np.exp(-since / 0.03)
    f0 = midi_to_hz(pitch)
    phase = np.mod(2 * np.pi * np.cumsum(f0) / sr, 2 * np.pi)

    # Amplitude: per-note attack / decay / sustain / release, monophonic (max).
    env = np.zeros(n)
    seeds = list(seed) if np.ndim(seed) else [int(seed)]
    gains = 10.0 ** (np.random.default_rng(seeds + [0x76656C]).uniform(
        -velocity_db, velocity_db, len(durs)) / 20.0) if velocity_db else np.ones(len(durs))
    for onset, dur, gain in zip(onsets[:-1], durs, gains):
        off = max(onset + dur - 0.03, onset + 0.02)  # short gap before the next note
        i0, i1 = int(onset * sr), min(n, int((off + 8 * p["release"]) * sr) + 1)
        tt = t[i0:i1] - onset
        a = np.clip(tt / p["attack"], 0.0, 1.0)
        if domain == "brass":
            a = np.sin(0.5 * np.pi * a) ** 2  # slow, smooth rise
        e = a * (p["sustain"] + (1 - p["sustain"]) * np.exp(-np.maximum(tt - p["attack"], 0) / p["decay"]))
        e *= np.exp(-np.maximum(tt - (off - onset), 0.0) / p["release"])
        env[i0:i1] = np.maximum(env[i0:i1], gain * np.where(tt >= 0, e, 0.0))

    # Harmonics, amplitudes computed at a 2 ms control rate then interpolated.
    k_max = int(0.45 * sr / midi_to_hz(midis.min() - 0.5))
    k = np.arange(1, k_max + 1)[:, None]
    if "ratios" in p:  # inharmonic modes (need the unwrapped phase)
        k = np.asarray(p["ratios"], np.float64)[:, None]
        phase = 2 * np.pi * np.cumsum(f0) / sr
    hop = max(1, sr // 500)
    ctl = np.arange(0, n // hop + 2) * hop
    f0c = np.interp(ctl, np.arange(n), f0)
    envc = np.interp(ctl, np.arange(n), env)
    freq = k * f0c[None, :]
    tilt = p["tilt"] + p["bright"] * (1.0 - envc[None, :])  # brass: brighter when loud
    db = -20 * tilt * np.log10(k) + _db_envelope(freq, p)
    if p["odd_even_db"]:
        db = db + np.where((k % 2 == 0) & (freq < 1500.0), p["odd_even_db"], 0.0)
    if "ratio_db" in p:
        db = db + np.asarray(p["ratio_db"], np.float64)[:, None]
    if "partial_decay" in p:  # higher partials die sooner after each onset
        since_c = np.interp(ctl, np.arange(n), since)
        db = db - 20 * np.log10(np.e) * since_c[None, :] * k ** 0.7 / p["partial_decay"]
    amp = (10.0 ** (db / 20.0) * (freq < 0.47 * sr)).astype(np.float32)
    pos = np.arange(n)
    idx, w = pos // hop, ((pos % hop) / hop).astype(np.float32)
    amp_full = amp[:, idx]
    amp_full += (amp[:, idx + 1] - amp_full) * w
    harm = (np.sin(k * phase[None, :]).astype(np.float32) if "ratios" in p else
            np.sin(k.astype(np.float32) * phase.astype(np.float32)[None, :]))
    y = np.einsum("kn,kn->n", amp_full, harm).astype(np.float64) * env

    # Breath / bow noise: band-passed, following the envelope, louder at attacks.
    rng = np.random.default_rng(seed if np.ndim(seed) else [int(seed)])
    lo, hi = p["noise_band"]
    sos = signal.butter(2, [lo, min(hi, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    noise /= np.sqrt(np.mean(noise ** 2)) + 1e-12
    attack_boost = 10 ** (p["noise_attack_db"] / 20.0 * np.exp(-since / 0.05))
    rms = np.sqrt(np.mean(y ** 2)) + 1e-12
    y = y + rms * 10 ** (p["noise_db"] / 20.0) * noise * env * attack_boost
    y = y / (np.max(np.abs(y)) + 1e-12) * 0.9
    return y.astype(np.float32)


def _generate_timbre(folder, seed):
    melodies = timbre_melodies(seed=seed)
    rows = []
    for m, (name, notes) in enumerate(melodies.items()):
        notes_text = " ".join(f"{p}/{d:g}" for p, d in notes)
        for domain in TIMBRE_DOMAINS:
            y = render_timbre(notes, domain, BUILTIN_SAMPLE_RATE, seed=(int(seed), m))
            rel = f"{domain}/{name}.wav"
            write_audio(folder / rel, y, BUILTIN_SAMPLE_RATE)
            rows.append({"file": rel, "domain": domain, "melody": name, "num_notes": len(notes),
                         "duration": round(len(y) / BUILTIN_SAMPLE_RATE, 4), "notes": notes_text})
    _write_csv(folder / "labels.csv", rows)
    text = json.dumps({k: [list(n) for n in v] for k, v in melodies.items()}, indent=1)
    atomic_write_bytes(folder / "melodies.json", lambda t: Path(t).write_text(text))


def room_reverb(y, sample_rate, rt60, wet, seed=0):
    """``y`` in a synthetic room: convolved with exponentially decaying, low-passed
    noise (decay of 60 dB in ``rt60`` seconds, 10 ms pre-delay), mixed ``wet`` (0-1)
    with the dry signal at equal energy, cut to ``len(y)``."""
    from scipy import signal

    sr = int(sample_rate)
    t = np.arange(int(rt60 * sr)) / sr
    rng = np.random.default_rng(seed)
    sos = signal.butter(2, 0.3 * sr, btype="lowpass", fs=sr, output="sos")
    ir = signal.sosfilt(sos, rng.standard_normal(len(t))) * 10.0 ** (-3.0 * t / rt60)
    ir = np.concatenate([np.zeros(int(0.01 * sr)), ir])
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
    tail = signal.fftconvolve(y, ir)[: len(y)]
    return np.sqrt(1.0 - wet) * y + np.sqrt(wet) * tail


def _generate_ensemble(folder, seed):
    melodies = dict(list(timbre_melodies(seed=seed).items())[:ENSEMBLE_MELODIES])
    rows = []
    for m, (name, notes) in enumerate(melodies.items()):
        room = np.random.default_rng([int(seed), m, 0x726F6F])
        rt60, wet = float(room.uniform(0.2, 0.8)), float(room.uniform(0.15, 0.4))
        notes_text = " ".join(f"{p}/{d:g}" for p, d in notes)
        for domain in ENSEMBLE_DOMAINS:
            y = render_timbre(notes, domain, BUILTIN_SAMPLE_RATE, seed=(int(seed), m),
                              velocity_db=6.0)
            y = room_reverb(y, BUILTIN_SAMPLE_RATE, rt60, wet, seed=[int(seed), m])
            y = 0.9 * y / (np.max(np.abs(y)) + 1e-12)
            rel = f"{domain}/{name}.wav"
            write_audio(folder / rel, y, BUILTIN_SAMPLE_RATE)
            rows.append({"file": rel, "domain": domain, "melody": name, "num_notes": len(notes),
                         "duration": round(len(y) / BUILTIN_SAMPLE_RATE, 4),
                         "rt60": round(rt60, 3), "wet": round(wet, 3), "notes": notes_text})
    _write_csv(folder / "labels.csv", rows)


def parse_notes(text):
    """Inverse of the ``notes`` column of the timbre ``labels.csv``: ``"60/0.25 62/0.5"``."""
    out = []
    for item in str(text).split():
        p, d = item.split("/")
        out.append((int(p), float(d)))
    return out


# --------------------------------------------------------------------------- vowels


def formant_bandwidth(freq):
    """Formant bandwidth in Hz used by :func:`render_vowel`: ``50 (1 + F^2 / 6e6)``."""
    return 50.0 * (1.0 + np.asarray(freq, dtype=np.float64) ** 2 / 6e6)


def render_vowel(f0, formants, duration=VOWEL_DURATION, sample_rate=BUILTIN_SAMPLE_RATE,
                 *, rolloff_db=-9.0, noise_db=-40.0, voiced=True, seed=0):
    """Source-filter vowel synthesis (soundgen-like).

    Source: harmonics of a constant ``f0`` up to 0.45 ``sample_rate``, their
    amplitudes rolling off ``rolloff_db`` per octave, plus aspiration noise
    ``noise_db`` below them; a whispered vowel (``voiced=False``) has only the
    noise, at the harmonics' power (``f0`` then only seeds the noise). Filter: a
    cascade of 2-pole resonators at the ``formants`` with bandwidth
    :func:`formant_bandwidth`, unit gain at DC.
    Radiation: a first difference (+6 dB/octave). 30 ms fades at both ends.

    Args:
        f0: fundamental frequency in Hz.
        formants: formant frequencies in Hz (F1, F2, F3, ...).
        duration: seconds.
        sample_rate: Hz.
        seed: seed of the aspiration noise.

    Returns:
        float32 waveform, peak 0.9.
    """
    from scipy import signal

    sr = int(sample_rate)
    n = int(round(duration * sr))
    # One period of the harmonic source as a finely sampled wavetable (an
    # inverse FFT of the harmonic amplitudes), read at the phase of each sample.
    k = np.arange(1, int(0.45 * sr / f0) + 1)
    table_size = 8192
    spectrum = np.zeros(table_size // 2 + 1, dtype=np.complex128)
    spectrum[k] = -0.5j * table_size * k ** (rolloff_db / (20 * np.log10(2.0)))
    table = np.fft.irfft(spectrum, table_size)
    table = np.append(table, table[0])
    cycles = np.mod(float(f0) * np.arange(n) / sr, 1.0) * table_size
    i = cycles.astype(np.int64)
    src = table[i] + (table[i + 1] - table[i]) * (cycles - i)
    rng = np.random.default_rng([int(seed), int(f0 * 100)] + [int(f) for f in formants])
    noise = np.sqrt(np.mean(src ** 2)) * rng.standard_normal(n)
    src = src + 10 ** (noise_db / 20) * noise if voiced else noise
    y = src.astype(np.float64)
    for freq in formants:
        r = np.exp(-np.pi * formant_bandwidth(freq) / sr)
        a = [1.0, -2 * r * np.cos(2 * np.pi * freq / sr), r * r]
        y = signal.lfilter([sum(a)], a, y)
    y = np.diff(y, prepend=0.0)  # lip radiation
    fade = min(int(0.03 * sr), n // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    y[:fade] *= ramp
    y[n - fade:] *= ramp[::-1]
    y = y / (np.max(np.abs(y)) + 1e-12) * 0.9
    return y.astype(np.float32)


def vowel_table(seed=0):
    """Rows ``{"file", "sweep", "f0", "F1", "F2", "F3"}`` of ``builtin:vowels``."""
    rows = []
    for sweep, spec in VOWEL_SWEEPS.items():
        lo, hi, step = spec["range"]
        for j, value in enumerate(np.arange(lo, hi + step / 2, step)):
            row = dict(spec["fixed"])
            row[sweep] = float(value)
            rows.append({"file": f"sweep_{sweep}_{j:03d}.wav", "sweep": sweep, **row})
    rng = np.random.default_rng([int(seed), 0x766F77])
    for j in range(VOWEL_RANDOM):
        f0 = rng.uniform(100, 300)
        f1 = rng.uniform(250, 900)
        f2 = rng.uniform(max(1000, f1 + 400), 2600)
        f3 = rng.uniform(max(2000, f2 + 400), 3200)
        rows.append({"file": f"random_{j:03d}.wav", "sweep": "random",
                     "f0": round(f0, 2), "F1": round(f1, 1), "F2": round(f2, 1), "F3": round(f3, 1)})
    return rows


def _generate_vowels(folder, seed):
    rows = vowel_table(seed)
    for j, row in enumerate(rows):
        y = render_vowel(row["f0"], [row["F1"], row["F2"], row["F3"]], VOWEL_DURATION,
                         BUILTIN_SAMPLE_RATE, seed=(int(seed) * 100003 + j))
        write_audio(folder / row["file"], y, BUILTIN_SAMPLE_RATE)
    _write_csv(folder / "labels.csv", rows)


# --------------------------------------------------------------------------- voices


def _generate_voices(folder, seed):
    from zoo.data.voices import SAMPLE_RATE, render_utterance, voices_table

    rows = voices_table(seed)
    for row in rows:
        y = render_utterance(row["utterance"], row["domain"], SAMPLE_RATE, seed=seed)
        write_audio(folder / row["file"], y, SAMPLE_RATE)
    _write_csv(folder / "labels.csv", rows)


def _generate_speech(folder, seed):
    from zoo.data.voices import SAMPLE_RATE, render_utterance, speech_speaker, speech_table

    rows = speech_table(seed, SPEECH_WHISPER_EVERY)
    for row in rows:
        y = render_utterance(row["utterance"], row["file"], SAMPLE_RATE, seed=seed,
                             speaker=speech_speaker(row))
        write_audio(folder / row["file"], y, SAMPLE_RATE)
    # sustained vowels of random voices (another seed than builtin:vowels' random ones)
    rng = np.random.default_rng([int(seed), 0x737573])
    for j in range(SPEECH_VOWELS):
        f0 = float(np.exp(rng.uniform(np.log(80.0), np.log(320.0))))
        f1 = rng.uniform(200, 1000)
        f2 = rng.uniform(max(900, f1 + 300), 2900)
        f3 = rng.uniform(max(1900, f2 + 300), 3400)
        y = render_vowel(f0, [f1, f2, f3], float(rng.uniform(0.8, 1.6)), BUILTIN_SAMPLE_RATE,
                         rolloff_db=float(rng.uniform(-14, -6)),
                         noise_db=float(rng.uniform(-45, -25)),
                         voiced=j % SPEECH_WHISPER_EVERY != SPEECH_WHISPER_EVERY - 1,
                         seed=int(seed) * 7919 + j)
        write_audio(folder / f"vowel_{j:03d}.wav", y, BUILTIN_SAMPLE_RATE)


# --------------------------------------------------------------------------- registry

_GENERATORS = {"timbre": _generate_timbre, "ensemble": _generate_ensemble,
               "vowels": _generate_vowels,
               "voices": _generate_voices, "speech": _generate_speech}
BUILTIN_DATASETS = tuple(sorted(_GENERATORS))


def _write_csv(path, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, lambda t: Path(t).write_text(buf.getvalue()))


def builtin_path(name, seed=0, cache_dir=None):
    """The folder of a built-in dataset, generating it on first use.

    Generation writes into a temporary folder that is renamed into place, so a
    crash or a concurrent process never leaves a half-written dataset.

    Args:
        name: "timbre", "ensemble", "vowels", "voices" or "speech" (a "builtin:" prefix
            is accepted).
        seed: generation seed.
        cache_dir: cache folder (default ``$ZOO_CACHE_DIR`` or ``~/.cache/audio-zoo``).

    Returns:
        ``Path`` of ``<cache>/builtin/v<version>-seed<seed>/<name>``.
    """
    name = str(name).removeprefix("builtin:")
    if name not in _GENERATORS:
        raise ZooError(f"Unknown built-in dataset {name!r}; available: "
                       + ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS))
    parent = cache_root(cache_dir) / "builtin" / f"v{BUILTIN_VERSION}-seed{int(seed)}"
    final = parent / name
    if final.is_dir():
        return final
    with atomic_folder(final, replace=False) as tmp:
        _GENERATORS[name](tmp, int(seed))
    return final
