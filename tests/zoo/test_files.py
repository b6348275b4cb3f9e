"""zoo.files: atomic writes keep the old file on failure, honour the umask, and folder
writes clean up what a killed write left behind."""
import os
import stat

import pytest

from zoo.files import atomic_folder, atomic_write_bytes, atomic_write_text


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_replaces_or_keeps_and_honours_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a" / "f.txt", "one")
        assert path.read_text() == "one" and _mode(path) == 0o644

        def failing(tmp):
            open(tmp, "w").write("half")
            raise RuntimeError("killed")

        with pytest.raises(RuntimeError):
            atomic_write_bytes(path, failing)
        assert path.read_text() == "one"
        assert [p.name for p in path.parent.iterdir()] == ["f.txt"]  # no temporary left
        with atomic_folder(tmp_path / "out") as tmp:
            (tmp / "x").write_text("1")
        assert _mode(tmp_path / "out") == 0o755 and (tmp_path / "out" / "x").read_text() == "1"
    finally:
        os.umask(old)


def test_atomic_folder_removes_stale_temporaries_and_keeps_the_old_on_failure(tmp_path):
    stale = tmp_path / ".export.tmpabc123"
    stale.mkdir()
    (stale / "junk").write_text("left by a killed export")
    with atomic_folder(tmp_path / "export") as tmp:
        (tmp / "v").write_text("1")
    assert not stale.exists()
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "export") as tmp:
            (tmp / "v").write_text("2")
            raise RuntimeError("killed")
    assert (tmp_path / "export" / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_atomic_folder_without_replace_keeps_a_concurrent_winner(tmp_path):
    with atomic_folder(tmp_path / "data", replace=False) as tmp:
        (tmp / "v").write_text("first")
    with atomic_folder(tmp_path / "data", replace=False) as tmp:
        (tmp / "v").write_text("second")
    assert (tmp_path / "data" / "v").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_exchange_paths_swaps_two_folders_or_changes_nothing(tmp_path):
    from zoo.files import exchange_paths

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "v").write_text(name)
    swapped = exchange_paths(tmp_path / "a", tmp_path / "b")
    expected = {"a": "b", "b": "a"} if swapped else {"a": "a", "b": "b"}
    assert {n: (tmp_path / n / "v").read_text() for n in "ab"} == expected
    if swapped:  # where it is supported, a real failure is an error, not "unsupported"
        with pytest.raises(OSError):
            exchange_paths(tmp_path / "missing", tmp_path / "a")


def test_a_kill_between_the_fallback_renames_loses_no_export(tmp_path, monkeypatch):
    """Without an atomic swap the old folder is moved aside first; killed right
    then, the next write puts it back before it starts (and keeps it on failure)."""
    import zoo.files as files

    with atomic_folder(tmp_path / "export") as tmp:
        (tmp / "v").write_text("1")
    monkeypatch.setattr(files, "exchange_paths", lambda a, b: False)
    real_replace, calls = os.replace, []

    def killed_after_first_rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt("SIGKILL")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", killed_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(tmp_path / "export") as tmp:
            (tmp / "v").write_text("2")
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert not (tmp_path / "export").exists()
    assert (tmp_path / ".export.old" / "v").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "export") as tmp:
            raise RuntimeError("this write fails too")
    assert (tmp_path / "export" / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
