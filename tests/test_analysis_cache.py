"""The bootstrap results on disk (analysis/cache.py): the shipped entries are what the code computes, a repeated
report reads its entries back, a corrupted entry is computed again, and a cache that cannot be written costs only
time."""

import json

from analysis import cache
from analysis.published import baseline_names, load_baseline
from analysis.report import write_report

OUTPUTS = ("aggregates.json", "improvement.json", "per_game.csv", "tables.md")


def outputs(out):
    return {name: (out / name).read_text() for name in OUTPUTS}


def test_shipped_entries_are_what_the_code_computes(tmp_path, monkeypatch, bootstrap_cache):
    """The 17 published methods at the report's defaults, computed afresh, give the very files that ship."""
    shipped_dir = cache.SHIPPED
    monkeypatch.setattr(cache, "SHIPPED", tmp_path / "nothing shipped")
    write_report(tmp_path / "out", [load_baseline(name) for name in baseline_names("all")])
    computed = {path.name: json.loads(path.read_text()) for path in bootstrap_cache.glob("*.json")}
    shipped = {path.name: json.loads(path.read_text()) for path in shipped_dir.glob("*.json")}
    assert computed.keys() == shipped.keys() and len(shipped) == 35  # 18 methods' aggregates, 17 pairs
    assert computed == shipped


def small_methods():
    return [load_baseline(name) for name in ("IRIS", "DIAMOND", "SPR")]


def test_a_repeated_report_reads_its_entries_and_recomputes_a_corrupted_one(tmp_path, bootstrap_cache):
    games = "Pong,Breakout,Boxing"
    write_report(tmp_path / "first", small_methods(), games=games, reps=300)
    entries = sorted(bootstrap_cache.glob("*.json"))
    assert len(entries) == 5  # 3 methods' aggregates, 2 pairs with IRIS
    # A stored result is what the report uses: change one, and the next report shows it.
    entry = next(e for e in entries if e.name.startswith("aggregates-"))
    stored = json.loads(entry.read_text())
    stored["result"]["iqm"]["point"] = 123.0
    entry.write_text(json.dumps(stored))
    write_report(tmp_path / "second", small_methods(), games=games, reps=300)
    assert "123.0" in outputs(tmp_path / "second")["aggregates.json"]
    # A truncated entry is computed again and replaced: the report is the first one's.
    entry.write_text(entry.read_text()[:40])
    write_report(tmp_path / "third", small_methods(), games=games, reps=300)
    assert outputs(tmp_path / "third") == outputs(tmp_path / "first")
    assert json.loads(entry.read_text())["result"]["iqm"]["point"] != 123.0


def test_a_cache_that_cannot_be_written_costs_only_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("IRIS_BENCH_CACHE", str(blocker))  # its bootstrap/ folder cannot be made
    write_report(tmp_path / "out", small_methods(), games="Pong,Breakout", reps=300)
    assert (tmp_path / "out" / "aggregates.json").exists() and blocker.read_text() == ""
