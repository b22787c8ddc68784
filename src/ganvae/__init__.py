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
    from ganvae.pipeline import Images, Pipeline, load, train
    from ganvae.registry import ModelEntry, register_model
    from ganvae.training.callbacks import BestCheckpoint, Callback, EarlyStopping
    from ganvae.training.tracking import MLflowLogger
    from ganvae.zoo import pretrained_names

_LAZY = {"load": "ganvae.pipeline", "train": "ganvae.pipeline", "Pipeline": "ganvae.pipeline",
         "Images": "ganvae.pipeline", "pretrained_names": "ganvae.zoo",
         "Callback": "ganvae.training.callbacks", "EarlyStopping": "ganvae.training.callbacks",
         "BestCheckpoint": "ganvae.training.callbacks",
         "MLflowLogger": "ganvae.training.tracking",
         "register_model": "ganvae.registry", "ModelEntry": "ganvae.registry"}
_SUBMODULES = ("datasets",)  # public modules, imported on first use: ganvae.datasets.load(...)
__all__ = ["__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"ganvae.{name}")
    raise AttributeError(f"module 'ganvae' has no attribute {name!r}")


def __dir__() -> list[str]:  # the lazy names too, so dir(ganvae) and tab completion show the public API
    return sorted({*globals(), *__all__})
