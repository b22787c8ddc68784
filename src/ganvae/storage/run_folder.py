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
from ganvae.common.files import atomic_write_text
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
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._fh = None

    def __enter__(self) -> "RunLock":
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
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the file releases the lock
            self._fh = None


def open_run_folder(run_dir: Path, cfg: ExperimentConfig, argv: list[str] | None, resumed: bool, changes: list[str],
                    extra: dict) -> logging.Handler:
    """Rank 0 at the start of a training session: ``samples/``, the run's ``train.log`` (returned, to be removed
    when the session ends), then its metadata (a new run's config, command and ``extra``; a resumed run's record of
    the resume and each setting that ``changes`` on it)."""
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    handler = add_file_log(run_dir / "train.log")
    for line in changes:  # logged once the run's own log file listens too
        log.info("changed on resume: %s", line)
    if resumed:
        record_resume(run_dir, cfg, argv)
    else:
        write_run_metadata(run_dir, cfg, argv, extra)
    return handler
