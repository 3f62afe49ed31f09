"""What a dead tracking server costs a campaign: the same small campaign (2 Catch runs of the `catch` preset,
3 epochs, both at once) against a healthy secured server (`iris-bench tracking-server`) and against a
server that is down (nothing listens on its port), each timed as `iris-bench run --wait`. Target: under
10% more wall time dead than healthy. Wall time depends on what else the machine runs."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmark.measure.campaign_overhead import measure
from benchmark.measure.rows import Row
from benchmark.tracking_server import LOCAL, free_port, uri, wait_healthy

CAMPAIGN_NAME = "2 Catch runs x 3 epochs"
CAMPAIGN = ["--games", "Catch", "--seeds", "2", "--preset", "catch", "--set", "training.epochs=3",
            "--max-parallel", "2", "--wait"]


def dead_server_cost(repeats: int = 2) -> list[Row]:
    """Mean wall time of `repeats` campaigns of each kind, alternating which goes first (the machine's load drifts)."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        password = secrets.token_urlsafe(18)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "tracking-server", "--root",
                                   str(Path(tmp) / "server"), "--port", str(port), "--workers", "1"],
                                  env=os.environ | {"MLFLOW_AUTH_ADMIN_PASSWORD": password},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        envs = {"healthy": {"MLFLOW_TRACKING_URI": uri(LOCAL, port), "MLFLOW_TRACKING_USERNAME": "admin",
                            "MLFLOW_TRACKING_PASSWORD": password},
                "dead": {"MLFLOW_TRACKING_URI": uri(LOCAL, free_port())}}  # nothing listens there
        walls: dict[str, list[float]] = {"healthy": [], "dead": []}
        try:
            wait_healthy(uri(LOCAL, port), server)
            for i in range(repeats):
                for kind in ("dead", "healthy") if i % 2 else ("healthy", "dead"):
                    walls[kind].append(_campaign(tmp, f"{kind}{i}", envs[kind]))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
    mean = {kind: sum(w) / len(w) for kind, w in walls.items()}
    return [*((f"{CAMPAIGN_NAME}, {kind} server: wall time, mean of {repeats}", mean[kind], "s") for kind in walls),
            ("dead / healthy wall time", mean["dead"] / mean["healthy"], "x")]


def _campaign(tmp: str, name: str, env: dict[str, str]) -> float:
    wall, _cpu = measure(["run", *CAMPAIGN, "--campaign", name, "--runs-root", str(Path(tmp) / "runs")], env=env)
    return wall
