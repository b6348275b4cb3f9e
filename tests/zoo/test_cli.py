"""The ``zoo`` command: help, listing, a training round trip, clear one-line errors."""
import subprocess
import sys

import numpy as np
import pytest

from zoo.cli import main
from zoo.data import write_audio


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_entry_point_help_and_list():
    proc = subprocess.run([sys.executable, "-m", "zoo.cli", "--help"], capture_output=True,
                          text=True)
    assert proc.returncode == 0
    for command in ("list", "info", "train", "reconstruct", "export", "demo"):
        assert command in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "zoo.cli", "list"], capture_output=True, text=True)
    assert proc.returncode == 0 and "vae" in proc.stdout and "vae_vowels" in proc.stdout


@pytest.mark.parametrize("command", ["train", "reconstruct", "export", "demo", "sample", "info"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: zoo " + command in capsys.readouterr().out


def test_train_reconstruct_sample_export(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "vae", "--tiny", "--steps", "2", "--out", str(run),
                             "--set", "train.validation_steps=1")
    assert code == 0, err
    assert "trained to step 2" in out
    wav = tmp_path / "in.wav"
    t = np.arange(12000) / 16000
    write_audio(wav, 0.5 * np.sin(2 * np.pi * 330 * t), 16000)
    code, out, err = run_cli(capsys, "reconstruct", str(run), str(wav), str(tmp_path / "out.wav"))
    assert code == 0, err
    import soundfile as sf

    audio, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and len(audio) == 12000
    code, out, err = run_cli(capsys, "sample", str(run), str(tmp_path / "s.wav"), "--seconds", "0.5",
                             "--num", "2")
    assert code == 0 and (tmp_path / "s_1.wav").is_file()
    code, _, err = run_cli(capsys, "sample", str(run), str(tmp_path / "t.wav"), "--compile-steps")
    assert code == 2 and "--compile-steps: SpectrogramVAE has no step-by-step sampler" in err
    assert not (tmp_path / "t.wav").exists()
    code, out, err = run_cli(capsys, "info", str(run))
    assert code == 0 and "SpectrogramVAE" in out


@pytest.mark.parametrize("argv,message", [
    (["train", "no_such_model"], "unknown recipe"),
    (["train", "vae", "--set", "oops"], "SECTION.KEY=VALUE"),
    (["reconstruct", "vae", "/no/such/file.wav", "/tmp/x.wav"], "/no/such/file.wav"),
    (["convert", "travelgan", "in.wav", "o.wav", "--block-seconds", "0"], "--block-seconds"),
    (["info", "/no/such/run.keras"], "not found"),
    (["export", "/no/such/run", "--to", "/tmp/zoo-x"], "not found"),
    (["train", "--resume", "--out", "/no/such/run"], "nothing to resume"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err


def test_unreadable_audio_file_is_named(tmp_path, capsys):
    bad = tmp_path / "garbage.wav"
    bad.write_bytes(b"this is not audio")
    code, out, err = run_cli(capsys, "reconstruct", "vae", str(bad), str(tmp_path / "o.wav"))
    assert code == 2 and "garbage.wav" in err
