"""ganvae: train, sample, animate and compare GANs and VAEs on MNIST-like data.

Importing this package has no side effects and imports nothing heavy: ``ganvae.load`` (a pretrained model or a
run, as a pipeline), ``ganvae.train`` and the classes below are imported on first use.

    import ganvae
    model = ganvae.load("mnist-dcgan")
    model.sample(16, seed=0).grid()
"""

from typing import TYPE_CHECKING

from ganvae._version import __version__

if TYPE_CHECKING:  # what a type checker sees: the real objects; at run time they are imported on first use
    from ganvae import datasets
    from ganvae.inference import tasks as operations
    from ganvae.inference.pipeline import Images, Pipeline, load, train
    from ganvae.registry import ModelEntry, register_model
    from ganvae.storage.zoo import pretrained_names
    from ganvae.training.callbacks import BestCheckpoint, Callback, EarlyStopping
    from ganvae.training.tracking import MLflowLogger

_PIPELINE = "ganvae.inference.pipeline"
_LAZY = {"load": _PIPELINE, "train": _PIPELINE, "Pipeline": _PIPELINE, "Images": _PIPELINE,
         "pretrained_names": "ganvae.storage.zoo",
         "Callback": "ganvae.training.callbacks", "EarlyStopping": "ganvae.training.callbacks",
         "BestCheckpoint": "ganvae.training.callbacks",
         "MLflowLogger": "ganvae.training.tracking",
         "register_model": "ganvae.registry", "ModelEntry": "ganvae.registry"}
# public modules, imported on first use: ganvae.datasets.load(...); `from ganvae import operations` (evaluate,
# export, fit_prior: the tasks on a trained model, in ganvae.inference.tasks)
_SUBMODULES = {"datasets": "ganvae.datasets", "operations": "ganvae.inference.tasks"}
__all__ = ["__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'ganvae' has no attribute {name!r}")


def __dir__() -> list[str]:  # the lazy names too, so dir(ganvae) and tab completion show the public API
    return sorted({*globals(), *__all__})
