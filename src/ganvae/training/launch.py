"""One way into training for every front end (``ganvae train`` and ``ganvae.train``): build the run's config, and
for a resumed run start from its checkpoint's own config, read once here and handed to the trainer.

The per-setting rules of what may change on resume are in :mod:`ganvae.training.resume`; the trainer applies them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ganvae.config import build_config, config_from_dict
from ganvae.errors import CheckpointError, ConfigError
from ganvae.storage import checkpoint as ckpt_io


def train_run(model: str, *, out: str | Path | None = None, resume: bool = False, config_file: str | Path | None = None,
              settings: Mapping[str, Mapping[str, Any]] | None = None, overrides: list[str] | None = None,
              preset: str | None = None, data=None, argv: list[str] | None = None,
              needs_out: str = "--resume needs --out RUN_FOLDER", callbacks=None):
    """Train ``model`` and return the :class:`~ganvae.training.trainer.TrainResult`.

    Settings apply in the order of :func:`ganvae.config.build_config` (preset, file, ``settings`` by section,
    ``overrides`` as ``section.key=value``), on top of the defaults, or, with ``resume``, on top of the run's own
    saved config: so only what the caller gives changes, whatever the run was trained with. ``needs_out`` is the
    front end's words for the missing run folder; ``callbacks`` go to the trainer
    (:mod:`ganvae.training.callbacks`).
    """
    from ganvae.training.trainer import Trainer

    checkpoint, base = None, None
    if resume:
        if not out:
            raise ConfigError(f"{needs_out}: the run to continue.")
        path = ckpt_io.run_checkpoint(out)
        if not path.is_file():
            raise CheckpointError(f"--resume: no checkpoint at {path}. Give the run folder with --out, or drop --resume.")
        checkpoint = ckpt_io.load_checkpoint(path, expected_model=model)
        base = config_from_dict(checkpoint.header["config"], str(path))
    cfg = build_config(model, config_file, settings, overrides, preset=preset, base=base)
    return Trainer(cfg, out or cfg.run.out, data=data, resume=checkpoint or False, argv=argv,
                   callbacks=callbacks).fit()
