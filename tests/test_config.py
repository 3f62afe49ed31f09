import json

import pytest

from benchmark.cli import main
from iris.config import Config, apply_overrides, load_preset, resolve, tiny
from iris.errors import ConfigError


def test_presets_resolve_and_overrides_apply_in_order():
    cfg = resolve("tiny", ["training.epochs=3", "tokenizer.channel_mult=1,2,2", "world_model.dropout=0.25",
                           "training.epochs=4", "tokenizer.normalize_codes=true"], game="Breakout")
    assert cfg.env.game == "Breakout"
    assert cfg.training.epochs == 4
    assert cfg.tokenizer.channel_mult == (1, 2, 2)
    assert cfg.world_model.dropout == 0.25
    assert cfg.tokenizer.normalize_codes is True
    assert load_preset("catch").env.game == "Catch"
    assert load_preset("paper").training.epochs == 600


@pytest.mark.parametrize("override, message", [
    ("foo.bar=1", "unknown config key 'foo.bar'; sections: env, tokenizer"),
    ("env.gmae=Pong", "unknown config key 'env.gmae'; did you mean: env.game"),
    ("training.epochs=ten", "bad value 'ten' for training.epochs: expected int"),
    ("tokenizer.normalize_codes=maybe", "bad value 'maybe' for tokenizer.normalize_codes: expected bool"),
    ("training.epochs", "is not of the form section.key=value"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(tiny(), [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown preset 'papr'; valid: paper, tiny, catch"):
        load_preset("papr")


def test_yaml_preset_round_trip(tmp_path):
    path = tmp_path / "best.yaml"
    path.write_text("base: tiny\nset:\n  actor_critic.lr: 0.0003\n  tokenizer.channel_mult: [1, 2, 2, 2, 2]\n")
    cfg = load_preset(str(path))
    assert cfg.actor_critic.lr == 0.0003 and cfg.tokenizer.channel_mult == (1, 2, 2, 2, 2)
    assert Config.from_dict(cfg.to_dict()) == cfg and Config.from_dict(cfg.to_dict()).hash() == cfg.hash()


def test_describe_prints_the_paper_sizes(capsys):
    assert main(["describe", "--preset", "paper", "--game", "MsPacman", "--json"]) == 0  # 9 actions
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"]["tokenizer"] == 4_027_523
    assert main(["describe", "--preset", "paper", "--game", "Alien", "--json"]) == 0  # 18 actions
    counts = json.loads(capsys.readouterr().out)["parameters"]
    assert counts["world_model"] == 8_451_077 and counts["actor_critic"] == 3_225_139


def test_cli_reports_bad_input_on_one_line(capsys):
    assert main(["describe", "--set", "training.epochz=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("iris-bench: error: unknown config key 'training.epochz'") and "\n" not in err
