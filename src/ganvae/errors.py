"""Errors that the command line prints as one paragraph, without a traceback.

Every message says *what* is wrong, *where* (file, field, step) and *how to fix it*. An error about a value the
caller gave is a :class:`FieldError`: it names the field as the library knows it, and each front end words it as its
user typed it (a flag, a keyword, a JSON field); no library function takes a front end's words as an argument.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any, Callable, Mapping


class GanvaeError(Exception):
    """Base class for user-facing errors; the CLI prints ``str(err)`` and exits with ``exit_code``."""

    exit_code = 2


class ConfigError(GanvaeError):
    """A config file or ``--set`` override is invalid (unknown key, wrong type, bad value)."""


class DataError(GanvaeError):
    """A data file is missing, truncated, corrupt, or fails its checksum."""


class DownloadError(DataError):
    """A dataset could not be downloaded from any mirror."""


class CheckpointError(GanvaeError):
    """A checkpoint cannot be loaded (other model, other format version, corrupt file)."""


class TrainingDiverged(GanvaeError):
    """A loss became NaN or infinite; the run stopped and its last good checkpoint is kept."""

    exit_code = 3


class UnsupportedOperation(GanvaeError):
    """A command was asked of a model that cannot do it (e.g. reconstruct with a GAN)."""


class Interrupted(GanvaeError):
    """Ctrl-C or SIGTERM: a checkpoint was written and the run can be resumed."""

    exit_code = 130


NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda self: "NO_VALUE"})()  # spell(name): the field alone

# How a front end writes a field (its user's words): ``spell(name, value)`` is the field as given (``--n-samples
# 10``, ``n_samples=10``, ``n 10``), ``spell(name)`` the way to set it (``--n-samples``, ``n_samples=...``).
Spelling = Callable[..., str]


class Placeholder(str):
    """A value that stands for what the user should type (``DIR``, ``RUN_FOLDER``): written bare, never quoted."""

    def __repr__(self) -> str:
        return str(self)


def keyword(name: str, value: Any = NO_VALUE) -> str:
    """The library's own spelling of a field, which is Python's: the argument (``n_samples=10``); a config key
    ``section.key`` as ``ganvae.train`` takes it (``model__latent_dim=8``). Without a value: ``n_samples=...``."""
    word = name.replace(".", "__")
    if value is NO_VALUE:
        return f"{word}=..."
    return f"{word}={os.fspath(value) if isinstance(value, os.PathLike) else value!r}"


_TOKEN = re.compile(r"\{(given|field)(?::([\w.]+)(#\w+)?)?\}")


class FieldError(GanvaeError):
    """A value given for one field is refused. The error carries the field as the library names it (an argument,
    ``n_samples``, or a config key, ``train.epochs``), the value, the rule it breaks (``reason``, and ``bound``
    where there is one), and its message as a template whose ``{given}`` (the field with its value) and ``{field}``
    (the way to set it), or ``{given:NAME}`` and ``{field:NAME}`` for another field (its value in ``values``;
    ``{given:NAME#tag}``: that field with another value, ``values["NAME#tag"]``, e.g. an example), each front end
    fills in with its own spelling (:data:`Spelling`): flags on the command line (``ganvae.cli.common.flag``),
    keywords in Python (``ganvae.inference.pipeline.keyword``), JSON fields in the explorer
    (``ganvae.explore.server.json_field``). ``str()`` uses the library's own, Python's (:func:`keyword`), until a
    front end sets its own with :meth:`worded`.

    Subclasses say what kind of problem it is, so ``except ConfigError`` / ``DataError`` still catch it.
    """

    def __init__(self, field: str, value: Any, message: str, *, reason: str = "", bound: Any = None,
                 values: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.field = field  # the library's name: an argument (n_samples) or a config key (train.epochs)
        self.value = value  # the value refused
        self.reason = reason  # the rule it breaks, in words ("at least 50")
        self.bound = bound  # the limit it is outside, where there is one (a number, a Bound)
        self.message = message  # the template
        self.values = {field: value, **(values or {})}  # the values {given:NAME} shows
        self.spell: Spelling = keyword

    def render(self, spell: Spelling) -> str:
        """The message with every field spelled by ``spell``."""
        def word(m: re.Match) -> str:
            name = m.group(2) or self.field
            value = self.values.get(name + (m.group(3) or ""))
            return spell(name, value) if m.group(1) == "given" else spell(name)

        return _TOKEN.sub(word, self.message)

    def worded(self, spell: Spelling) -> "FieldError":
        """From now on ``str()`` speaks ``spell``'s words (a front end's, before it lets the error go on); returns
        the error itself, to re-raise."""
        self.spell = spell
        return self

    def __str__(self) -> str:
        return self.render(self.spell)

    def __reduce__(self):  # pickled whole (its arguments are not its args)
        return _restore, (type(self), self.__dict__.copy())


def _restore(cls: type[FieldError], state: dict) -> FieldError:
    err = cls.__new__(cls)
    Exception.__init__(err, state["message"])
    err.__dict__.update(state)
    return err


class FieldConfigError(FieldError, ConfigError):
    """A value outside its field's rule: a bound, a type, a choice."""


class FieldDataError(FieldError, DataError):
    """The data a field points at cannot be used: a folder that is missing or cannot be read."""


class FieldUnsupported(FieldError, UnsupportedOperation):
    """A value that asks what this model cannot do (a class of an unconditional model)."""


def suggest(name: str, valid: list[str], list_all: bool = True) -> str:
    """The hint appended to an unknown name's message: " Did you mean 'x'?" for the nearest valid name, else
    (with ``list_all``) the valid names, else nothing. One rule for config keys, models, presets and datasets."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    if close:
        return f" Did you mean {close[0]!r}?"
    return " Valid keys: " + ", ".join(valid) + "." if list_all else ""
