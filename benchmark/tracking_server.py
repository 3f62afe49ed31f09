"""`iris-bench tracking-server`: a shared MLflow server that lets only the team in.

It runs MLflow's own basic-auth app (users with passwords, permissions per experiment) in front of a
store kept in one folder:

    DIR/mlflow.db        runs, metrics, params, tags
    DIR/mlartifacts/     artifacts (jobs upload them through the server)
    DIR/basic_auth.db    users and permissions (passwords only as salted hashes)
    DIR/basic_auth.ini   the auth app's settings, written here; no secret in it

It listens on 127.0.0.1 unless told otherwise. Secrets never come from the command line: the admin's
password from MLFLOW_AUTH_ADMIN_PASSWORD on the first start (MLflow creates the admin user then, and
ignores the variable afterwards), the session key from MLFLOW_FLASK_SERVER_SECRET_KEY, else a random
one for this start, handed to the server in its environment only.
"""

from __future__ import annotations

import configparser
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from iris.errors import ConfigError

AUTH_CONFIG = "basic_auth.ini"
USERS_DB = "basic_auth.db"
PERMISSIONS = ("NO_PERMISSIONS", "READ", "EDIT", "MANAGE")  # what a user may do on an experiment not granted
LOCAL = "127.0.0.1"


def serve(root: Path, host: str, port: int, workers: int, default_permission: str) -> None:
    """Print the URI and what a job needs, then become the server (stop it with Ctrl-C or a signal)."""
    if default_permission not in PERMISSIONS:
        raise ConfigError(f"unknown --default-permission {default_permission!r}; valid: {', '.join(PERMISSIONS)}")
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if not (root / USERS_DB).exists() and not os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD"):
        raise ConfigError(f"{root / USERS_DB} does not exist yet: set MLFLOW_AUTH_ADMIN_PASSWORD (12 characters or "
                          f"more) for this first start, when MLflow creates the admin user")
    config = write_auth_config(root, default_permission)
    print("\n".join(instructions(root, host, port)), flush=True)
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"} | os.environ | {  # GenAI job runners: not needed here
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or secrets.token_urlsafe(32)}
    argv = command(root, host, port, workers)
    os.execve(argv[0], argv, env)


def write_auth_config(root: Path, default_permission: str) -> Path:
    config = configparser.ConfigParser()
    config["mlflow"] = {"default_permission": default_permission, "database_uri": f"sqlite:///{root / USERS_DB}",
                        "admin_username": "admin",
                        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth"}
    path = root / AUTH_CONFIG
    with open(path, "w") as f:
        config.write(f)
    return path


def command(root: Path, host: str, port: int, workers: int) -> list[str]:
    argv = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination",
            str(root / "mlartifacts"), "--host", host, "--port", str(port), "--workers", str(workers)]
    if host != LOCAL:  # MLflow accepts only localhost and private-IP Host headers unless told the names
        names = {socket.gethostname(), socket.getfqdn(), "localhost", LOCAL}
        argv += ["--allowed-hosts", ",".join(f"{n}:{port}" for n in sorted(names))]
    return argv


def uri(host: str, port: int) -> str:
    return f"http://{LOCAL if host == LOCAL else socket.getfqdn()}:{port}"


def instructions(root: Path, host: str, port: int) -> list[str]:
    lines = [f"MLflow tracking server for {root}: basic-auth (users and passwords), listening on {host}:{port}",
             f"tracking URI: {uri(host, port)}",
             "a job needs, in its environment (never on a command line):",
             f"  export MLFLOW_TRACKING_URI={uri(host, port)}",
             "  MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or both in ~/.mlflow/credentials "
             "(chmod 600): [mlflow] mlflow_tracking_username = ... / mlflow_tracking_password = ..."]
    if host == LOCAL:
        lines.append(f"jobs on other nodes: ssh -N -f -L {port}:{LOCAL}:{port} {socket.gethostname()} first "
                     f"(the URI above then reaches this server)")
    lines.append("users: admin (password from MLFLOW_AUTH_ADMIN_PASSWORD at the first start) adds users and "
                 "permissions with mlflow.server.get_app_client('basic-auth', ...) (README)")
    return lines


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return s.getsockname()[1]


def wait_healthy(server_uri: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    """Until the server at `server_uri` answers /health; raises if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the MLflow server exited ({process.returncode}) before answering at {server_uri}")
        try:
            with urllib.request.urlopen(f"{server_uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"no answer from the MLflow server at {server_uri} within {timeout_s:.0f} s")
