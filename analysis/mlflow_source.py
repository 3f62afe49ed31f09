"""A campaign's results from MLflow: the experiment named after the campaign, one run per game and seed
(tags game, seed), finished once it logged `final/return_mean`; its history is `test/return_mean` by env step.
"""

from __future__ import annotations

from collections import defaultdict

from iris.vocabulary import TEST_RETURN
from analysis.method import Method, as_scores
from iris.errors import ConfigError

FINAL_RETURN = "final/return_mean"


def read_mlflow_campaign(tracking_uri: str, campaign: str, name: str | None = None) -> Method:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(campaign)
    if experiment is None:
        found = [e.name for e in client.search_experiments()]
        raise ConfigError(f"no MLflow experiment {campaign!r} at {tracking_uri}; found: {', '.join(found) or 'none'}")
    finals, histories, seeds, seen = defaultdict(list), defaultdict(list), defaultdict(list), set()
    for run in all_runs(client, experiment.experiment_id):  # newest first: a repeated game/seed keeps its latest run
        tags, metrics = run.data.tags, run.data.metrics
        if FINAL_RETURN not in metrics:
            continue
        if "game" not in tags:
            raise ConfigError(f"MLflow run {run.info.run_id} of {campaign!r} has no game tag")
        if (tags["game"], tags.get("seed")) in seen:
            continue
        seen.add((tags["game"], tags.get("seed")))
        finals[tags["game"]].append(metrics[FINAL_RETURN])
        seeds[tags["game"]].append(tags.get("seed", run.info.run_id))
        history = client.get_metric_history(run.info.run_id, TEST_RETURN)
        histories[tags["game"]].append({metric.step: metric.value for metric in history})
    if not finals:
        raise ConfigError(f"campaign {campaign!r} has no finished runs in MLflow (none logged {FINAL_RETURN})")
    scores = {game: as_scores(values, f"MLflow {campaign}: {game}") for game, values in finals.items()}
    return Method(name or campaign, scores, f"MLflow {tracking_uri}, experiment {campaign}", dict(histories),
                  dict(seeds))


def all_runs(client, experiment_id: str):
    token = None
    while True:
        page = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], page_token=token)
        yield from page
        token = page.token
        if not token:
            return
