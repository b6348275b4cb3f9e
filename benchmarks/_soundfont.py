"""Real sampled instruments for quality checks: the melodies of ``builtin:timbre``
rendered by General-MIDI soundfonts with the ``fluidsynth`` command line.

Never used by the tests (the soundfonts and fluidsynth are Debian packages:
``apt install fluidsynth musescore-general-soundfont timgm6mb-soundfont
fluid-soundfont-gm csound-soundfont``). Renders
are cached under ``$ZOO_CACHE_DIR/soundfont/<font>-<rate>/<instrument>/mel_NNN.wav``, one
folder per instrument, so ``load_dataset(folder)`` sees each instrument as a domain.
"""
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

#: Soundfonts by short name (Debian's paths).
SOUNDFONTS = {
    "musescore": "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "csound": "/usr/share/sounds/sf2/sf_GMbank.sf2",
}

#: The soundfonts' licences (for shipped models' metadata).
LICENCES = {"musescore": "MuseScore General soundfont: MIT",
            "timgm6mb": "TimGM6mb soundfont: GPL-2",
            "fluidr3": "FluidR3_GM soundfont: MIT",
            "csound": "Csound's sf_GMbank soundfont: public domain"}

#: Instrument name -> General-MIDI program (0-based). Four sustained, four decaying.
INSTRUMENTS = {
    "trumpet": 56, "clarinet": 71, "violin": 40, "flute": 73,
    "piano": 0, "guitar": 24, "harp": 46, "marimba": 12,
}


def _varlen(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def write_midi(path, notes, program, velocity=96, ppq=480, tempo_us=500000):
    """A format-0 MIDI file playing ``notes`` (``[(midi, seconds), ...]``, legato; a
    ``None`` pitch is a rest) with General-MIDI ``program`` on channel 0."""
    ticks_per_second = ppq * 1e6 / tempo_us
    events = bytearray(b"\x00\xff\x51\x03" + tempo_us.to_bytes(3, "big"))
    events += b"\x00" + bytes([0xC0, program])
    rest = 0
    for pitch, seconds in notes:
        ticks = int(round(seconds * ticks_per_second))
        if pitch is None:
            rest += ticks
            continue
        events += _varlen(rest) + bytes([0x90, int(pitch), velocity])
        events += _varlen(ticks) + bytes([0x80, int(pitch), 0])
        rest = 0
    events += _varlen(rest) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ppq)
    Path(path).write_bytes(header + b"MTrk" + struct.pack(">I", len(events)) + bytes(events))


def available(font="musescore"):
    """Whether fluidsynth and the soundfont ``font`` are installed."""
    return shutil.which("fluidsynth") is not None and Path(SOUNDFONTS[font]).is_file()


def render_set(font="musescore", sample_rate=16000, instruments=None, num_melodies=40,
               seed=0, tail=0.5):
    """Render ``num_melodies`` timbre melodies with each instrument; returns the folder.

    Args:
        font: a key of :data:`SOUNDFONTS`.
        sample_rate: rendering rate (fluidsynth's synthesis rate).
        instruments: names of :data:`INSTRUMENTS` (default: all eight).
        num_melodies: melodies per instrument (``timbre_melodies(num, seed)``).
        tail: seconds kept after the last note (the release; at most 1 s).
    """
    from zoo.data import timbre_melodies
    from zoo.data.cache import cache_root

    if not available(font):
        raise RuntimeError(f"needs fluidsynth and {SOUNDFONTS[font]} (apt install fluidsynth "
                           "musescore-general-soundfont timgm6mb-soundfont)")
    instruments = list(instruments or INSTRUMENTS)
    folder = Path(cache_root()) / "soundfont" / f"{font}-{sample_rate}-s{seed}"
    melodies = timbre_melodies(num_melodies, seed=seed)
    gap = 1.0  # seconds between melodies in the one file rendered per instrument
    with tempfile.TemporaryDirectory() as tmp:
        for name in instruments:
            out = folder / name
            if all((out / f"{mel}.wav").is_file() for mel in melodies):
                continue
            out.mkdir(parents=True, exist_ok=True)
            sequence, starts = [], []
            for notes in melodies.values():
                starts.append(sum(d for _, d in sequence))
                sequence += list(notes) + [(None, gap)]
            mid, part = Path(tmp) / f"{name}.mid", Path(tmp) / f"{name}.wav"
            write_midi(mid, sequence, INSTRUMENTS[name])
            subprocess.run(["fluidsynth", "-ni", "-q", "-r", str(sample_rate), "-g", "0.6",
                            "-F", str(part), SOUNDFONTS[font], str(mid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for (mel, notes), t0 in zip(melodies.items(), starts):
                seconds = sum(d for _, d in notes) + tail
                _cut(part, out / f"{mel}.wav", sample_rate, t0, seconds)
    return folder


def render_mix(fonts, sample_rate=16000, num_melodies=40, seed=0):
    """Several soundfonts as one data folder: ``<font>_<instrument>/`` sub-folders
    (symbolic links to :func:`render_set`'s files)."""
    fonts = list(fonts)
    if len(fonts) == 1:
        return render_set(fonts[0], sample_rate, num_melodies=num_melodies, seed=seed)
    from zoo.data.cache import cache_root

    mix = Path(cache_root()) / "soundfont" / f"{'+'.join(fonts)}-{sample_rate}-s{seed}"
    for font in fonts:
        folder = render_set(font, sample_rate, num_melodies=num_melodies, seed=seed)
        for wav in sorted(folder.glob("*/*.wav")):
            link = mix / f"{font}_{wav.parent.name}" / wav.name
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(wav)
    return mix


def render_pair(fonts, source, target, names=("brass", "reed"), sample_rate=16000,
                num_melodies=40, seed=0):
    """Two instruments as a two-domain data folder for the translation models.

    ``names[0]/`` links to the ``source`` instrument's renders and ``names[1]/`` to
    the ``target``'s (the folders sort in that order, so the model's A -> B is source ->
    target), one ``<font>_mel_NNN.wav`` per melody and soundfont in ``fonts``. Same
    melody, same file name in both domains: the true target of a conversion is the
    file of the same name in ``names[1]/``.
    """
    from zoo.data.cache import cache_root

    fonts = [fonts] if isinstance(fonts, str) else list(fonts)
    if sorted(names) != list(names):
        raise ValueError(f"names must sort source first, got {names!r}")
    from zoo.data import timbre_melodies

    pair = Path(cache_root()) / "soundfont" / (
        f"{'+'.join(fonts)}-{source}-{target}-{sample_rate}-s{seed}-n{num_melodies}")
    melodies = sorted(timbre_melodies(num_melodies, seed=seed))
    for font in fonts:
        folder = render_set(font, sample_rate, instruments=[source, target],
                            num_melodies=num_melodies, seed=seed)
        for instrument, name in zip((source, target), names):
            for mel in melodies:
                link = pair / name / f"{font}_{mel}.wav"
                if not link.exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(folder / instrument / f"{mel}.wav")
    return pair


def _cut(src, dst, sample_rate, start, seconds):
    """``seconds`` of ``src`` from ``start``, mono, peak-normalised to 0.9, as PCM-16."""
    import numpy as np
    import soundfile as sf

    y, rate = sf.read(src, dtype="float32", always_2d=True, start=int(start * sample_rate),
                      frames=int(seconds * sample_rate))
    assert rate == sample_rate, (rate, sample_rate)
    y = y.mean(axis=1)
    peak = float(np.max(np.abs(y))) or 1.0
    sf.write(dst, 0.9 * y / peak, sample_rate, subtype="PCM_16")
