"""``builtin:voices``: a parallel speech-like corpus from a time-varying source-filter
synthesiser.

Four synthetic speakers (:data:`SPEAKERS`, folders ``A`` .. ``D``) "say" the same
:data:`NUM_UTTERANCES` utterances (``utt_000.wav`` ...; same name = parallel pair). An
utterance is a few "words" of 2-4 vowels with formant glides between them and pauses
between words, on an intonation contour (declination plus accents). The script of an
utterance (vowels, relative durations, pauses, contour) is fixed by its number; each
speaker renders it with its own

* f0 range (median and span of the contour, in semitones),
* vocal-tract length (every formant scaled by a factor),
* spectral tilt (dB/octave of the harmonic source),
* breathiness (aspiration noise level), and
* speaking rate (durations divided by it), so frames do not line up across speakers
  without alignment.

Rendering: a band-limited harmonic wavetable read at the running phase of the f0
contour, plus aspiration noise; a cascade of four 2-pole formant resonators whose
coefficients change every 5 ms (filter state carried across blocks); lip radiation
(first difference); 10 ms ramps at pauses. 16 kHz.
"""
import numpy as np

#: Reference vowel formants (F1, F2, F3 in Hz) of an adult male vocal tract.
VOWELS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
          "o": (570, 840, 2410), "u": (300, 870, 2240), "ae": (660, 1720, 2410)}
F4 = 3300.0

#: Speaker name -> f0 median (Hz), contour span (semitones), formant scale (vocal-tract
#: length), tilt (dB/octave), breath (aspiration noise, dB below the harmonics), rate.
SPEAKERS = {
    "A": {"f0": 110.0, "span": 4.0, "formants": 1.00, "tilt": -12.0, "breath": -34.0,
          "rate": 1.00},
    "B": {"f0": 215.0, "span": 5.0, "formants": 1.17, "tilt": -9.0, "breath": -22.0,
          "rate": 0.85},
    "C": {"f0": 145.0, "span": 3.0, "formants": 1.07, "tilt": -14.0, "breath": -38.0,
          "rate": 1.15},
    "D": {"f0": 250.0, "span": 6.0, "formants": 1.24, "tilt": -10.0, "breath": -27.0,
          "rate": 0.95},
}
NUM_UTTERANCES = 48
SAMPLE_RATE = 16000
BLOCK = 80  # samples per filter update (5 ms)


def utterance_script(number, seed=0):
    """The speaker-independent script of utterance ``number``: ``segments``, a list of
    ``(kind, seconds, vowel)`` with kind ``"vowel"``, ``"glide"`` (to the next vowel) or
    ``"pause"``, and ``accents``, the contour's accent positions (0-1) and sizes."""
    rng = np.random.default_rng([int(seed), 0x766F6963, int(number)])
    names = sorted(VOWELS)
    segments = [("pause", 0.15, None)]
    for w in range(int(rng.integers(2, 4))):
        if w:
            segments.append(("pause", float(rng.uniform(0.08, 0.22)), None))
        for v in range(int(rng.integers(2, 5))):
            if v:
                segments.append(("glide", float(rng.uniform(0.04, 0.08)), None))
            segments.append(("vowel", float(rng.uniform(0.10, 0.26)),
                             names[int(rng.integers(len(names)))]))
    segments.append(("pause", 0.12, None))
    accents = [(float(p), float(s)) for p, s in zip(rng.uniform(0.1, 0.8, 2),
                                                     rng.uniform(0.3, 1.0, 2))]
    return {"segments": segments, "accents": accents}


def _tracks(script, speaker, sr):
    """Per-sample f0 (Hz), formants [n, 4] (Hz) and voicing gain [n] of a script."""
    rate = speaker["rate"]
    segs = script["segments"]
    lengths = [max(1, int(round(sec / rate * sr))) for _, sec, _ in segs]
    n = int(sum(lengths))
    formants = np.zeros((n, 4))
    gain = np.zeros(n)
    pos = 0
    for k, ((kind, _, vowel), length) in enumerate(zip(segs, lengths)):
        span = slice(pos, pos + length)
        if kind == "vowel":
            formants[span, :3] = VOWELS[vowel]
            gain[span] = 1.0
        elif kind == "glide":
            before = VOWELS[segs[k - 1][2]]
            after = VOWELS[segs[k + 1][2]]
            t = np.linspace(0.0, 1.0, length)[:, None]
            formants[span, :3] = (1 - t) * np.array(before) + t * np.array(after)
            gain[span] = 1.0
        pos += length
    formants[:, 3] = F4
    # pauses keep the neighbouring vowel's formants (no jump at the ramps)
    voiced = gain > 0
    idx = np.where(voiced, np.arange(n), 0)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(voiced))
    idx[:first] = first
    formants = formants[idx] * speaker["formants"]
    # gain ramps of 10 ms at every edge
    ramp = int(0.01 * sr)
    kernel = np.hanning(2 * ramp + 1)
    gain = np.convolve(gain, kernel / kernel.sum(), mode="same")
    # contour: declination of 3 semitones plus two accents, scaled by the speaker's span
    t = np.linspace(0.0, 1.0, n)
    semitones = 1.5 - 3.0 * t
    for p, size in script["accents"]:
        semitones += 2.5 * size * np.exp(-0.5 * ((t - p) / 0.07) ** 2)
    f0 = speaker["f0"] * 2.0 ** (semitones * speaker["span"] / 4.0 / 12.0)
    return f0, formants, gain


def random_speaker(rng):
    """A random voice in the ranges of :data:`SPEAKERS` and beyond (f0 median 90-280 Hz,
    span 2-8 semitones, vocal tract 0.9-1.3, tilt -15..-8 dB/octave, breath -40..-22 dB,
    rate 0.8-1.2), for ``builtin:speech``."""
    return {"f0": float(np.exp(rng.uniform(np.log(90.0), np.log(280.0)))),
            "span": float(rng.uniform(2.0, 8.0)), "formants": float(rng.uniform(0.9, 1.3)),
            "tilt": float(rng.uniform(-15.0, -8.0)), "breath": float(rng.uniform(-40.0, -22.0)),
            "rate": float(rng.uniform(0.8, 1.2))}


def render_utterance(number, speaker_name, sample_rate=SAMPLE_RATE, seed=0, speaker=None):
    """Render utterance ``number`` in the voice of ``speaker_name`` (one of
    :data:`SPEAKERS`, or any name with ``speaker``, a dict of the same keys; a true
    ``"whisper"`` key replaces the harmonic source by noise of the same power); float32,
    peak 0.9."""
    from scipy import signal

    from zoo.data.builtin import formant_bandwidth

    speaker = SPEAKERS[speaker_name] if speaker is None else speaker
    sr = int(sample_rate)
    f0, formants, gain = _tracks(utterance_script(number, seed), speaker, sr)
    n = len(f0)
    # band-limited harmonic source (harmonics below 0.45 sr at the highest f0)
    k = np.arange(1, int(0.45 * sr / f0.max()) + 1)
    size = 8192
    spectrum = np.zeros(size // 2 + 1, dtype=np.complex128)
    spectrum[k] = -0.5j * size * k ** (speaker["tilt"] / (20 * np.log10(2.0)))
    table = np.fft.irfft(spectrum, size)
    table = np.append(table, table[0])
    phase = np.mod(np.cumsum(f0) / sr, 1.0) * size
    i = phase.astype(np.int64)
    src = table[i] + (table[i + 1] - table[i]) * (phase - i)
    rng = np.random.default_rng([int(seed), 0x627265, int(number), ord(speaker_name[0])])
    noise = rng.standard_normal(n) * np.sqrt(np.mean(src ** 2))
    x = (noise if speaker.get("whisper") else src + noise * 10 ** (speaker["breath"] / 20))
    x = x * gain
    # time-varying resonator cascade, coefficients per 5 ms block, state carried
    starts = np.arange(0, n, BLOCK)
    freq = formants[np.minimum(starts + BLOCK // 2, n - 1)]          # [blocks, 4]
    r = np.exp(-np.pi * formant_bandwidth(freq) / sr)
    a1, a2 = -2 * r * np.cos(2 * np.pi * freq / sr), r * r
    sos = np.stack([1.0 + a1 + a2, np.zeros_like(r), np.zeros_like(r), np.ones_like(r),
                    a1, a2], axis=-1)                                 # unit gain at DC
    y = np.empty(n)
    state = np.zeros((formants.shape[1], 2))
    for b, start in enumerate(starts):
        y[start:start + BLOCK], state = signal.sosfilt(sos[b], x[start:start + BLOCK],
                                                        zi=state)
    y = np.diff(y, prepend=0.0)
    y = y / (np.max(np.abs(y)) + 1e-12) * 0.9
    return y.astype(np.float32)


def voices_table(seed=0):
    """Rows of ``labels.csv``: ``file, domain, utterance, vowels, seconds, f0_median``."""
    rows = []
    for name, spk in SPEAKERS.items():
        for u in range(NUM_UTTERANCES):
            script = utterance_script(u, seed)
            vowels = " ".join(v for kind, _, v in script["segments"] if kind == "vowel")
            seconds = sum(sec for _, sec, _ in script["segments"]) / spk["rate"]
            rows.append({"file": f"{name}/utt_{u:03d}.wav", "domain": name, "utterance": u,
                         "vowels": vowels, "seconds": round(seconds, 3),
                         "f0_median": spk["f0"]})
    return rows


#: Utterances of ``builtin:speech``, each by its own random speaker.
NUM_SPEECH = 240


def speech_table(seed, whisper_every):
    """The voice of each ``builtin:speech`` utterance (no file holds them): ``file``,
    ``utterance``, the speaker's settings (:func:`random_speaker`) and ``whisper`` (1 for
    one utterance in ``whisper_every``, rendered without voicing)."""
    rng = np.random.default_rng([int(seed), 0x737065])
    rows = []
    for k in range(NUM_SPEECH):
        speaker = random_speaker(rng)
        rows.append({"file": f"speech_{k:03d}.wav", "utterance": int(rng.integers(10 ** 6)),
                     **{key: round(v, 3) for key, v in speaker.items()},
                     "whisper": int(k % whisper_every == whisper_every - 1)})
    return rows


def speech_speaker(row):
    """The speaker dict :func:`render_utterance` takes, from a :func:`speech_table` row."""
    return {k: row[k] for k in ("f0", "span", "formants", "tilt", "breath", "rate", "whisper")}
