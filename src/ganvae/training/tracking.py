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

What MLflow is asked is checked before anything is trained or written, and what it cannot do never costs the
training:

- the store is opened when the tracker is made (the trainer makes it before the run folder): one MLflow cannot open
  (an unknown scheme, a SQLite file in a folder that cannot be made, a folder store, which MLflow 3 refuses unless
  ``MLFLOW_ALLOW_FILE_STORE=true``) is a :class:`~ganvae.errors.FieldConfigError` naming ``run.mlflow_uri`` (or
  ``MLFLOW_TRACKING_URI``, where the store came from);
- a store that fails later (a server that is down or lost mid-run, a full disk) is logged once, tracking is off for
  the rest of the session, and ``summary.json``'s warnings say so; training goes on. ganvae's calls give MLflow's
  HTTP client :data:`HTTP_LIMITS` (2 retries, 5 s a request, about 3 s against a server that is down, instead of
  MLflow's 7 retries over 4 minutes), unless the environment sets them;
- a resumed run whose MLflow run was deleted (the UI's Delete) logs to a new MLflow run; a deleted experiment is not
  restored (that would bring back every run deleted with it): a new run goes into the first of ``NAME-2``,
  ``NAME-3``, ... that is not deleted, made if missing. Each says so in the log.

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
Only rank 0 logs under torchrun. A W&B call that fails (``wandb.init`` refused, an upload that fails) is, as for
MLflow, logged once and in ``summary.json``'s warnings, and W&B is off for the rest of the session; online,
``wandb.init`` waits :data:`WANDB_INIT_TIMEOUT_S` (20 s) for W&B's server, unless ``WANDB_INIT_TIMEOUT`` says.

``ganvae evaluate RUN`` adds its final metrics (``final/NAME``) to the run's MLflow and W&B runs, from these two
files (:func:`ganvae.inference.tasks.evaluate`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ganvae.common.files import atomic_write_text
from ganvae.common.http_limits import HTTP_LIMITS, bounded_http
from ganvae.errors import FieldConfigError
from ganvae.training.callbacks import Callback, Trainer, TrainResult

log = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run.json"  # read back by ganvae.inference.tasks.evaluate, which logs the final metrics there
WANDB_RUN_FILE = "wandb_run.json"  # likewise

# W&B's wait for wandb.init online, unless WANDB_INIT_TIMEOUT sets it: W&B's default (90 s) holds training for over
# 2 minutes when its server cannot be reached; a run that reaches it starts in seconds
WANDB_INIT_TIMEOUT_S = 20.0


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


def _main_process() -> bool:
    """Rank 0 under torchrun (the rank that logs), or a single process: the trainer's own rule
    (:meth:`ganvae.training.distributed.DistContext.from_env`), read before the trainer has its context."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def _first_sentence(err: BaseException) -> str:
    """The first sentence of an error's message (MLflow's run to a paragraph), on one line."""
    text = " ".join(str(err).split()) or type(err).__name__
    cut = text.find(". ")
    return text[:cut] if cut > 0 else text.rstrip(".")


def _cause(err: BaseException) -> str:
    """What went wrong, in a few words: the network's own error where there is one at the root of ``err``
    (``ConnectionRefusedError: [Errno 111] Connection refused``, not MLflow's paragraph around it), else ``err``."""
    root, seen = err, {id(err)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    shown = root if isinstance(root, OSError) else err
    return f"{type(shown).__name__}: {_first_sentence(shown)}"


def _open_store(client_class, uri: str | None, field: str):
    """An MLflow client on ``uri`` (None: ``MLFLOW_TRACKING_URI`` or MLflow's default), whose store MLflow opens as
    it makes it (a new SQLite file gets its tables); a store it cannot open is a :class:`FieldConfigError` about
    ``field``, the setting that named it."""
    try:
        return client_class(tracking_uri=uri)
    except Exception as err:  # noqa: BLE001 (whatever MLflow raises, the store is the setting to change)
        raise _store_error(uri, field, err) from err


def _store_error(uri: str | None, field: str, err: Exception) -> FieldConfigError:
    """The one-line error for a store MLflow cannot open: the store, MLflow's reason, and the setting to change."""
    env = os.environ.get("MLFLOW_TRACKING_URI") if uri is None else None
    reason = _first_sentence(err)
    scheme = (uri or env or "").partition("://")[0]
    if "unsupported URI" in str(err) or "registered tracking store" in str(err):  # its words for "no such scheme"
        reason = f"it has no store for the scheme {scheme}://"
    elif "MLFLOW_ALLOW_FILE_STORE" in str(err):  # a folder (file:./mlruns, ./mlruns): MLflow's way out comes later
        reason += "; MLflow 3 refuses a folder store unless MLFLOW_ALLOW_FILE_STORE=true"
    fix = f"Name a store it can open with {{given:{field}#example}} (or http://HOST:5000)"
    if uri is not None:
        message = f"{{given}}: MLflow cannot open this store ({reason}). {fix}."
    elif env:
        message = (f"MLFLOW_TRACKING_URI={env}: MLflow cannot open this store ({reason}). Change or unset "
                   f"MLFLOW_TRACKING_URI, or {fix[0].lower()}{fix[1:]}.")
    else:
        import mlflow

        message = (f"MLflow cannot open its default store {mlflow.get_tracking_uri()} ({reason}). {fix}, or set "
                   f"MLFLOW_TRACKING_URI.")
    return FieldConfigError(field, uri, message, values={f"{field}#example": "sqlite:///mlflow.db"},
                            reason="a store MLflow can open")


class _Tracker(Callback):
    """What the trackers share: a call that fails switches the tracker off for the rest of the session, with one
    warning, in the log and in ``summary.json``; the training goes on."""

    tracker = "the tracker"  # its name in the warning
    AT_END = "sending the run's files"  # what on_train_end does, after summary.json is written

    @classmethod
    def from_config(cls, run_cfg) -> "_Tracker":
        """The tracker as the run config (``run.*``) sets it up."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _calls(self, trainer: Trainer, doing: str) -> Iterator[None]:
        """The tracker's calls for ``doing`` (``logging the losses``): an error switches the tracker off."""
        try:
            with self._settings():
                yield
        except Exception as err:  # noqa: BLE001 (a tracker never costs the training: said once, then off)
            self._switch_off(trainer, doing, err)

    def _settings(self) -> contextlib.AbstractContextManager:
        """The settings the tracker's calls run under (MLflow's: :func:`bounded_http`)."""
        return contextlib.nullcontext()

    def _switch_off(self, trainer: Trainer, doing: str, err: Exception) -> None:
        where = self._forget()
        message = (f"{self.tracker} tracking is off for the rest of this session: {doing} failed at step "
                   f"{trainer.state.step} ({_cause(err)}); training went on without it. {where}")
        trainer.warn(message)
        if doing == self.AT_END:  # summary.json was written before the trackers' on_train_end: it gets it too
            _add_warning(Path(trainer.run_dir) / "summary.json", message)

    def _forget(self) -> str:
        """Drop the tracker's run (nothing more is sent); returns what the user should know and do, in words."""
        raise NotImplementedError


def _add_warning(path: Path, message: str) -> None:
    """``message`` into the warnings of ``summary.json`` at ``path``, already written."""
    try:
        summary = json.loads(path.read_text())
        if message not in summary.setdefault("warnings", []):
            summary["warnings"].append(message)
        atomic_write_text(path, json.dumps(summary, indent=2) + "\n")
    except (OSError, ValueError, AttributeError) as err:  # the log has the warning still
        log.warning("the warning above is not in %s (%s: %s)", path, type(err).__name__, err)


class MLflowLogger(_Tracker):
    """Log the run to MLflow (see the module's docstring for what goes where).

    Args:
        tracking_uri: the MLflow store (``sqlite:///mlflow.db``, ``http://host:5000``, ``databricks``); None:
            ``MLFLOW_TRACKING_URI`` or MLflow's default. MLflow 3 refuses a folder store (``./mlruns``,
            ``file:./mlruns``) unless ``MLFLOW_ALLOW_FILE_STORE=true``.
        experiment: the MLflow experiment, made if missing (if deleted: see the module's docstring).
        run_name: the MLflow run's name; default the run folder's name.
        log_checkpoint: upload the final checkpoint as an artifact (it is the size of the model's training state).

    Raises:
        FieldConfigError: about ``tracking_uri``, when MLflow cannot open the store (checked here, on rank 0).
    """

    tracker = "MLflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str = "ganvae", run_name: str | None = None,
                 log_checkpoint: bool = True):
        self.tracking_uri, self.experiment, self.run_name = tracking_uri, experiment, run_name
        self.log_checkpoint = log_checkpoint
        self._client_class = _import_mlflow()  # missing MLflow fails here, before the run folder is touched
        # the store too (rank 0 logs, and alone makes a new SQLite store): a wrong one fails before the run folder
        self.client: Any = _open_store(self._client_class, tracking_uri, "tracking_uri") if _main_process() else None
        self.run_id: str | None = None

    @classmethod
    def from_config(cls, run_cfg) -> "MLflowLogger":
        try:
            return cls(tracking_uri=run_cfg.mlflow_uri, experiment=run_cfg.mlflow_experiment)
        except FieldConfigError as err:  # about the config's field, not the argument
            cause = err.__cause__
            if err.field != "tracking_uri" or not isinstance(cause, Exception):
                raise
            raise _store_error(run_cfg.mlflow_uri, "run.mlflow_uri", cause) from cause

    # ------------------------------------------------------------------ hooks

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        with self._calls(trainer, "starting the MLflow run"):
            self._start(trainer)

    def on_log(self, trainer: Trainer, losses: Mapping[str, float], images_per_second: float) -> None:
        if self.run_id is None:
            return
        values = {f"loss/{k}": v for k, v in losses.items()}
        values["images_per_second"] = images_per_second
        with self._calls(trainer, "logging the losses"):
            self._log_metrics(values, trainer.state.step - 1)  # the step's index, as losses.csv and TensorBoard count

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        if self.run_id is None:
            return
        step = int(metrics.get("step", trainer.state.step))  # as metrics_during_training.csv has it
        with self._calls(trainer, "logging a quality point"):
            self._log_metrics({f"quality/{k}": v for k, v in metrics.items() if k != "step"}, step)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if self.run_id is None:
            return
        grid = trainer.run_dir / "samples" / f"epoch_{epoch:04d}.png"  # drawn at this epoch's end, if on its cadence
        if grid.is_file():
            with self._calls(trainer, "uploading a sample grid"):
                self.client.log_artifact(self.run_id, str(grid), "samples")

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self.run_id is None:
            return
        run_dir = Path(result.run_dir)
        with self._calls(trainer, self.AT_END):
            for name in ("config.yaml", "summary.json", "losses.png", "progress.gif"):
                if (run_dir / name).is_file():
                    self.client.log_artifact(self.run_id, str(run_dir / name))
            if self.log_checkpoint and Path(result.checkpoint).is_file():
                self.client.log_artifact(self.run_id, str(result.checkpoint), "checkpoints")
            self.client.set_tag(self.run_id, "ganvae.stopped_by", result.stopped_by)
            self.client.set_terminated(self.run_id, "KILLED" if result.stopped_by == "interrupt" else "FINISHED")

    # ------------------------------------------------------------------ helpers

    def _start(self, trainer: Trainer) -> None:
        """The MLflow run: the resumed ganvae run's own, open again, or a new one (in an active experiment)."""
        if self.client is None:  # made on another rank's rule: open the store now
            self.client = _open_store(self._client_class, self.tracking_uri, "tracking_uri")
        id_file = Path(trainer.run_dir) / RUN_ID_FILE
        earlier = self._earlier_run(id_file)
        if earlier is not None:  # a resumed ganvae run: the same MLflow run, open again
            self.client.update_run(earlier, status="RUNNING")
            self.client.set_tag(earlier, "ganvae.resumed_at_step", str(trainer.state.step))
            self.run_id = earlier
            return
        experiment_id = self._experiment_id()
        cfg = trainer.cfg
        tags = {"ganvae.model": cfg.model_name, "ganvae.run_dir": str(Path(trainer.run_dir).resolve()),
                "mlflow.source.name": "ganvae"}
        if trainer.state.step > 0:  # a resumed ganvae run whose MLflow run is gone: this one starts there
            tags["ganvae.resumed_at_step"] = str(trainer.state.step)
        run = self.client.create_run(experiment_id, run_name=self.run_name or Path(trainer.run_dir).name, tags=tags)
        self.run_id = run.info.run_id
        self._log_params(_flatten(cfg.to_dict()))
        atomic_write_text(id_file, json.dumps({"run_id": self.run_id, "experiment_id": experiment_id,
                                               "tracking_uri": _absolute(self.client.tracking_uri)}, indent=2) + "\n")

    def _earlier_run(self, id_file: Path) -> str | None:
        """The MLflow run a resumed ganvae run logged to, if it is in this store and not deleted; None: a new one.
        A store that cannot be reached raises (the caller switches tracking off)."""
        from mlflow.exceptions import MlflowException

        try:
            run_id = str(json.loads(id_file.read_text())["run_id"])
        except FileNotFoundError:  # a new ganvae run
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("%s cannot be read (%s: %s); this session logs to a new MLflow run.", id_file,
                        type(err).__name__, err)
            return None
        try:
            run = self.client.get_run(run_id)
        except MlflowException as err:
            if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            log.warning("the MLflow run %s of %s is not in the store %s (another store?); this session logs to a "
                        "new MLflow run.", run_id, id_file.parent, self.client.tracking_uri)
            return None
        if run.info.lifecycle_stage != "active":  # deleted (the UI's Delete, or its experiment's)
            log.warning("the MLflow run %s of %s was deleted; this session logs to a new MLflow run (restore the old "
                        "one with MlflowClient().restore_run(%r) to see its history again).", run_id, id_file.parent,
                        run_id)
            return None
        return run_id

    def _experiment_id(self) -> str:
        """The experiment :attr:`experiment`, made if missing; if it is deleted (its name stays taken until
        ``mlflow gc`` purges it), the first of ``NAME-2``, ``NAME-3``, ... that is not, made if missing. A deleted
        experiment is not restored: that would bring back every run deleted with it."""
        deleted: list[Any] = []
        while True:
            name = self.experiment if not deleted else f"{self.experiment}-{len(deleted) + 1}"
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None and experiment.lifecycle_stage != "active":
                deleted.append(experiment)
                continue
            if deleted:
                log.warning("the MLflow experiment %r (id %s) is deleted; this run goes into %r instead. Restore it "
                            "(MlflowClient().restore_experiment(%r), or the UI's trash) to log there again, or choose "
                            "another with run.mlflow_experiment.", self.experiment, deleted[0].experiment_id, name,
                            deleted[0].experiment_id)
            return experiment.experiment_id if experiment is not None else self.client.create_experiment(name)

    def _settings(self) -> contextlib.AbstractContextManager:
        return bounded_http()

    def _forget(self) -> str:
        run_id, self.run_id = self.run_id, None
        uri = self.client.tracking_uri if self.client is not None else self.tracking_uri
        record = f"its MLflow run {run_id} stops here" if run_id else "no MLflow run was made"
        limits = ", ".join(f"{name}={os.environ.get(name, value)}" for name, value in HTTP_LIMITS.items())
        return (f"The store is {uri}; {record}. Check that it is reachable, or set run.mlflow_uri (or "
                f"MLFLOW_TRACKING_URI) to one that is; to wait longer for it, raise {limits}.")

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


class WandbLogger(_Tracker):
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

    tracker = "W&B"

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
        with self._calls(trainer, "starting the W&B run"):
            self._start(trainer)

    def on_log(self, trainer: Trainer, losses: Mapping[str, float], images_per_second: float) -> None:
        if self.run is None:
            return
        values = {f"loss/{k}": v for k, v in losses.items()}
        values["images_per_second"] = images_per_second
        with self._calls(trainer, "logging the losses"):
            self.run.log({**_numbers(values), "step": trainer.state.step - 1})  # the step's index, as MLflow has it

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        if self.run is None:
            return
        step = int(metrics.get("step", trainer.state.step))  # as metrics_during_training.csv has it
        with self._calls(trainer, "logging a quality point"):
            self.run.log({**_numbers({f"quality/{k}": v for k, v in metrics.items() if k != "step"}), "step": step})

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if self.run is None:
            return
        grid = trainer.run_dir / "samples" / f"epoch_{epoch:04d}.png"  # drawn at this epoch's end, if on its cadence
        if grid.is_file():
            with self._calls(trainer, "logging a sample grid"):
                self.run.log({"samples": self.wandb.Image(str(grid), caption=f"epoch {epoch}"),
                              "step": trainer.state.step})

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self.run is None:
            return
        with self._calls(trainer, self.AT_END):
            self._end(trainer, result)
        self.run = None

    # ------------------------------------------------------------------ helpers

    def _start(self, trainer: Trainer) -> None:
        """The W&B run: the resumed ganvae run's own, open again, or a new one."""
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
            notes=f"ganvae run folder: {run_dir.resolve()}",
            settings=self.wandb.Settings(init_timeout=float(os.environ.get("WANDB_INIT_TIMEOUT")
                                                            or WANDB_INIT_TIMEOUT_S)))
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")  # every chart's x axis: the training step
        if earlier is not None:  # a resumed ganvae run: the same W&B run, open again
            self.run.summary["ganvae/resumed_at_step"] = trainer.state.step
            return
        mode = "offline" if self.run.offline else str(self.run.settings.mode)  # ganvae evaluate reopens it so
        atomic_write_text(id_file, json.dumps({"id": self.run.id, "project": self.project, "entity": self.entity,
                                               "mode": mode, "dir": str(local)}, indent=2) + "\n")

    def _end(self, trainer: Trainer, result: TrainResult) -> None:
        """The run's files, the checkpoint as an artifact, the summary; then the W&B run is finished."""
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

    def _forget(self) -> str:
        run, self.run = self.run, None
        record = f"Its W&B run {run.id} stops here" if run is not None else "No W&B run was made"
        mode = self.mode or os.environ.get("WANDB_MODE") or "online"
        return (f"{record} (project {self.project!r}, mode {mode}). Check W&B's login and network, or set "
                f"run.wandb_mode=offline (then upload with wandb sync).")

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _earlier_run(id_file: Path) -> str | None:
        """The id of the W&B run a resumed ganvae run logged to (W&B's resume="allow" makes it anew if it is gone)."""
        try:
            return str(json.loads(id_file.read_text())["id"])
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or an unreadable file: a new W&B run
            return None


# run.log_to's values (besides "none")
TRACKERS: dict[str, type[_Tracker]] = {"mlflow": MLflowLogger, "wandb": WandbLogger}


def tracker_callbacks(run_cfg) -> list[Callback]:
    """The trackers ``run.log_to`` turns on (a name, or a list of names), built from the run config."""
    names = [run_cfg.log_to] if isinstance(run_cfg.log_to, str) or run_cfg.log_to is None else run_cfg.log_to
    return [TRACKERS[name].from_config(run_cfg) for name in dict.fromkeys(names) if name not in (None, "none")]
