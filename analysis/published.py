"""Published Atari 100k results shipped with the package (data/atari100k/, provenance in its SOURCES.md)."""

from __future__ import annotations

import re

from analysis.method import Method
from analysis.normalise import ATARI100K_DIR
from analysis.scorefiles import read_score_json
from iris.errors import ConfigError

# Display name -> file. MuZero and EfficientZero published one mean per game: point estimates only.
BASELINES = {
    "IRIS": "IRIS.json",
    "DIAMOND": "DIAMOND.json",
    "Delta-IRIS": "DeltaIRIS.json",
    "STORM": "STORM.json",
    "TWM": "TWM.json",
    "REM": "REM.json",
    "DreamerV3": "DreamerV3.json",
    "SimPLe": "SimPLe.json",
    "SPR": "SPR.json",
    "DrQ(eps)": "DrQ_eps.json",
    "DrQ": "DrQ.json",
    "DER": "DER.json",
    "OTRainbow": "OTRainbow.json",
    "CURL": "CURL_10_evals.json",
    "MuZero": "MuZero.json",
    "EfficientZero": "EfficientZero.json",
    "BBF": "BBF.json",
    "Simulus": "Simulus.json",
}


def _key(name: str) -> str:
    """Names match ignoring case and punctuation: delta-iris, DeltaIRIS and drq_eps all work."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def baseline_names(spec: str) -> list[str]:
    """A comma list of baseline names, `all` (every one) and `none` (no name on its own)."""
    by_key = {_key(name): name for name in BASELINES}
    names = []
    for wanted in filter(None, (part.strip() for part in spec.split(","))):
        if wanted in ("all", "none"):
            names += list(BASELINES) if wanted == "all" else []
        elif _key(wanted) in by_key:
            names.append(by_key[_key(wanted)])
        else:
            raise ConfigError(f"unknown baseline {wanted!r}; choose from {', '.join(BASELINES)}, all, or none")
    return names


def load_baseline(name: str) -> Method:
    method = read_score_json(ATARI100K_DIR / BASELINES[name], name)
    method.source = f"published ({BASELINES[name]})"
    method.published = True
    return method
