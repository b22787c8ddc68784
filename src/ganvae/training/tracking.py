"""Experiment tracking: a run's settings, losses, quality points, sample grids and final checkpoint sent to a tracker.

A tracker is a :class:`~ganvae.training.callbacks.Callback`. ``run.log_to`` names the ones the config turns on
(``--set run.log_to=mlflow`` on the command line, ``ganvae.train(..., run__log_to="mlflow")`` in Python; both:
``--set run.log_to=mlflow,wandb``, ``run__log_to=["mlflow", "wandb"]``); in Python you may also pass an instance
(``callbacks=[MLflowLogger(tracking_uri=...)]``) for settings the config does not hold. :data:`TRACKERS` is the one
table of names.

MLflow (``pip install 'ganvae[mlflow]'``) logs, into the store ``run.mlflow_uri`` names (default: MLflow's own
default, ``MLFLOW_TRACKING_URI`` or a local ``sqlite:///mlflow.db`` with artifacts under ``./mlruns``; nothing goes
over the network unless the URI says so):

- params: every config key, flattened (``train.lr``, ``model.latent_dim``, ...), once, when the MLflow run is made;
- metrics: ``loss/NAME`` and ``images_per_second`` every ``train.log_every`` steps (MLflow's ``step`` is the
  step's index, as in ``losses.csv`` and TensorBoard), and ``quality/NAME`` for each column of an in-training quality
  point (a metric's NAME is its key in :mod:`ganvae.metrics.registry`, as in ``metrics_during_training.csv``);
- artifacts: each sample grid as it is drawn (``samples/``), and at the end the final checkpoint
  (``checkpoints/``), ``config.yaml``, ``summary.json``, ``losses.png`` and ``progress.gif``.

A resumed ganvae run continues the same MLflow run (its id is kept in ``RUN/mlflow_run.json``), so one training
is one MLflow run however many sessions it took. Only rank 0 logs under torchrun.

Weights & Biases (``pip install 'ganvae[wandb]'``) gets the same, in W&B's terms, into the project
``run.wandb_project`` (and ``run.wandb_entity``; ``run.wandb_mode`` online or offline, default ``WANDB_MODE`` or
online):

- config: the whole config, as its sections (W&B shows ``train.lr``, ``model.latent_dim``, ...);
- history: ``loss/NAME`` and ``images_per_second`` every ``train.log_every`` steps, ``quality/NAME`` for each
  quality point, and each sample grid as the image ``samples`` (captioned with its epoch), every row with ``step``,
  MLflow's step, the x axis of every chart (W&B's own ``_step`` only counts rows: a quality point taken at a
  logging interval reaches the trackers before that interval's losses, and W&B drops a row whose ``_step`` goes
  back);
- at the end: ``config.yaml``, ``summary.json``, ``losses.png`` and ``progress.gif`` as the run's files, the final
  checkpoint as the artifact ``model-RUNID`` (type ``model``), and ``ganvae/stopped_by``, ``ganvae/steps`` and
  ``ganvae/epochs`` in the run's summary.

W&B writes its local files (the whole run when offline: ``wandb sync RUN/wandb/offline-run-*`` uploads it later)
under ``WANDB_DIR``, by default the run folder. A resumed ganvae run continues the same W&B run (W&B's
``resume="allow"`` with the id kept in ``RUN/wandb_run.json``; the summary's ``ganvae/resumed_at_step`` says where).
Only rank 0 logs under torchrun.

``ganvae evaluate RUN`` adds its final metrics (``final/NAME``) to the run's MLflow and W&B runs, from these two
files (:func:`ganvae.inference.tasks.evaluate`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganvae.common.files import atomic_write_text
from ganvae.training.callbacks import Callback, Trainer, TrainResult

RUN_ID_FILE = "mlflow_run.json"  # read back by ganvae.inference.tasks.evaluate, which logs the final metrics there
WANDB_RUN_FILE = "wandb_run.json"  # likewise


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"lr": 2e-4}}`` -> ``{"train.lr": "0.0002"}``: MLflow params are flat strings."""
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return out


def _absolute(uri: str) -> str:
    """A local SQLite store's URI with an absolute path (``sqlite:///mlflow.db`` -> ``sqlite:////work/mlflow.db``), so
    that ``ganvae evaluate`` finds the store from any folder; other URIs as they are."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix):]).is_absolute():
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def _require(module: str, tracker: str, what: str):
    """Import ``module`` for the tracker ``tracker`` (its extra has the same name), or say how to install it."""
    import importlib

    try:
        importlib.import_module(module.split(".")[0])  # the package itself (a submodule may be cached without it)
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"run.log_to={tracker} needs {what}, which is not installed ({err}). Install it with "
                          f"pip install 'ganvae[{tracker}]', or leave run.log_to at 'none'.") from err


def _import_mlflow():
    return _require("mlflow.tracking", "mlflow", "MLflow").MlflowClient


class MLflowLogger(Callback):
    """Log the run to MLflow (see the module's docstring for what goes where).

    Args:
        tracking_uri: the MLflow store (``sqlite:///mlflow.db``, ``file:./mlruns``, ``http://host:5000``); None:
            ``MLFLOW_TRACKING_URI`` or MLflow's default.
        experiment: the MLflow experiment, made if missing.
        run_name: the MLflow run's name; default the run folder's name.
        log_checkpoint: upload the final checkpoint as an artifact (it is the size of the model's training state).
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "ganvae", run_name: str | None = None,
                 log_checkpoint: bool = True):
        self.tracking_uri, self.experiment, self.run_name = tracking_uri, experiment, run_name
        self.log_checkpoint = log_checkpoint
        self._client_class = _import_mlflow()  # missing MLflow fails here, before the run folder is touched
        self.client = None
        self.run_id: str | None = None

    @classmethod
    def from_config(cls, run_cfg) -> "MLflowLogger":
        return cls(tracking_uri=run_cfg.mlflow_uri, experiment=run_cfg.mlflow_experiment)

    # ------------------------------------------------------------------ hooks

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        self.client = self._client_class(tracking_uri=self.tracking_uri)
        id_file = Path(trainer.run_dir) / RUN_ID_FILE
        self.run_id = self._earlier_run(id_file)
        if self.run_id is not None:  # a resumed ganvae run: the same MLflow run, open again
            self.client.update_run(self.run_id, status="RUNNING")
            self.client.set_tag(self.run_id, "ganvae.resumed_at_step", str(trainer.state.step))
            return
        experiment = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (experiment.experiment_id if experiment is not None
                         else self.client.create_experiment(self.experiment))
        cfg = trainer.cfg
        tags = {"ganvae.model": cfg.model_name, "ganvae.run_dir": str(Path(trainer.run_dir).resolve()),
                "mlflow.source.name": "ganvae"}
        run = self.client.create_run(experiment_id, run_name=self.run_name or Path(trainer.run_dir).name, tags=tags)
        self.run_id = run.info.run_id
        self._log_params(_flatten(cfg.to_dict()))
        atomic_write_text(id_file, json.dumps({"run_id": self.run_id, "experiment_id": experiment_id,
                                               "tracking_uri": _absolute(self.client.tracking_uri)}, indent=2) + "\n")

    def on_log(self, trainer: Trainer, losses: Mapping[str, float], images_per_second: float) -> None:
        if self.run_id is None:
            return
        values = {f"loss/{k}": v for k, v in losses.items()}
        values["images_per_second"] = images_per_second
        self._log_metrics(values, trainer.state.step - 1)  # the step's index, as losses.csv and TensorBoard count

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        if self.run_id is None:
            return
        step = int(metrics.get("step", trainer.state.step))  # as metrics_during_training.csv has it
        self._log_metrics({f"quality/{k}": v for k, v in metrics.items() if k != "step"}, step)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if self.run_id is None:
            return
        grid = trainer.run_dir / "samples" / f"epoch_{epoch:04d}.png"  # drawn at this epoch's end, if on its cadence
        if grid.is_file():
            self.client.log_artifact(self.run_id, str(grid), "samples")

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self.run_id is None:
            return
        run_dir = Path(result.run_dir)
        for name in ("config.yaml", "summary.json", "losses.png", "progress.gif"):
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        if self.log_checkpoint and Path(result.checkpoint).is_file():
            self.client.log_artifact(self.run_id, str(result.checkpoint), "checkpoints")
        self.client.set_tag(self.run_id, "ganvae.stopped_by", result.stopped_by)
        self.client.set_terminated(self.run_id, "KILLED" if result.stopped_by == "interrupt" else "FINISHED")

    # ------------------------------------------------------------------ helpers

    def _earlier_run(self, id_file: Path) -> str | None:
        """The MLflow run a resumed ganvae run logged to, if it is in this store."""
        if not id_file.is_file():
            return None
        try:
            run_id = json.loads(id_file.read_text())["run_id"]
            self.client.get_run(run_id)
        except Exception:  # another store, a deleted run or an unreadable file: start a new MLflow run
            return None
        return run_id

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]  # 6000: MLflow's limit on a param's value
        for i in range(0, len(items), 100):  # 100: MLflow's limit of params per batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def _log_metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in _numbers(values).items()]
        if items:
            self.client.log_batch(self.run_id, metrics=items)


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of ``values`` (a loss log's or a quality point's columns), as floats."""
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _import_wandb():
    return _require("wandb", "wandb", "Weights & Biases")


class WandbLogger(Callback):
    """Log the run to Weights & Biases (see the module's docstring for what goes where).

    Args:
        project: the W&B project, made if missing.
        entity: the W&B team or user; None: ``WANDB_ENTITY`` or your default entity.
        mode: ``"online"`` or ``"offline"`` (local files only, uploaded later with ``wandb sync``); None:
            ``WANDB_MODE`` or online.
        run_name: the W&B run's name; default the run folder's name.
        dir: where W&B writes its local files; None: ``WANDB_DIR``, else the run folder.
        log_checkpoint: upload the final checkpoint as an artifact (it is the size of the model's training state).
    """

    def __init__(self, project: str = "ganvae", entity: str | None = None, mode: str | None = None,
                 run_name: str | None = None, dir: str | os.PathLike | None = None, log_checkpoint: bool = True):
        self.project, self.entity, self.mode, self.run_name = project, entity, mode, run_name
        self.dir, self.log_checkpoint = dir, log_checkpoint
        self.wandb = _import_wandb()  # missing W&B fails here, before the run folder is touched
        self.run: Any = None

    @classmethod
    def from_config(cls, run_cfg) -> "WandbLogger":
        return cls(project=run_cfg.wandb_project, entity=run_cfg.wandb_entity, mode=run_cfg.wandb_mode)

    # ------------------------------------------------------------------ hooks

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        run_dir = Path(trainer.run_dir)
        id_file = run_dir / WANDB_RUN_FILE
        earlier = self._earlier_run(id_file)
        cfg = trainer.cfg
        local = Path(self.dir or os.environ.get("WANDB_DIR") or run_dir).resolve()
        local.mkdir(parents=True, exist_ok=True)
        # reinit="create_new": a W&B run of the caller's own, open in this process, stays open and untouched
        self.run = self.wandb.init(
            project=self.project, entity=self.entity, mode=self.mode, dir=str(local), reinit="create_new",
            id=earlier, resume="allow" if earlier else None, name=self.run_name or run_dir.name,
            config=None if earlier else cfg.to_dict(), tags=[cfg.model_name], job_type="train",
            notes=f"ganvae run folder: {run_dir.resolve()}")
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")  # every chart's x axis: the training step
        if earlier is not None:  # a resumed ganvae run: the same W&B run, open again
            self.run.summary["ganvae/resumed_at_step"] = trainer.state.step
            return
        mode = "offline" if self.run.offline else str(self.run.settings.mode)  # ganvae evaluate reopens it so
        atomic_write_text(id_file, json.dumps({"id": self.run.id, "project": self.project, "entity": self.entity,
                                               "mode": mode, "dir": str(local)}, indent=2) + "\n")

    def on_log(self, trainer: Trainer, losses: Mapping[str, float], images_per_second: float) -> None:
        if self.run is None:
            return
        values = {f"loss/{k}": v for k, v in losses.items()}
        values["images_per_second"] = images_per_second
        self.run.log({**_numbers(values), "step": trainer.state.step - 1})  # the step's index, as MLflow has it

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        if self.run is None:
            return
        step = int(metrics.get("step", trainer.state.step))  # as metrics_during_training.csv has it
        self.run.log({**_numbers({f"quality/{k}": v for k, v in metrics.items() if k != "step"}), "step": step})

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if self.run is None:
            return
        grid = trainer.run_dir / "samples" / f"epoch_{epoch:04d}.png"  # drawn at this epoch's end, if on its cadence
        if grid.is_file():
            self.run.log({"samples": self.wandb.Image(str(grid), caption=f"epoch {epoch}"),
                          "step": trainer.state.step})

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self.run is None:
            return
        run_dir = Path(result.run_dir).resolve()
        for name in ("config.yaml", "summary.json", "losses.png", "progress.gif"):
            if (run_dir / name).is_file():
                self.run.save(str(run_dir / name), base_path=str(run_dir), policy="now")
        if self.log_checkpoint and Path(result.checkpoint).is_file():
            artifact = self.wandb.Artifact(f"model-{self.run.id}", type="model",
                                           metadata={"model_name": trainer.cfg.model_name, "step": result.step,
                                                     "epoch": result.epoch, "stopped_by": result.stopped_by})
            artifact.add_file(str(result.checkpoint))
            self.run.log_artifact(artifact)
        self.run.summary.update({"ganvae/stopped_by": result.stopped_by, "ganvae/steps": result.step,
                                 "ganvae/epochs": result.epoch})
        self.run.finish(exit_code=1 if result.stopped_by == "interrupt" else 0)
        self.run = None

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _earlier_run(id_file: Path) -> str | None:
        """The id of the W&B run a resumed ganvae run logged to (W&B's resume="allow" makes it anew if it is gone)."""
        try:
            return str(json.loads(id_file.read_text())["id"])
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or an unreadable file: a new W&B run
            return None


TRACKERS: dict[str, type] = {"mlflow": MLflowLogger, "wandb": WandbLogger}  # run.log_to's values (besides "none")


def tracker_callbacks(run_cfg) -> list[Callback]:
    """The trackers ``run.log_to`` turns on (a name, or a list of names), built from the run config."""
    names = [run_cfg.log_to] if isinstance(run_cfg.log_to, str) or run_cfg.log_to is None else run_cfg.log_to
    return [TRACKERS[name].from_config(run_cfg) for name in dict.fromkeys(names) if name not in (None, "none")]
