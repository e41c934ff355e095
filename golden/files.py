"""Writing files safely: nothing half written, nothing overwritten that the command did not make.

Every file the project's commands write goes through :func:`atomic_write` (or
:func:`write_bytes` / :func:`write_text` on top of it): the data go to a temporary file beside
the target, which is renamed over the target only when complete, so an interrupted run leaves
either the old file or the new one, never half a file. :func:`check_output` refuses an output
path that is a directory, equal to one of the inputs, or (without ``force``) an existing file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import SpikestreamError

__all__ = ["OutputPathError", "atomic_write", "write_bytes", "write_text", "save_figure", "check_output", "same_file"]


class OutputPathError(SpikestreamError):
    """An output path the command refuses to write (a directory, an input, an existing file)."""


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **open_kwargs):
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` on success.

    The parent folder is created. The file gets the permissions of a plain ``open`` (``0o666``
    less the umask), not the owner-only ones of a temporary file. On an exception inside the
    ``with`` block the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    """The process's umask (read by setting it, so set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_write`; returns the path."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`; returns the path."""
    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return Path(path)


def save_figure(fig, path, **savefig_kwargs) -> Path:
    """``fig.savefig`` through :func:`atomic_write`, in the format the suffix names; returns the path."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
    return path


def same_file(a, b) -> bool:
    """Whether two paths name the same file (also through links; false when ``b`` does not exist)."""
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(path, *, inputs=(), force: bool = True, what: str = "output") -> Path:
    """Refuse an output ``path`` that is a directory, one of ``inputs``, or (``force=False``) an
    existing file. Returns the path.

    Raises
    ------
    OutputPathError
        Naming the path and what to do instead.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what} {path}: is a directory; give a file name inside it")
    for source in inputs:
        if Path(source).resolve() == path.resolve() or same_file(source, path):
            raise OutputPathError(f"{what} {path}: is also an input file; writing it would destroy the input")
    if not force and path.exists():
        raise OutputPathError(f"{what} {path}: exists; pass --force to overwrite it, or pick another name")
    return path
