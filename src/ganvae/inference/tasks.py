"""The operations on a trained model that read data or write a model: evaluate it, fit its learned prior, export it
as a pretrained folder."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from ganvae.common.device import machine_description
from ganvae.common.files import atomic_write_text, check_output
from ganvae.common.pixels import uint8_to_unit
from ganvae.config import config_from_dict
from ganvae.errors import ConfigError, FieldConfigError, Placeholder, UnsupportedOperation
from ganvae.inference import _at_least, _generator, run_data
from ganvae.storage import LoadedRun, checkpoint_path, is_pretrained_folder
from ganvae.storage import checkpoint as ckpt_io
from ganvae.storage import load as load_run

log = logging.getLogger(__name__)


EXPORT_FORMATS = ("ganvae", "onnx")


def export(run, out: str | Path, dtype: str = "float16", format: str = "ganvae") -> Path:
    """Write a run's sampling networks as a pretrained folder (config.json, model.safetensors, README.md), or, with
    ``format="onnx"``, as ONNX graphs for onnxruntime (:mod:`ganvae.storage.onnx_export`)."""
    from ganvae.storage import pretrained_folder

    if format not in EXPORT_FORMATS:
        raise ValueError(f"export format {format!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    check_output(out, kind="folder")
    loaded = load_run(run)
    source_run = str(loaded.run_dir or loaded.source)
    _check_export_folder(Path(out), source_run)
    if format == "onnx":
        from ganvae.storage.onnx_export import card, export_onnx

        record = export_onnx(loaded.model, out, source=source_run)
        atomic_write_text(Path(out) / "README.md", card(Path(str(run)).name, record))
        return Path(out)
    summary = training_summary(loaded.run_dir) or {}
    run_json = loaded.run_dir / "run.json" if loaded.run_dir else None
    environment = json.loads(run_json.read_text()) if run_json and run_json.is_file() else {}
    if "machine" not in environment and loaded.run_dir and (loaded.run_dir / "metrics.json").is_file():
        # runs from before run.json named the machine: their evaluation (same session) did
        environment["machine"] = json.loads((loaded.run_dir / "metrics.json").read_text()).get("machine")
    command = ((loaded.run_dir / "command.txt").read_text().strip()
               if loaded.run_dir and (loaded.run_dir / "command.txt").is_file() else None)
    source = {"run": source_run, "command": command, "steps": summary.get("steps"),
              "epochs": summary.get("epochs_completed"), "train_seconds": summary.get("train_seconds"),
              "images_per_second": summary.get("images_per_second"),
              "machine": environment.get("machine") or environment.get("processor"), "device": summary.get("device"),
              "torch": environment.get("torch")}
    return pretrained_folder.save_pretrained(loaded.model, loaded.config, out, dtype=dtype, source=source)


EXPORT_FILES = ("config.json", "model.safetensors", "README.md", "decoder.onnx", "sampler.onnx", "onnx.json")


def _check_export_folder(out: Path, source_run: str) -> None:
    """An export writes a folder of its own: one that holds files it would write is refused, unless they are an
    earlier export of the same run (its ``config.json`` or ``onnx.json`` names the run), which it replaces, saying
    which files."""
    present = [name for name in EXPORT_FILES if (out / name).exists()]
    if not present:
        return
    earlier = set()
    for record in ("config.json", "onnx.json"):
        try:
            earlier.add(json.loads((out / record).read_text()).get("source", {}).get("run"))
        except (OSError, ValueError, AttributeError):  # absent, damaged or not ours: not an earlier export
            pass
    if source_run in earlier:
        log.warning("export: replacing %s in %s (an earlier export of %s)", ", ".join(present), out, source_run)
        return
    raise FieldConfigError("out", str(out), f"{{given}} already holds {', '.join(present)}, not an export of "
                           f"{source_run}; give a new or empty folder (or remove those files first).",
                           reason="a new or empty folder")


MIN_EVAL_SAMPLES = 50  # fewer samples than this make the metrics meaningless (k-NN radii, covariances)


def training_summary(run_dir: Path | None) -> dict | None:
    """The run's ``summary.json`` (steps, minutes, speed), or None."""
    if run_dir is None or not (run_dir / "summary.json").is_file():
        return None
    return json.loads((run_dir / "summary.json").read_text())


def loaded_training_summary(loaded: LoadedRun) -> dict | None:
    """Steps, minutes and speed of a loaded model's training: its run's ``summary.json``, or, for a pretrained
    folder, the record of the run it was exported from (config.json's ``source``)."""
    from ganvae.storage import pretrained_folder

    summary = training_summary(loaded.run_dir)
    if summary is None and loaded.checkpoint is None and loaded.source is not None:
        src = pretrained_folder.read_config(loaded.source).get("source") or {}
        if src.get("train_seconds") is not None:
            record = {"steps": src.get("steps"), "epochs_completed": src.get("epochs"), "train_seconds":
                      src["train_seconds"], "images_per_second": src.get("images_per_second"),
                      "device": src.get("device")}
            summary = {k: v for k, v in record.items() if v is not None}
    return summary


def evaluate(run: "str | Path | LoadedRun", n_samples: int = 10000, seed: int = 0, iwae_k: int = 50,
             data_dir: str | None = None, out: str | Path | None = None,
             classifier: str | Path | None = None, dataset: str | None = None, use_ema: bool = True,
             data=None, inception_weights: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a run (a folder, a checkpoint, an already loaded run), ``real:DATASET`` (its training
    images as 'samples': the reference figures) or ``images:DIR`` (a folder of another program's
    samples, scored against ``dataset``, default mnist, with the same protocol; images are made grey and resized
    to the dataset's size). A run is scored against its own dataset's test split, or ``dataset``'s (e.g. a model
    trained on full MNIST against the offline ``mnist-25k``). Asked for neither ``dataset`` nor ``data_dir``, a
    pretrained model or ``images:DIR`` whose MNIST is not on this machine is scored against the packaged
    ``mnist-25k`` instead of a download, and the protocol says so. ``use_ema=False`` scores the trained weights
    instead of their moving average. ``data``: the run's training images, for a run trained on images given from
    Python (they must be the ones its checkpoint records; their metrics need a ``classifier`` for them).

    The features are those of the dataset's own network (:func:`ganvae.metrics.classifier.load_feature_network`: the
    shipped MNIST classifier for digits, the one ``ganvae classifier train`` trained for any other dataset, or the
    file ``classifier``), refused if it was trained on other data or another image shape. ``inception_weights``: a
    local copy of pytorch-fid's Inception-v3 weights; adds the papers' ``fid_inception`` and ``kid_inception``.

    Writes the result as JSON to ``out`` (default ``<run>/metrics.json``) and returns it; a training run's metrics
    also go to the MLflow and W&B runs its training logged to (``final/KEY``; best effort, a warning if not).
    """
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset, stand_in_config
    from ganvae.metrics import evaluate as metrics
    from ganvae.metrics.classifier import load_feature_network

    _at_least(n_samples, MIN_EVAL_SAMPLES, "n_samples", " (the nearest-neighbour metrics use k = 5 neighbours and "
              "the Frechet distance a covariance; 10,000 is the standard)")
    if out is not None:
        check_output(out, example="metrics.json")
    start = time.monotonic()
    real = str(run).startswith("real:")
    folder = str(run)[len("images:"):] if str(run).startswith("images:") else None
    loaded = samples = stand_in = None
    if real or folder is not None:
        data_cfg = DataConfig(dataset=str(run)[5:] if real else dataset or "mnist", data_dir=data_dir)
        if folder is not None and dataset is None and data_dir is None:  # mnist offline: the packaged stand-in
            data_cfg, stand_in = stand_in_config(data_cfg)
        data = load_dataset(data_cfg)
        model_name = "real data (train split)" if real else f"images in {folder}"
        dataset = data.name
        if real:
            idx = torch.randperm(len(data.train_images), generator=_generator(seed))[:n_samples]
            samples = uint8_to_unit(data.train_images[idx])
        else:
            samples = metrics.load_image_samples(folder, data.image_shape[-1], n_samples, seed,
                                                     channels=data.image_shape[0])
    else:
        loaded = load_run(run, use_ema=use_ema)  # (a LoadedRun is used as it is)
        if isinstance(run, LoadedRun):
            run = loaded.run_dir or loaded.source
        # a pretrained model offline: the packaged stand-in; a run: its own images, checked
        data, stand_in = run_data(loaded, dataset, data_dir, data=data)
        model_name, dataset = loaded.name, data.name
    fnet = load_feature_network(dataset, path=classifier, image_shape=data.image_shape)
    inception = None
    if inception_weights is not None:  # read (and checked) before minutes of sampling
        from ganvae.metrics.inception import load_inception

        inception = load_inception(inception_weights)
    result: dict[str, Any] = {"run": str(run), "model": model_name, "dataset": data.name}
    result.update(metrics.evaluate(loaded.model if loaded else None, data, fnet, n_samples, seed, iwae_k, samples,
                                   inception=inception))
    if stand_in is not None:  # the protocol says what the reference was, and why
        result["protocol"]["stand_in"] = stand_in
    if loaded is not None:
        result["training"] = loaded_training_summary(loaded)
    result["seconds"] = round(time.monotonic() - start, 2)
    result["machine"] = machine_description()
    if out is None and loaded is not None and loaded.run_dir is not None:
        out = loaded.run_dir / "metrics.json"
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    if loaded is not None and loaded.run_dir is not None:  # a training run: its trackers' runs get the numbers too
        _log_final_metrics(loaded.run_dir, result, out)
    return result


def _log_final_metrics(run_dir: Path, result: dict[str, Any], out: str | Path | None = None) -> None:
    """Add an evaluation's metrics, as ``final/KEY``, to the MLflow and W&B runs that ``run_dir``'s training logged
    to (``run.log_to``; the trackers of :mod:`ganvae.training.tracking` keep their runs' ids in the run folder):
    MLflow's at the training's last step, W&B's in its summary. Best effort, and as quick as the trackers' own calls
    (MLflow's HTTP retries bounded by :func:`ganvae.common.http_limits.bounded_http`): a store that cannot be reached,
    a tracker that is not installed or a damaged id file is a warning, never a failed evaluation."""
    import math

    values = {f"final/{k}": float(v) for k, v in result.get("metrics", {}).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    step = int((result.get("training") or {}).get("steps") or 0)
    for tracker, name, extra, send in (("MLflow", "mlflow_run.json", "mlflow", _final_to_mlflow),
                                       ("W&B", "wandb_run.json", "wandb", _final_to_wandb)):
        if not values or not (run_dir / name).is_file():
            continue
        try:
            send(json.loads((run_dir / name).read_text()), values, step, run_dir)
        except Exception as err:  # whatever the tracker raises, the evaluation stands
            hint = f" (pip install 'ganvae[{extra}]')" if isinstance(err, ImportError) else ""
            log.warning("evaluate: the final metrics were not logged to the run's %s run (%s: %s)%s; they are in %s.",
                        tracker, type(err).__name__, err, hint, out or "the result")


def _final_to_mlflow(record: dict[str, Any], values: dict[str, float], step: int, run_dir: Path) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from ganvae.common.http_limits import bounded_http  # the trackers' HTTP limits: a server that is down costs
    # seconds, not MLflow's 4 minutes of retries

    uri = record["tracking_uri"]
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():  # MLflow would make a new one
        raise FileNotFoundError(f"the MLflow store {uri} is not there")
    now = int(time.time() * 1000)
    with bounded_http():
        MlflowClient(tracking_uri=uri).log_batch(record["run_id"], metrics=[Metric(k, v, now, step)
                                                                            for k, v in values.items()])


def _final_to_wandb(record: dict[str, Any], values: dict[str, float], step: int, run_dir: Path) -> None:
    import wandb

    local = record["dir"] if record.get("dir") and Path(record["dir"]).is_dir() else run_dir  # W&B's local files
    run = wandb.init(id=record["id"], project=record.get("project"), entity=record.get("entity"),
                     mode=record.get("mode"), dir=str(local), resume="allow", reinit="create_new")
    try:
        run.summary.update(values)  # W&B's place for a run's final numbers (its history is per training step)
    finally:
        run.finish()


def fit_prior(run, out: str | Path | None = None, components: int | None = None, covariance: str | None = None,
              dataset: str | None = None, data_dir: str | None = None, seed: int | None = None,
              data=None) -> dict[str, Any]:
    """Fit (or refit) the learned prior of an encoder model (``model.prior: gmm``, :mod:`ganvae.models.prior`) to
    the posterior means of its training images, and store it.

    A run folder or checkpoint is rewritten in place (atomically; its training state is kept, so it still
    resumes). A pretrained folder is written to ``out``, or in place when ``out`` is None and the folder is not
    one of the shipped zoo's. A model trained with ``model.prior=normal`` is switched to ``gmm``. ``components``
    and ``covariance`` change the mixture (they are recorded in the config); ``dataset``/``data_dir`` say where the
    training images are, or ``data`` passes them (a run trained on images given from Python needs them again; they
    must be the images its checkpoint records); ``seed`` defaults to the run's seed.
    Returns what was fitted and where it was written.
    """
    from dataclasses import replace

    from ganvae.config import validate
    from ganvae.data.dataset import load_dataset
    from ganvae.models.base import fit_latent_prior
    from ganvae.registry import build_model
    from ganvae.storage import model_state, pretrained_folder, zoo

    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise FieldConfigError("seed", seed, "{given}: a seed is a whole number from 0 to 2**63 - 1.",
                               reason="from 0 to 2**63 - 1")  # what torch's generators take
    if out is not None:
        check_output(out, kind="folder")
    path = zoo.resolve(run)
    if is_pretrained_folder(path):
        meta = pretrained_folder.read_config(path)
        if out is None and path.resolve().is_relative_to(zoo.zoo_dir().resolve()):
            raise FieldConfigError("out", None, f"fit-prior {run}: {path} is a model shipped inside the package; write "
                                   f"the refitted model elsewhere with {{given:out}} (then use DIR wherever a run "
                                   f"is taken).", values={"out": Placeholder("DIR")}, reason="a folder of its own")
        if out is None:  # refitted in place: the folder must take the new files (checked before the fit)
            check_output(path, kind="folder", field="run")
        model, cfg = pretrained_folder.load_pretrained(path)
        ckpt = None
    else:
        ckpt = ckpt_io.load_checkpoint(checkpoint_path(path))
        check_output(ckpt.path.parent, kind="folder", field="run")  # rewritten in place, after the fit
        cfg = config_from_dict(ckpt.header["config"], str(ckpt.path))
        if out is not None:
            raise FieldConfigError("out", str(out), f"fit-prior {{given}}: {run} is a training run, whose checkpoint "
                                   f"is refitted in place (it stays resumable); drop {{field}}, or export it first "
                                   f"(`ganvae export`, Pipeline.save_pretrained) and refit the export.",
                                   reason="none for a training run")
    if not hasattr(cfg.model, "prior"):
        raise UnsupportedOperation(f"fit-prior: {cfg.model_name} has no encoder, so it has no posterior to fit a "
                                   f"prior to; it draws from N(0, I). (The encoder families: vae, conv-vae, vae-gan, "
                                   f"cppn.)")
    changes = {"prior": "gmm"}
    if components is not None:
        changes["prior_components"] = components
    if covariance is not None:
        changes["prior_covariance"] = covariance
    cfg.model = replace(cfg.model, **changes)
    validate(cfg, "fit-prior")
    image_shape = tuple(model.image_shape) if ckpt is None else tuple(
        ckpt.header.get("image_shape") or (1, cfg.data.image_size, cfg.data.image_size))
    with torch.random.fork_rng(devices=[]):
        fresh = build_model(cfg, image_shape)
    if ckpt is None:
        fresh.load_state_dict(model_state.with_prior_of(fresh, model.state_dict()))
    else:
        ckpt_io.restore_model(fresh, ckpt, refit_prior=True)
    model = fresh.eval()
    if ckpt is None and data is None:  # a pretrained folder: its dataset as named (never a stand-in for a fit)
        images = load_dataset(replace(cfg.data, dataset=dataset or cfg.data.dataset,
                                      data_dir=data_dir or cfg.data.data_dir))
    else:  # a run's own images, checked against its checkpoint's fingerprint; or those asked for by name
        images, _ = run_data(LoadedRun(model, cfg, ckpt, path if path.is_dir() else None, path), dataset, data_dir,
                             data=data)
    seed = cfg.train.seed if seed is None else seed
    try:
        fit = fit_latent_prior(model, images.train_images, images.train_labels, seed=seed)
    except ValueError as err:
        raise ConfigError(f"fit-prior {run}: {err}.") from None
    if ckpt is None:
        target = Path(out) if out is not None else path
        source_card = path / "README.md"
        card = source_card.read_text() if source_card.is_file() else None
        pretrained_folder.save_pretrained(model, cfg, target, dtype=meta.get("dtype", "float16"),
                                   source=meta.get("source"), card=card)  # the old metrics were of the old prior
        written = target
    else:
        header = dict(ckpt.header, config=cfg.to_dict())
        written = ckpt_io.rewrite_prior(ckpt, header, model)
    prior = model.latent_prior.describe()
    log.info("fitted %s to %d posterior means of %s in %.1f s -> %s", prior, fit.n, images.name, fit.seconds,
             written)
    return {**fit.record(prior, images.name, seed), "written": str(written)}
