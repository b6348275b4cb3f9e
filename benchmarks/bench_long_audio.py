"""Peak memory and speed of ``zoo convert`` on long files: streamed blocks vs in memory.

Writes brass melodies of ``builtin:timbre`` (repeated, written block by block) into
WAV files of each requested length, then converts each with the shipped TraVeLGAN
in a fresh process and reads that process's peak resident memory (``wait4``):

- ``zoo convert travelgan in.wav out.wav`` (crossfaded 60 s blocks,
  ``zoo.data.streaming``);
- the in-memory path it replaced (``load_audio`` -> ``model.convert`` ->
  ``write_audio``), for the shorter files only unless ``--in-memory-all``.

The streamed figure of the longest file is recorded against the shortest one's (the
ratio is the growth: 1.0 = constant memory).

Usage::

    KERAS_BACKEND=jax python benchmarks/bench_long_audio.py [--seconds 120 7200] [--json PATH]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import results_path, script_report  # noqa: E402
from benchmarks._records import record  # noqa: E402

IN_MEMORY = """
import sys, numpy as np, zoo
from zoo.data import load_audio, write_audio
model = zoo.load("travelgan", weights="timbre")
x = load_audio(sys.argv[1], model.sample_rate)
write_audio(sys.argv[2], np.clip(model.convert(x), -1, 1), model.sample_rate)
"""


def write_long_file(path, seconds, sample_rate=16000):
    """``seconds`` of brass melodies (the built-in renders, repeated), written in blocks."""
    import numpy as np
    import soundfile as sf

    from zoo.data import builtin_path

    clips = [sf.read(p, dtype="float32")[0] for p in
             sorted((builtin_path("timbre") / "brass").glob("*.wav"))[:8]]
    clip = np.concatenate(clips)
    total = int(seconds * sample_rate)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as f:
        done = 0
        while done < total:
            piece = clip[:total - done]
            f.write(piece)
            done += len(piece)


def run_measured(argv):
    """Run ``argv``; ``(peak RSS in MiB, wall seconds)`` of that process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode()[-2000:]
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {err}")
    return usage.ru_maxrss / 1024.0, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[120.0, 7200.0])
    parser.add_argument("--in-memory-all", action="store_true",
                        help="also run the in-memory path on the longest file")
    parser.add_argument("--json", default=str(results_path("long_audio")))
    args = parser.parse_args()
    lengths = sorted(args.seconds)
    rows, records = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in lengths:
            src, out = Path(tmp) / f"in_{seconds:g}.wav", Path(tmp) / "out.wav"
            write_long_file(src, seconds)
            streamed = run_measured([sys.executable, "-m", "zoo.cli", "convert", "travelgan",
                                     str(src), str(out)])
            print(f"{seconds:8.0f} s streamed : {streamed[0]:8.0f} MiB peak, "
                  f"{streamed[1]:7.1f} s wall", flush=True)
            memory = None
            if seconds < lengths[-1] or args.in_memory_all or len(lengths) == 1:
                memory = run_measured([sys.executable, "-c", IN_MEMORY, str(src), str(out)])
                print(f"{seconds:8.0f} s in memory: {memory[0]:8.0f} MiB peak, "
                      f"{memory[1]:7.1f} s wall", flush=True)
            rows[seconds] = streamed, memory
            src.unlink()
    shortest = lengths[0]
    for seconds, (streamed, memory) in rows.items():
        settings = {"file_seconds": seconds, "model": "travelgan (shipped timbre weights)",
                    "block_seconds": 60.0}
        records.append(record(
            f"peak RSS, zoo convert (streamed), {seconds:g} s file", streamed[0], "MiB",
            reference=rows[shortest][0][0] if seconds != shortest else None,
            reference_name=f"the same command on a {shortest:g} s file", settings=settings,
            note=f"wall {streamed[1]:.1f} s ({seconds / streamed[1]:.1f}x real time)"))
        if memory is not None:
            records.append(record(
                f"peak RSS, in-memory convert, {seconds:g} s file", memory[0], "MiB",
                reference=streamed[0], reference_name="zoo convert (streamed), same file",
                settings=settings, note=f"wall {memory[1]:.1f} s"))
    script_report(records, "long_audio", quick=False, json_path=args.json)


if __name__ == "__main__":
    main()
