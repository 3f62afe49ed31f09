"""`iris-bench perf`: every figure of an epoch, in the optimised and the reference mode, on a real shrunk run."""

from __future__ import annotations

import json

import pytest

from conftest import SHRUNK

RATES = {"collect": "env steps/s", "tokenizer training": "frames/s", "world_model training": "tokens/s",
         "imagination": "imagined steps/s", "actor_critic training": "updates/s"}
STEPS = ["tokenizer step", "world_model step", "actor_critic step"]
SECONDS = [*STEPS, "token cache fill per epoch", "full epoch", "compiling and capturing, once per run"]
MEMORY = ["peak host memory", "peak device memory"]
MODES = ("optimised", "reference")


def test_perf_gives_each_figure_in_both_modes_and_a_full_epoch_made_of_them(iris_bench, tiny_set):
    # compiled as on a GPU, so that the optimised mode has a one-off cost to show
    args = ("--preset", "catch", "--steps", "1", "--json", "--set", "training.compile=on", *tiny_set)
    report = json.loads(iris_bench("perf", *args).stdout)
    assert report["setting"].startswith("preset catch, game Catch, device cpu")
    out = report["figures"]
    units = {row["name"]: row["unit"] for row in out}
    value = {row["name"]: row["value"] for row in out}
    expected = {**RATES, **dict.fromkeys(SECONDS, "s"), **dict.fromkeys(MEMORY, "GiB")}
    assert units == {f"{name} ({mode})": unit for name, unit in expected.items() for mode in MODES} | {
        f"{name}: speed-up": "x" for name in [*RATES, *STEPS, "full epoch"]}
    for name in [*RATES, *SECONDS]:
        optimised, reference = value[f"{name} (optimised)"], value[f"{name} (reference)"]
        if name == "token cache fill per epoch":
            assert optimised > 0 and reference == 0  # the reference mode has no cache
        elif name == "compiling and capturing, once per run":  # the first calls beyond steady ones
            assert optimised > reference + 1.0  # compiling; the reference mode compiles nothing
        else:
            assert value[f"{name}: speed-up"] == pytest.approx(optimised / reference if name in RATES else reference / optimised)
    assert value["peak host memory (optimised)"] > 0.1 and value["peak device memory (optimised)"] == 0
    for mode in MODES:  # an epoch: the cache fill, collection, and each component's steps
        epoch = value[f"token cache fill per epoch ({mode})"] + SHRUNK["training.collect_steps"] / value[f"collect ({mode})"]
        epoch += sum(SHRUNK[f"{c}.steps_per_epoch"] * value[f"{c} step ({mode})"] for c in ("tokenizer", "world_model", "actor_critic"))
        assert value[f"full epoch ({mode})"] == pytest.approx(epoch)


def test_perf_precision_trains_each_component_from_the_same_weights_in_both_precisions(iris_bench, tiny_set, tmp_path):
    plot = tmp_path / "curves.png"
    args = ("--preset", "catch", "--precision", "--steps", "3", "--json", "--plot", plot, *tiny_set)
    value = {row["name"]: row["value"] for row in json.loads(iris_bench("perf", *args).stdout)["figures"]}
    for component in ("tokenizer", "world_model", "actor_critic"):
        fp32, bf16 = value[f"{component}: first loss fp32"], value[f"{component}: first loss bf16"]
        assert fp32 != 0 and fp32 != bf16 and abs(bf16 / fp32 - 1) < 0.05  # the same weights and batch, rounded apart
        assert value[f"{component}: first loss, bf16 vs fp32"] == pytest.approx(100 * (bf16 / fp32 - 1))
    assert plot.stat().st_size > 10_000


def test_perf_learn_stops_each_seed_at_the_threshold_and_checks_that_checkpoint(iris_bench):
    # A periodic evaluation every epoch; the threshold of Catch's lowest return (-1) is met at the first one, an
    # unreachable one (2) never: that seed trains its whole schedule and has no figures.
    args = ("perf", "--learn", "Catch", "--preset", "catch", "--set", "training.epochs=2", "--set", "training.eval_every=1",
            "--set", "training.eval_episodes=2", "--set", "training.collect_steps=16", "--set", "training.final_eval_episodes=2",
            "--set", "training.random_baseline_episodes=0", "--confirm", "3", "--json")
    reached = json.loads(iris_bench(*args, "--seeds", "0,1", "--threshold", "-1").stdout)
    figures = {f["name"]: f["value"] for f in reached["figures"]}
    assert figures["seeds that reached it"] == 2
    assert figures["seed 1: env steps to -1"] == 16 and figures["seed 0: minutes to -1"] > 0
    assert -1 <= figures["seed 0: that checkpoint over 3 fresh test episodes"] <= 1
    missed = json.loads(iris_bench(*args, "--seeds", "0", "--threshold", "2").stdout)
    figures = {f["name"]: f["value"] for f in missed["figures"]}
    assert figures["seeds that reached it"] == 0 and figures["seed 0: minutes to 2"] is None
    bad = iris_bench(*args, "--seeds", "a-b", "--threshold", "2", check=False)
    assert bad.returncode == 2 and "--seeds: a range like 0-4" in bad.stderr
