"""Run folders: where a training run writes its config, command line, versions and log."""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from ganvae.common.device import machine_description
from ganvae.common.files import atomic_write_text, remove_stale_temporary_files
from ganvae.config import ExperimentConfig

log = logging.getLogger(__name__)

LOGGER_NAME = "ganvae"


class _CurrentStderr(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at each message (it may be replaced after set-up, by a
    test's capture or a notebook), never to a stream closed since."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(level: int = logging.INFO) -> None:
    """Console logging for the ``ganvae`` logger (the CLI calls this; the library never does)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not any(getattr(h, "_ganvae_console", False) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._ganvae_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    for h in logger.handlers:
        if getattr(h, "_ganvae_console", False):
            h.setLevel(level)


def add_file_log(path: Path) -> logging.Handler:
    """Also log (at DEBUG) to ``path``; returns the handler so the caller can remove it."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    if logger.level > logging.DEBUG or logger.level == logging.NOTSET:
        logger.setLevel(min(logger.level or logging.INFO, logging.INFO))
    return handler


def default_run_dir(model_name: str, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{model_name}-{stamp}"
    n = 1
    while path.exists():  # two runs in the same second
        n += 1
        path = Path(root) / f"{model_name}-{stamp}-{n}"
    return path


def environment_info() -> dict:
    import torch

    from ganvae._version import __version__

    return {
        "ganvae": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": machine_description(),
    }


def write_run_metadata(run_dir: Path, cfg: ExperimentConfig, argv: list[str] | None = None,
                       extra: dict | None = None) -> None:
    """Write ``config.yaml``, ``command.txt`` and ``run.json`` (seed, versions, machine) into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
    argv = sys.argv if argv is None else argv
    atomic_write_text(run_dir / "command.txt", shlex.join(["ganvae", *argv[1:]]) + "\n")
    meta = {
        "model_name": cfg.model_name,
        "seed": cfg.train.seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **environment_info(),
        **(extra or {}),
    }
    atomic_write_text(run_dir / "run.json", json.dumps(meta, indent=2) + "\n")


def record_resume(run_dir: Path, cfg: ExperimentConfig, argv: list[str] | None = None) -> None:
    """A resumed run: ``config.yaml`` becomes the config it now trains with (a new batch size, budget...), and
    ``command.txt`` gains the resuming command as a line of its own, so both stay true to what ran."""
    atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
    argv = sys.argv if argv is None else argv
    path = run_dir / "command.txt"
    before = path.read_text() if path.is_file() else ""
    atomic_write_text(path, before + ("" if not before or before.endswith("\n") else "\n")
                      + shlex.join(["ganvae", *argv[1:]]) + "\n")


class RunLock:
    """An advisory lock on a run folder (``<run>/.lock``, ``flock``), held while a training writes into it, so a
    second training into the same ``--out`` is refused instead of mixing its files with the first's.

    The operating system releases the lock when the holder exits, however it exits (SIGKILL included), so a
    lock file left behind is never stale: the next run takes it. Where ``fcntl`` does not exist (Windows) the lock
    is a no-op.

    ``shared=True``: a front end takes it before it reads anything from the run folder (a resumed run's
    checkpoint) for the training it starts, whose own ``with RunLock(...)`` then joins it instead of being refused
    (a second ``flock`` on a new descriptor refuses even its own process). Any other holder, in this process or
    another, refuses the trainer.
    """

    _held: dict[str, int] = {}  # resolved lock path -> depth, for the shared locks this process holds

    def __init__(self, run_dir: str | Path, shared: bool = False):
        self.path = Path(run_dir) / ".lock"
        self.shared = shared
        self._fh = None
        self._key: str | None = None

    def __enter__(self) -> "RunLock":
        key = str(self.path.resolve())
        if key in RunLock._held:  # this process holds it already
            RunLock._held[key] += 1
            self._key = key
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            return self
        from ganvae.errors import FieldConfigError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise FieldConfigError("out", str(self.path.parent), f"{self.path.parent}: another training is writing to "
                                   f"this run folder ({holder}); wait for it to finish, or choose another {{field}}.",
                                   reason="a run folder no other training writes to") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {platform.node()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        self._fh = fh
        if self.shared:
            self._key = key
            RunLock._held[key] = 1
        return self

    def __exit__(self, *exc) -> None:
        if self._key is not None:
            RunLock._held[self._key] -= 1
            if RunLock._held[self._key] == 0:
                del RunLock._held[self._key]
            self._key = None
        if self._fh is not None:
            self._fh.close()  # closing the file releases the lock (the outermost holder's)
            self._fh = None


def clean_interrupted_writes(run_dir: Path) -> list[Path]:
    """Remove the temporary files that atomic writes killed mid-way (SIGKILL, a power cut) left in ``run_dir`` and
    its ``checkpoints/``: only files named as ganvae's atomic writes name them whose writer is gone or that were
    untouched for 15 minutes (:func:`ganvae.common.files.stale_temporary_files` gives the rule), never a write in
    progress. Called by the training that holds the run's :class:`RunLock`; returns the files removed."""
    removed = [p for folder in (run_dir, run_dir / "checkpoints") for p in remove_stale_temporary_files(folder)]
    if removed:
        log.info("removed %d temporary file%s left by an interrupted write: %s", len(removed),
                 "s" * (len(removed) > 1), ", ".join(str(p) for p in removed))
    return removed


def open_run_folder(run_dir: Path, cfg: ExperimentConfig, argv: list[str] | None, resumed: bool, changes: list[str],
                    extra: dict) -> logging.Handler:
    """Rank 0 at the start of a training session, holding the run's lock: ``samples/``, the run's ``train.log``
    (returned, to be removed when the session ends), the temporary files of writes a killed session left
    (:func:`clean_interrupted_writes`), then its metadata (a new run's config, command and ``extra``; a resumed
    run's record of the resume and each setting that ``changes`` on it)."""
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    handler = add_file_log(run_dir / "train.log")
    clean_interrupted_writes(run_dir)
    for line in changes:  # logged once the run's own log file listens too
        log.info("changed on resume: %s", line)
    if resumed:
        record_resume(run_dir, cfg, argv)
    else:
        write_run_metadata(run_dir, cfg, argv, extra)
    return handler
