"""Same seed, same command, same machine: two fresh runs in separate processes give bit-identical weights."""

import os
import subprocess
import sys

import pytest
import torch

from iris import rundir
from iris.collect import evaluate
from iris.trainer import load_agent, train
from iris.vocabulary import TEST_RETURN

from conftest import QUICK
from test_trainer import new_run, weights  # the shrunk catch run, seed 3


@pytest.mark.parametrize("threads", [1, 2])
def test_two_fresh_runs_of_one_seed_give_the_same_weights(tmp_path, threads):
    runs = []
    for name in ("a", "b"):
        run = new_run(tmp_path / name, ["training.epochs=8"])
        env = os.environ | {"OMP_NUM_THREADS": str(threads)}
        subprocess.run([sys.executable, "-c", f"from iris.trainer import train; train({str(run)!r})"], env=env,
                       check=True, capture_output=True, timeout=600)
        runs.append(run)
    a, b = (weights(run) for run in runs)
    assert len(a) > 100 and all(torch.equal(a[k], b[k]) for k in a)
    assert rundir.read_eval(runs[0])["returns"] == rundir.read_eval(runs[1])["returns"]
    assert rundir.read_status(runs[0])["runtime"]["torch_threads"] == threads


def test_how_often_a_run_evaluates_does_not_change_what_it_learns(tmp_path):
    runs = {every: new_run(tmp_path / f"every{every}", [f"training.eval_every={every}"]) for every in (1, 0)}
    for run in runs.values():
        train(run)
    a, b = (weights(run) for run in runs.values())
    assert all(torch.equal(a[k], b[k]) for k in a)
    evaluated, plain = (rundir.read_metrics(run) for run in runs.values())
    assert all(TEST_RETURN in row for row in evaluated) and not any(TEST_RETURN in row for row in plain)
    assert [row.get("actor_critic/loss") for row in evaluated] == [row.get("actor_critic/loss") for row in plain]
    # and the same checkpoint, evaluated twice with one seed, plays the same episodes whatever ran in between
    agent, cfg, _ = load_agent(runs[1])
    first = evaluate(agent, cfg.env, 6, 1.0, 5, torch.device("cpu"))
    torch.rand(100)
    assert evaluate(agent, cfg.env, 6, 1.0, 5, torch.device("cpu")) == first
