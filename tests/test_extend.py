"""Training a finished run (or campaign) on to more epochs: refused unless asked for with --extend, recorded in the
spec's history, resumed from the last checkpoint, so it ends with the weights of a run planned that long."""

import json

import torch

from benchmark.cli import main
from iris import rundir

from conftest import QUICK
from test_trainer import new_run, weights


def args(*head, epochs):
    seed = ["--seed", "3"] if head[0] == "train" else []
    return [*head, "--preset", "catch", *seed, *(a for o in [*QUICK, f"training.epochs={epochs}"] for a in ("--set", o))]


def test_a_finished_run_trains_on_to_more_epochs_with_extend(tmp_path, capsys):
    straight = new_run(tmp_path / "straight", ["training.epochs=4"])
    assert main(args("train", "--game", "Catch", "--run-dir", str(straight), epochs=4)) == 0
    run = tmp_path / "run"
    assert main(args("train", "--game", "Catch", "--run-dir", str(run), epochs=2)) == 0
    first_eval = (run / "eval.json").read_text()
    capsys.readouterr()
    assert main(args("train", "--game", "Catch", "--run-dir", str(run), epochs=4)) == 2
    assert "add --extend to train it on to the new epoch count" in capsys.readouterr().err
    assert main(args("train", "--game", "Catch", "--run-dir", str(run), "--extend", epochs=4)) == 0
    spec = rundir.read_spec(run)
    assert spec["config"]["training"]["epochs"] == 4 and [h["epochs"] for h in spec["history"]] == [2]
    assert (run / "eval-epoch2.json").read_text() == first_eval  # the earlier final evaluation is kept
    assert [r["epoch"] for r in rundir.read_metrics(run)] == [1, 2, 3, 4]
    assert rundir.read_status(run)["state"] == "finished"
    a, b = weights(straight), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same as a run planned for 4 epochs
    # Anything else that changed is still refused, --extend or not.
    other = args("train", "--game", "Catch", "--run-dir", str(run), "--extend", epochs=5) + ["--set", "actor_critic.lr=0.1"]
    assert main(other) == 2 and "use a new run directory" in capsys.readouterr().err


def test_a_campaign_trains_on_to_more_epochs_with_extend(tmp_path, capsys):
    def run(epochs, *extra):
        return main(args("run", "--games", "Catch", "--seeds", "1", "--executor", "debug", "--campaign", "c",
                         "--runs-root", str(tmp_path), *extra, epochs=epochs))

    assert run(2) == 0
    capsys.readouterr()
    assert run(3) == 2 and "add --extend to train its runs on" in capsys.readouterr().err
    assert run(3, "--extend") == 0
    assert "resume    1" in capsys.readouterr().out
    campaign = json.loads((tmp_path / "c" / "campaign.json").read_text())
    assert campaign["epochs"] == 3 and [h["epochs"] for h in campaign["history"]] == [2]
    assert [r["epoch"] for r in rundir.read_metrics(tmp_path / "c" / "Catch" / "s0")] == [1, 2, 3]
