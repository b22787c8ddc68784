"""Where a run's training images came from, so that every later command uses the same ones or says why not
(issue 39, item 2).

A run records its data twice: ``data.dataset`` in its config (a named dataset, ``folder:PATH``, or, for images given
from Python, ``python:<fingerprint>``: they are not stored with the run) and the data's fingerprint in its
checkpoint (:meth:`ganvae.data.dataset.ImageData.fingerprint`, a hash of the training images and labels). A command
that loads the run's own data again (``fit-prior``, ``evaluate``, ``compare``, ``reconstruct``, ``--resume``)
checks the fingerprint, as ``--resume`` always has; one that is asked for other data by name scores against it on
purpose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganvae.errors import DataError

if TYPE_CHECKING:
    from ganvae.config import DataConfig
    from ganvae.data.dataset import ImageData

PYTHON_PREFIX = "python:"  # data.dataset of a run trained on images given from Python: python:<fingerprint>


def python_dataset_name(data: ImageData) -> str:
    """The ``data.dataset`` a run records for images given from Python (a tensor, an array, a Dataset)."""
    return f"{PYTHON_PREFIX}{data.fingerprint()}"


def is_python_data(dataset: str) -> bool:
    return dataset.startswith(PYTHON_PREFIX)


def not_stored(run: object, dataset: str) -> DataError:
    """The error for a command that needs the training images of a run trained on images given from Python."""
    return DataError(f"{run} was trained on images given from Python (data.dataset: {dataset}); they are not stored "
                     f"with the run. Pass them again: ganvae.train(..., out=RUN, resume=True, data=IMAGES), "
                     f"ganvae.operations.fit_prior(RUN, data=IMAGES), ganvae.operations.evaluate(RUN, data=IMAGES, "
                     f"classifier=...); or name other data on purpose (--dataset NAME).")


def check_fingerprint(data: ImageData, recorded: str | None, run: object, source: str) -> None:
    """Refuse ``data`` (``source`` says where it came from: "the images passed", "data.dataset=mnist") when the
    run's checkpoint recorded another fingerprint; ``recorded`` None (a pretrained folder, an old checkpoint)
    checks nothing."""
    if recorded is None or data.fingerprint() == recorded:
        return
    raise DataError(f"{run}: the training images it records (fingerprint {recorded}) are not the {len(data)} of "
                    f"{source} (fingerprint {data.fingerprint()}): the data changed since, or the run was trained on "
                    f"other images. Pass the run's own images (data=, --data-dir), or name the data to use on "
                    f"purpose (--dataset NAME).")


def load_named(cfg: DataConfig, run: object) -> ImageData:
    """The dataset ``cfg`` names, for ``run``'s training (:func:`ganvae.data.dataset.load_dataset`); images given
    from Python are refused (:func:`not_stored`): a ``--resume`` from the command line cannot pass them again."""
    from ganvae.data.dataset import load_dataset

    if is_python_data(cfg.dataset):
        raise not_stored(run, cfg.dataset)
    return load_dataset(cfg)
