"""Which layer may import which (README, "Architecture"): the agent (iris/) imports neither the infrastructure
(benchmark/) nor the analysis (analysis/); the analysis imports of the agent only the run directory's contract and
the shared vocabulary; the infrastructure reaches the agent through its public API, configs and games, except the
benchmarks of benchmark/measure/, which time the agent's parts."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANALYSIS_MAY_USE = {"iris.rundir", "iris.vocabulary", "iris.errors"}
BENCHMARK_MAY_USE = ANALYSIS_MAY_USE | {"iris.api", "iris.config", "iris.games", "iris.envs"}


def imported(source: str) -> set[str]:
    """Every module a source imports, at the top or inside a function (`from iris import api` gives iris.api)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{a.name}" if node.module in ("iris", "benchmark", "analysis") else node.module
                      for a in node.names}
    return names


def violations(layer: str, source: str) -> set[str]:
    """The imports of a module of `layer` (iris, analysis, benchmark, benchmark/measure) that break the rules."""
    names = imported(source)
    if layer == "iris":
        return {n for n in names if n.split(".")[0] in ("benchmark", "analysis")}
    agent = {n for n in names if n.split(".")[0] == "iris"}
    if layer == "analysis":
        return {n for n in agent if n not in ANALYSIS_MAY_USE} | {n for n in names if n.split(".")[0] == "benchmark"}
    if layer == "benchmark":
        return {n for n in agent if ".".join(n.split(".")[:2]) not in BENCHMARK_MAY_USE}
    return set()  # benchmark/measure: any part of the agent


def layer_of(path: Path) -> str:
    relative = path.relative_to(REPO).parts
    return "benchmark/measure" if relative[:2] == ("benchmark", "measure") else relative[0]


def test_the_checker_catches_each_kind_of_breach():
    assert violations("iris", "def f():\n    from benchmark import tracking\n") == {"benchmark.tracking"}
    assert violations("analysis", "from iris.trainer import train\nfrom iris.rundir import read_spec\n") == {"iris.trainer"}
    assert violations("analysis", "import benchmark.launch\n") == {"benchmark.launch"}
    assert violations("benchmark", "from iris import trainer, api\n") == {"iris.trainer"}
    assert violations("benchmark/measure", "from iris.trainer import Trainer\n") == set()


def test_every_module_keeps_to_its_layer():
    broken = {}
    for folder in ("iris", "analysis", "benchmark"):
        for path in sorted((REPO / folder).rglob("*.py")):
            found = violations(layer_of(path), path.read_text())
            if found:
                broken[str(path.relative_to(REPO))] = sorted(found)
    assert broken == {}
