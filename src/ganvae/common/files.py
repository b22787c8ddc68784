"""Files: atomic writes (a crash never leaves a half-written file under the final name), checksums,
the data cache folder and the checks of an output path.

An atomic write's temporary file is named ``.<name>.<writer>-<pid>.<random>.tmp`` beside its target, where
``<writer>`` tags the machine and process namespace and ``<pid>`` the writing process: a writer killed with SIGKILL
cannot remove its own, so :func:`remove_stale_temporary_files` finds them later by that name and removes those whose
writer is gone (see there for the rule).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import platform
import re
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from ganvae.errors import FieldConfigError, GanvaeError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The rename is atomic on POSIX, so readers see either the old file or the new one,
    never a half-written file. On any failure (a full disk included) the temporary file
    is removed and the previous ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{writer_tag()}-{os.getpid()}.", suffix=".tmp",
                                    dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if _disk_full(err):
            raise GanvaeError(
                f"{path}: the disk holding {path.parent} is full, so the file could not be written; the previous "
                f"version (if any) is kept. Free some space (or write elsewhere with --out) and run the command again."
            ) from err
        raise


# an atomic write's temporary file: ".<target>.<writer>-<pid>.<8 random>.tmp", or, written before the writer was
# recorded, ".<target>.<8 random>.tmp" (tempfile.mkstemp's random part: 8 of [a-z0-9_])
TEMPORARY_NAME = re.compile(r"\.(?P<target>.+?)\.(?:(?P<writer>[0-9a-f]{6})-(?P<pid>[0-9]{1,10})\.)?[a-z0-9_]{8}\.tmp")
STALE_AFTER_SECONDS = 15 * 60  # no atomic write here takes this long (a checkpoint: seconds), so one untouched for
# longer has no writer, whatever its name says


def writer_tag() -> str:
    """Six hex digits naming this machine and process-id namespace (a container's own), so that a process id
    read back from a temporary file's name is checked only where it means the same process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # Linux: "pid:[4026531836]"
    except OSError:
        namespace = ""
    return hashlib.blake2b(f"{platform.node()} {namespace}".encode(), digest_size=3).hexdigest()


def _running(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists (True when that cannot be told)."""
    if os.name != "posix" or pid <= 0:  # Windows' os.kill ends the process; pid 0 is a process group
        return True
    try:
        os.kill(pid, 0)  # signal 0: only whether it exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; a pid beyond the system's range
        return True
    return True


def stale_temporary_files(folder: str | os.PathLike, now: float | None = None) -> list[Path]:
    """The temporary files of interrupted atomic writes in ``folder`` (not in its subfolders): regular files named
    as :func:`atomic_path` names them (:data:`TEMPORARY_NAME`), and either

    - written by a process of this machine and namespace (the name's writer tag) that no longer runs: killed
      during the write (SIGKILL, a power cut, the OOM killer), as nothing else leaves one; or
    - untouched for :data:`STALE_AFTER_SECONDS` (written elsewhere, before the writer was recorded, or by a
      process id reused since): no write here takes that long.

    A write in progress is never listed: its writer runs, and it is being written. Other files (a user's ``.tmp``,
    a name not of this pattern, a symbolic link) are never listed."""
    folder = Path(folder)
    now = time.time() if now is None else now
    here = writer_tag()
    stale = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no such folder, or not readable: nothing to clean
        return []
    for entry in entries:
        match = TEMPORARY_NAME.fullmatch(entry.name)
        try:
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:  # removed meanwhile
            continue
        orphan = match["pid"] is not None and match["writer"] == here and not _running(int(match["pid"]))
        if orphan or age > STALE_AFTER_SECONDS:
            stale.append(Path(entry.path))
    return sorted(stale)


def remove_stale_temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Remove :func:`stale_temporary_files` of ``folder``; returns those removed (one that cannot be removed is
    logged and left)."""
    removed = []
    for path in stale_temporary_files(folder):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            log.warning("%s: a temporary file left by an interrupted write could not be removed (%s)", path, err)
            continue
        removed.append(path)
    return removed


def _disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the disk is full: an OSError, or a library's wrapper of one (safetensors reports
    "No space left on device (os error 28)" in its own exception type)."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return not isinstance(err, KeyboardInterrupt) and ("os error 28" in str(err)
                                                       or "No space left on device" in str(err))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (write to a temporary file, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and rename the result over ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def md5_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$GANVAE_DATA_DIR``, else the user's cache folder (``$XDG_CACHE_HOME/ganvae``)."""
    env = os.environ.get("GANVAE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganvae"


def check_output(path: str | os.PathLike, kind: str = "file", field: str = "out", example: str | None = None) -> Path:
    """Refuse an output path that cannot be written, before any work: a folder where a file is wanted (or the
    reverse), a path under a file, or a place that does not take new files (/proc, /sys, a read-only disk).
    Writability is probed by creating and removing a temporary folder in the nearest existing parent. The error
    names ``field``, the argument that gave the path (``out``, ``separate``), for the front end to word."""
    path = Path(path).expanduser()

    def refuse(says: str, **values) -> FieldConfigError:
        return FieldConfigError(field, str(path), "{given}: " + says, reason=says.split(";")[0], values=values)

    if kind == "file" and path.is_dir():
        name = example or f"out{Path(path).suffix or '.png'}"
        raise refuse(f"is a folder; give a file name, e.g. {{given:{field}#example}}.",
                     **{f"{field}#example": str(path / name)})
    if kind == "folder" and path.exists() and not path.is_dir():
        raise refuse("is a file, not a folder; give a new or existing folder.")
    parent = path if kind == "folder" else path.parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise refuse(f"{existing} is a file, so nothing can be created under it; choose another path.")
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".ganvae-probe-").cleanup()
    except OSError as err:
        raise refuse(f"cannot create files in {existing} ({err.strerror or err}); choose a folder you can write "
                     f"to.") from None
    return path
