"""Atomic file and folder writes: a crash or a kill mid-write never leaves a half
file where a good one was.

Every writer here writes to a temporary name in the target's folder, flushes it to
disk, then renames it over the target with ``os.replace`` (atomic on POSIX and
Windows). Checkpoints, exports, caches, reports and the built-in datasets all write
through these helpers; new files get the permissions the user's umask allows, as
``open()`` would give them (``tempfile`` alone would make them private).
"""
import ctypes
import errno
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


#: a run folder's final model and its last checkpoint, in the order a run is loaded
RUN_FINAL = "model.keras"
RUN_CHECKPOINT = "checkpoint.keras"


def run_model_file(path):
    """The ``.keras`` file of ``path``: the file itself, or a run folder's final model
    (else its last checkpoint); ``FileNotFoundError`` naming the path otherwise."""
    path = Path(path)
    if path.is_dir():
        for name in (RUN_FINAL, RUN_CHECKPOINT):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path}: not a run folder (no {RUN_FINAL} or {RUN_CHECKPOINT})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    return path


def current_umask():
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chmod_default(path, directory=False):
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def atomic_write_bytes(path, writer):
    """Write a file atomically: ``writer(tmp_path)`` fills a temporary file that then
    replaces ``path``. The folder is created if needed.

    Args:
        path: target file.
        writer: callable taking the temporary path (a ``str``) and writing it.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _chmod_default(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_save_model(model, path):
    """``model.save(path)`` (a ``.keras`` file with optimizer state), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keras insists on the .keras suffix, so the temporary name keeps it.
    tmp = path.parent / f".{path.stem}.{os.getpid()}.tmp.keras"
    try:
        model.save(tmp)
        _chmod_default(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_temporaries(folder):
    """Delete what killed atomic writes left in ``folder`` and below (hidden
    ``.<name>.*.tmp`` / ``.<name>.*.tmp.keras`` files, ``.<name>.tmp*`` folders).

    Only for a folder no other process is writing (a run being resumed).

    Returns:
        The number of entries removed.
    """
    removed = 0
    for stale in sorted(Path(folder).rglob(".*.tmp*"), reverse=True):
        if not stale.exists():
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed += 1
    return removed


@contextmanager
def atomic_folder(out_dir, replace=True):
    """Build a folder in a temporary sibling; it becomes ``out_dir`` on success.

    Args:
        out_dir: the folder to write.
        replace: replace an existing ``out_dir`` (kept until the new one is
            complete); with ``False`` an ``out_dir`` that appeared meanwhile (another
            process won a race to write the same thing) is kept and the new copy
            dropped.

    Leftovers of earlier killed writes (``.<name>.tmp*``) are removed first when
    replacing (a concurrent writer's may be in use otherwise).

    Example::

        with atomic_folder("exports/vae") as tmp:
            (tmp / "metadata.json").write_text("{}")
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _restore_old(out_dir)
    if replace:
        for stale in out_dir.parent.glob(f".{out_dir.name}.tmp*"):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp"))
    _chmod_default(tmp, directory=True)
    try:
        yield tmp
        if replace:
            replace_folder(tmp, out_dir)
        else:
            try:
                os.replace(tmp, out_dir)
            except OSError:
                if not out_dir.is_dir():  # not a lost race: a real failure
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(src, dst):
    """Move folder ``src`` to ``dst``; an existing ``dst`` is kept until the move succeeded.

    On Linux the two folders are swapped in one atomic step (``renameat2`` with
    ``RENAME_EXCHANGE``), so ``dst`` is a complete folder at every moment, even under
    SIGKILL. Elsewhere the old ``dst`` is first moved to ``.<name>.old``; a kill between
    the two renames leaves it there, and the next :func:`atomic_folder` on ``dst`` puts
    it back before anything else.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and exchange_paths(src, dst):
        shutil.rmtree(src, ignore_errors=True)  # now holds the old folder
        return
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _restore_old(out_dir):
    """Undo a kill between :func:`replace_folder`'s two renames (no ``out_dir``, an old copy)."""
    old = out_dir.with_name(f".{out_dir.name}.old")
    if old.is_dir() and not out_dir.exists():
        os.replace(old, out_dir)


def exchange_paths(a, b):
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False, having changed nothing, where the platform, C library or file
    system cannot; raises ``OSError`` for any other failure.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a))
