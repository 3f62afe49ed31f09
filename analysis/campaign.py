"""A campaign's results from its run directories, `<runs_root>/<campaign>/<game>/s<seed>/` (see iris/rundir.py).

A run counts once it is finished (eval.json present): its score is eval.json's mean, its history the
`test/return_mean` of its evaluation epochs in metrics.jsonl.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from analysis.method import History, Method, as_scores
from iris.errors import ConfigError
from iris.rundir import read_eval, read_metrics, read_spec

TEST_RETURN = "test/return_mean"


def read_campaign(runs_root: Path, campaign: str) -> Method:
    campaign_dir = Path(runs_root) / campaign
    if not campaign_dir.is_dir():
        found = sorted(p.name for p in Path(runs_root).iterdir() if p.is_dir()) if Path(runs_root).is_dir() else []
        raise ConfigError(f"no campaign {campaign!r} under {runs_root}; found: {', '.join(found) or 'none'}")
    finals, histories = defaultdict(list), defaultdict(list)
    for eval_path in sorted(campaign_dir.glob("*/s*/eval.json")):
        run_dir = eval_path.parent
        spec = read_spec(run_dir)
        if spec is None:
            raise ConfigError(f"{run_dir} has eval.json but no spec.json: not a run directory")
        finals[spec["game"]].append(read_eval(run_dir)["mean"])
        histories[spec["game"]].append(test_history(run_dir))
    if not finals:
        raise ConfigError(f"campaign {campaign!r} has no finished runs "
                          f"(no eval.json under {campaign_dir}/<game>/s<seed>/)")
    scores = {game: as_scores(values, f"{campaign_dir / game}: eval.json mean") for game, values in finals.items()}
    return Method(campaign, scores, f"run directories {campaign_dir}", dict(histories))


def test_history(run_dir: Path) -> History:
    return {row["env_steps"]: row[TEST_RETURN] for row in read_metrics(run_dir) if row.get(TEST_RETURN) is not None}
