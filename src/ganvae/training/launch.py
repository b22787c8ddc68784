"""One way into training for every front end (``ganvae train`` and ``ganvae.train``): build the run's config, and
for a resumed run start from its checkpoint's own config, read once here and handed to the trainer.

The per-setting rules of what may change on resume are in :mod:`ganvae.training.resume`; the trainer applies them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Mapping

from ganvae.config import build_config, config_from_dict
from ganvae.errors import CheckpointError, FieldConfigError, Placeholder
from ganvae.storage import checkpoint as ckpt_io
from ganvae.storage.run_folder import RunLock


def train_run(model: str, *, out: str | Path | None = None, resume: bool = False, config_file: str | Path | None = None,
              settings: Mapping[str, Mapping[str, Any]] | None = None, overrides: list[str] | None = None,
              preset: str | None = None, data=None, argv: list[str] | None = None, callbacks=None,
              values: Mapping[str, Mapping[str, Any]] | None = None):
    """Train ``model`` and return the :class:`~ganvae.training.trainer.TrainResult`.

    Settings apply in the order of :func:`ganvae.config.build_config` (preset, file, ``settings`` by section,
    ``values`` by section (Python values, set as they are), ``overrides`` as ``section.key=value``), on top of the
    defaults, or, with ``resume``, on top of the run's own saved config: so only what the caller gives changes,
    whatever the run was trained with. ``callbacks`` go to the trainer (:mod:`ganvae.training.callbacks`).
    """
    from ganvae.training.trainer import Trainer

    if resume and not out:
        raise FieldConfigError("out", None, "{given:resume} needs {given}: the run to continue.",
                               values={"resume": True, "out": Placeholder("RUN_FOLDER")})
    # a resumed run's folder is locked before its checkpoint is read, and stays locked until training ends: two
    # `--resume` of one run cannot both start from the same checkpoint and overwrite each other's epochs (the
    # trainer's own lock, taken again inside, joins it). Rank 0 holds it, as in the trainer.
    main_rank = int(os.environ.get("RANK", "0")) == 0
    with RunLock(out, shared=True) if resume and main_rank else contextlib.nullcontext():
        checkpoint, base = None, None
        if resume:
            checkpoint = resume_checkpoint(out, model)
            base = config_from_dict(checkpoint.header["config"], str(checkpoint.path))
        cfg = build_config(model, config_file, settings, overrides, preset=preset, base=base, values=values)
        return Trainer(cfg, out or cfg.run.out, data=data, resume=checkpoint, argv=argv, callbacks=callbacks).fit()


def resume_checkpoint(run_dir: str | Path, model: str):
    """The one way to resume: the checkpoint of the run in ``run_dir``, read once (and checked to be a ``model``
    checkpoint), for :class:`~ganvae.training.trainer.Trainer` ``(resume=...)``; a clear error when there is none."""
    path = ckpt_io.run_checkpoint(run_dir)
    if not path.is_file():
        raise CheckpointError(f"--resume: no checkpoint at {path}. Give the run folder with --out, or drop --resume.")
    return ckpt_io.load_checkpoint(path, expected_model=model)
