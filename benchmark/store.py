"""Talking to an MLflow store: every call bounded to seconds, and every failure told in one line.

MLflow's HTTP client retries a dead server for minutes by default. `client` sets its retry, backoff
and timeout variables to seconds for this process, unless the user set them (CLIENT_DEFAULTS). `reported` turns what a
call raised into a `TrackingError` saying which store failed and what to do: unreachable, credentials
refused (401), permission denied (403), a damaged SQLite file. Messages name the store by its URI,
which never holds credentials (`check_uri`): those come from MLflow's own variables or its
credentials file only.
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from iris.errors import ConfigError

# Per HTTP call: one retry after a short backoff, 10 s without an answer is a failure; and no "View run at"
# line on stdout after each sync (it would fill the output of `sync` and of every job).
CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
CREDENTIALS = ("set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
               "(or both in ~/.mlflow/credentials, section [mlflow])")


class TrackingError(ConfigError):
    """The tracking store failed or refused: the message names it and what to do."""


class DamagedStateFile(TrackingError):
    """One run's mlflow.json is damaged: that run is skipped, the others are synced."""


def client(uri: str):
    """An MlflowClient whose HTTP calls give up within seconds (unless the user set MLflow's variables)."""
    for name, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from mlflow import MlflowClient

    return MlflowClient(uri)


def check_uri(uri: str) -> str:
    """A tracking URI with user:password@ in it would be printed and stored: refused."""
    if "@" in urllib.parse.urlsplit(uri).netloc:
        raise TrackingError(f"MLFLOW_TRACKING_URI holds credentials: give it without them and {CREDENTIALS}")
    return uri


@contextlib.contextmanager
def reported(uri: str, experiment: str):
    """Re-raise any failure inside as a one-line TrackingError about the store at `uri`."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as e:
        raise TrackingError(explain(e, uri, experiment)) from None


def probe(uri: str) -> None:
    """A one-line TrackingError now where the store at `uri` cannot be read (unreachable, refused, a damaged SQLite
    file), before a reader's first MLflow call would raise MLflow's own traceback."""
    with reported(check_uri(uri), ""):
        client(uri).search_experiments(max_results=1)


@dataclass
class Outcome:
    failed: bool = False


@contextlib.contextmanager
def tolerated(consequence: str, uri: str | None = None, experiment: str = "") -> Iterator[Outcome]:
    """The one way tracking never stops the work: a failure inside (of the store at `uri`, when given) is told in
    one line, "tracking: <what failed>; <consequence>", and swallowed; the outcome says whether it failed."""
    outcome = Outcome()
    try:
        if uri is None:
            yield outcome
        else:
            with reported(uri, experiment):
                yield outcome
    except TrackingError as e:
        outcome.failed = True
        print(f"tracking: {e}; {consequence}", file=sys.stderr)


def explain(e: Exception, uri: str, experiment: str) -> str:
    code = getattr(e, "error_code", None)
    if code == "UNAUTHENTICATED":
        return f"MLflow server {uri} refused the credentials (HTTP 401): {CREDENTIALS}"
    if code == "PERMISSION_DENIED":
        return (f"MLflow server {uri} refused this user access to experiment {experiment!r} (HTTP 403): ask its "
                f"admin for a permission on it, or {CREDENTIALS} of a user who has one")
    first_line = (str(e).strip().splitlines() or [""])[0][:300]
    if uri.startswith("sqlite:") and _is_damaged_sqlite(e):
        path = uri.removeprefix("sqlite:///")
        return (f"campaign store {path} is damaged ({first_line}): move it aside; `iris-bench sync` "
                f"rebuilds it from the run directories")
    if "failed with exception" in first_line or "failed with timeout exception" in first_line:
        return f"MLflow server {uri} is unreachable"
    return f"MLflow store {uri} failed ({type(e).__name__}: {first_line})"


def _is_damaged_sqlite(e: Exception) -> bool:
    from sqlalchemy.exc import DatabaseError, OperationalError

    return isinstance(e, DatabaseError) and not isinstance(e, OperationalError)
