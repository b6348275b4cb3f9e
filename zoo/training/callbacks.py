"""Training callbacks: atomic step checkpoints with a NaN guard, audio + PNG samples,
history CSV."""
import math
import time
from pathlib import Path

import keras
import numpy as np

from zoo.files import atomic_save_model, atomic_write_text
from zoo.training.checkpoint import write_state


class RunCheckpoint(keras.callbacks.Callback):
    """Every ``every`` steps write ``checkpoint.keras`` (model + optimizer) and ``state.json``.

    A NaN/Inf loss stops training at once and records where; nothing is written
    after the last finite step, so the last checkpoint stays good.

    Args:
        run_dir: the run folder.
        start_step: global step training (re)starts from.
        every: checkpoint interval in steps.
        steps_per_epoch: to record the epoch in ``state.json``.
    """

    def __init__(self, run_dir, start_step, every, steps_per_epoch):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.step = int(start_step)
        self.every = max(1, int(every))
        self.steps_per_epoch = int(steps_per_epoch)
        self.diverged = None  # (step, loss) once the loss is not finite
        self.last_saved = None
        self._started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.diverged = (self.step, loss)
            self.model.stop_training = True
            return
        if self.step % self.every == 0:
            self.save(loss)

    def save(self, loss=None):
        self.model.sync_state()
        if not self.model.weights_finite():
            self.diverged = (self.step, float("nan"))
            self.model.stop_training = True
            return
        atomic_save_model(self.model, self.run_dir / "checkpoint.keras")
        self.last_saved = self.step
        write_state(self.run_dir, step=self.step, epoch=self.step // self.steps_per_epoch,
                    loss=loss, seconds=round(time.time() - self._started, 1))


class AudioSamples(keras.callbacks.Callback):
    """At each epoch end write the model's audio examples as WAV files and a spectrogram PNG.

    The model provides ``audio_examples(clips) -> {label: [n, samples] array}``
    (e.g. input, reconstruction, prior sample). Files go to
    ``<run>/samples/epoch_<NNN>/``.
    """

    def __init__(self, run_dir, clips, sample_rate):
        super().__init__()
        self.run_dir, self.clips, self.sample_rate = Path(run_dir), clips, int(sample_rate)

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training and not self.model.weights_finite():
            return
        write_examples(self.model, self.clips, self.sample_rate,
                       self.run_dir / "samples" / f"epoch_{epoch + 1:03d}")


def write_examples(model, clips, sample_rate, folder):
    """Write ``model.audio_examples(clips)`` as WAVs plus one PNG per clip; returns the folder."""
    from zoo.audio.plots import save_spectrograms
    from zoo.data import write_audio

    model.sync_state()
    examples = {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in
                model.audio_examples(clips).items()}
    folder = Path(folder)
    for label, waves in examples.items():
        for i, wave in enumerate(waves):
            write_audio(folder / f"{label}_{i}.wav", wave, sample_rate)
    for i in range(len(clips)):
        save_spectrograms(folder / f"spectrogram_{i}.png",
                          {label: waves[i] for label, waves in examples.items() if i < len(waves)},
                          sample_rate)
    return folder


class HistoryCSV(keras.callbacks.Callback):
    """``history.csv``: one row per epoch, columns the union of every epoch's logs.

    Unlike ``keras.callbacks.CSVLogger`` (whose columns are fixed by the first epoch
    it sees), a run whose metrics change (RAVE's stage 2 adds adversarial losses)
    keeps every value: when new keys appear the file is rewritten with the wider
    header, earlier rows getting empty cells. Rows are appended across resumed runs;
    every write is atomic.
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        import csv
        import io

        rows, keys = [], ["epoch"]
        if self.path.is_file():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                keys = list(reader.fieldnames or keys)
                rows = list(reader)
        row = {"epoch": epoch, **{k: float(np.asarray(v)) for k, v in (logs or {}).items()}}
        keys += [k for k in row if k not in keys]
        rows.append(row)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=keys, restval="")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, out.getvalue())
