"""A training that cannot learn in its budget says so: one line naming the likely cause and the fix.

Two checks, each at most once a session:

- **Speed.** A built-in family's default recipe (its own model settings, batch size and 28x28 images, fp32 on a
  CPU) has a measured speed, :data:`REFERENCE_IMAGES_PER_SECOND`. A run far below it (under
  :data:`FAR_BELOW` of it) is almost never the model: it is a loaded machine, or more torch threads than free
  cores, which then wait on each other (benchmarks/RESULTS.md, "The speed check's reference"). The check runs
  once the session has trained :data:`CHECK_AFTER_S` seconds, or at the end of a shorter one.
- **Budget.** A wall-clock budget that ended before the first in-training quality point was due leaves no
  measure of what was learned.
"""

from __future__ import annotations

import dataclasses
import os

# images/s of each built-in family's default recipe on an unloaded CPU: the yardstick a run's speed is judged by
# (benchmarks/RESULTS.md, "The speed check's reference", which names the machine)
REFERENCE_IMAGES_PER_SECOND = {"gan": 3029.0, "dcgan": 4368.0, "vae": 33223.0, "conv-vae": 5072.0,
                               "vae-gan": 1216.0, "cppn": 96.0}
FAR_BELOW = 0.125  # under an eighth of the reference: more than any machine or thread count explains
CHECK_AFTER_S = 30.0  # seconds of training before judging the speed (start-up and first steps are slower)
MIN_SECONDS = 5.0  # a session shorter than this is not judged at all


def reference_speed(cfg) -> float | None:
    """The reference images/s for ``cfg`` if it is a built-in family's default recipe on a CPU, else None (a
    plugin cannot take a built-in name, so the table's names are the built-in families)."""
    from ganvae.registry import get_entry

    if cfg.model_name not in REFERENCE_IMAGES_PER_SECOND:
        return None
    entry = get_entry(cfg.model_name)
    same_model = dataclasses.asdict(cfg.model) == dataclasses.asdict(entry.config_cls())
    same_run = (cfg.train.batch_size == entry.train_defaults.get("batch_size") and cfg.data.image_size == 28
                and cfg.train.precision == "fp32" and cfg.train.device in ("auto", "cpu"))
    return REFERENCE_IMAGES_PER_SECOND[cfg.model_name] if same_model and same_run else None


def machine_load() -> tuple[float | None, int]:
    """The 1-minute load average (None where unknown) and the cores this process may use."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        return os.getloadavg()[0], max(cores, 1)
    except (AttributeError, OSError):
        return None, max(cores, 1)


def slow_training_message(model_name: str, images_per_second: float, reference: float, threads: int,
                          load: float | None, cores: int, timed: bool = True) -> str | None:
    """The warning for a run at ``images_per_second`` against ``reference``, or None if it is not far below."""
    if images_per_second >= FAR_BELOW * reference:
        return None
    if load is not None and load > cores:
        cause = (f"the machine is loaded (load average {load:.1f} on {cores} cores): other work takes the "
                 f"cores, and torch's {threads} threads wait on each other")
    else:
        cause = f"more torch threads ({threads}) than free cores, or another program using them"
    fix = ("--set train.num_threads=1 (ganvae.train: num_threads=1)" if threads > 1 else "stop the other work")
    start = (f"training at {images_per_second:.0f} images/s, under {FAR_BELOW:.1%} of what the default {model_name} "
             f"recipe reaches ({reference:.0f} images/s measured on 2 cores): likely {cause}. Fix: {fix}")
    if not timed:  # a budget of steps or epochs: the same training, later
        return (f"{start}; the budget is in steps, so the run trains as much, about "
                f"{reference / images_per_second:.0f} times slower.")
    return (f"{start}, or give it a larger --max-minutes (max_minutes=); at this speed the budget buys a fraction of "
            f"the training it was meant to.")


def budget_message(stopped_by: str, quality_points: int, metrics_on: bool, minutes: float | None) -> str | None:
    """The warning for a wall-clock budget that ended before the first quality point, or None."""
    if stopped_by != "time" or not metrics_on or quality_points > 0:
        return None
    return (f"the wall-clock budget (--max-minutes {minutes:g}; ganvae.train: max_minutes=) ended before the first "
            "in-training quality point, so nothing measured what the model learned: give a larger --max-minutes, "
            "or evaluate the run with `ganvae evaluate RUN` (Python: ganvae.inference.tasks.evaluate).")
