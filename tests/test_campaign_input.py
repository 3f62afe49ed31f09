"""Bad input to `iris-bench run/status/cancel/sync`: one clear line naming the problem, nothing created,
nothing submitted."""

from __future__ import annotations

import pytest

from benchmark import campaign
from benchmark.cli import main


def error_line(capsys, argv: list[str]) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iris-bench: error: "), err
    return lines[0]


def run_args(runs_root, *extra) -> list:
    return ["run", "--games", "Pong", "--seeds", "1", "--runs-root", runs_root, *extra]


@pytest.mark.parametrize("argv, expected", [
    (["--games", "Pongg"], ["unknown game 'Pongg'", "Pong"]),
    (["--seeds", "0"], ["--seeds must be 1 or more"]),
    (["--seed-offset", "-1"], ["--seed-offset must be 0 or more"]),
    (["--executor", "kubernetes"], ["unknown executor 'kubernetes'", "local, slurm, debug"]),
    (["--executor", "slurm"], ["needs --profile"]),
    (["--profile", "slurm/profiles/testcluster.yaml"], ["--profile is for --executor slurm, not local"]),
    (["--executor", "slurm", "--profile", "slurm/profiles/nope.yaml"], ["SLURM profile not found", "example.yaml"]),
    (["--max-parallel", "0"], ["--max-parallel must be 1 or more"]),
    (["--set", "env.game=Breakout"], ["--set env.game is not allowed", "--games"]),
    (["--set", "training.epoch=3"], ["unknown config key 'training.epoch'", "training.epochs"]),
    (["--preset", "huge"], ["unknown preset 'huge'", "tiny"]),
    (["--campaign", "my campaign"], ["bad campaign name 'my campaign'"]),
])
def test_bad_run_arguments(capsys, tmp_path, argv, expected):
    root = tmp_path / "runs"
    line = error_line(capsys, run_args(root, *argv))  # a repeated option's last value wins
    for text in expected:
        assert text in line
    assert not root.exists()


@pytest.mark.parametrize("profile, expected", [
    ("time: 10\nwalltime: 20\n", ["unknown key(s) walltime", "valid: time, partition"]),
    ("partition: debug\n", ["must set time"]),
    ("time: soon\n", ["bad time 'soon'", "H:M:S"]),
    ("time: 10\ncpus_per_task: many\n", ["bad value 'many' for cpus_per_task", "whole number"]),
    ("- time\n", ["must be a mapping"]),
])
def test_bad_profiles(capsys, tmp_path, profile, expected):
    path = tmp_path / "cluster.yaml"
    path.write_text(profile)
    root = tmp_path / "runs"
    line = error_line(capsys, run_args(root, "--executor", "slurm", "--profile", path, "--dry-run"))
    for text in expected:
        assert text in line
    assert not root.exists()


def test_changed_config_of_a_campaign_is_refused(capsys, tmp_path):
    root = tmp_path / "runs"
    planned = campaign.plan(root, "mine", "tiny", ["training.epochs=3"], ["Pong"], [0])
    campaign.materialize(planned)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}

    line = error_line(capsys, run_args(root, "--campaign", "mine", "--set", "training.epochs=4"))

    assert "campaign 'mine' was planned with another config" in line and "new --campaign NAME" in line
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # nothing written, nothing submitted


@pytest.mark.parametrize("command", [["status"], ["cancel"], ["sync"]])
def test_unknown_campaign(capsys, tmp_path, command):
    campaign.materialize(campaign.plan(tmp_path / "runs", "known", "tiny", [], ["Pong"], [0]))
    line = error_line(capsys, [*command, "--campaign", "unknown", "--runs-root", tmp_path / "runs"])
    assert "no campaign 'unknown'" in line and "known" in line
