"""MLflow's HTTP limits for ganvae's own calls (the trainer's tracker and ``evaluate``'s final metrics), in one
place both layers read: a tracking server that is down must cost seconds, not MLflow's minutes of retries."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# MLflow's HTTP settings for ganvae's calls, where the environment does not set them: MLflow's defaults (7 retries,
# backoff factor 2, 120 s a request) retry a server that is down for over 4 minutes per call. With these a refused
# connection fails in about 3 s (retries after 0 s and 2 s), a server that does not answer in 3 x 5 s + 3 s.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@contextlib.contextmanager
def bounded_http() -> Iterator[None]:
    """MLflow's HTTP client with :data:`HTTP_LIMITS` (each one the environment does not set) for the calls inside;
    MLflow reads them at each request."""
    added = [name for name in HTTP_LIMITS if name not in os.environ]
    os.environ.update({name: HTTP_LIMITS[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
