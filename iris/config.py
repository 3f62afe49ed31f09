"""Typed configuration: one dataclass per component, named presets, `section.key=value` overrides.

`paper` holds the paper's settings (Micheli et al. 2023, appendix and official code). `tiny` keeps the
algorithm but shrinks networks and schedule so a run takes minutes on a CPU; `small` is tiny's networks on the
paper's schedule shape, a real Atari game in ~90 minutes of a CPU (it did not learn Boxing in that time; see
small()). `catch` is `tiny` re-tuned for the built-in Catch game, with the fixes a small IRIS needed to learn it on a
CPU (each one a named option below, off in `paper`).
A preset may also be a YAML file `{base: PRESET, set: {section.key: value}}` (what `tune --export` writes).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from iris.errors import ConfigError
from iris.games import check_game


@dataclass
class EnvConfig:
    game: str = "Pong"
    frame_skip: int = 4
    size: int = 64  # observations are size x size RGB uint8
    train_noop_max: int = 30  # 1..noop_max no-ops after a reset (training)
    test_noops: int = 1  # exactly this many no-ops after a reset (evaluation)
    train_max_frames: int = 20_000  # time limit in raw frames, no-ops included
    test_max_frames: int = 108_000


@dataclass
class TokenizerConfig:
    vocab_size: int = 512
    embed_dim: int = 512
    channels: int = 64
    channel_mult: tuple[int, ...] = (1, 1, 1, 1, 1)  # one entry per resolution level; 64 -> 4 with five levels
    encoder_res_blocks: int = 2
    decoder_res_blocks: int = 3
    attn_resolutions: tuple[int, ...] = (8, 16)
    z_channels: int = 512
    commitment_weight: float = 1.0  # beta in ||z - sg(e)||^2; the codebook term has weight 1
    perceptual_weight: float = 1.0  # LPIPS; 0 switches it off (then no VGG16 weights are needed)
    lpips_weights: str = ""  # file with VGG16 + LPIPS weights; empty: $IRIS_LPIPS_WEIGHTS or ~/.cache/iris-bench/lpips_vgg16.pt
    l2_weight: float = 0.0  # catch: a strong L2 term beside L1 decodes small objects on black (with 1, not in 1,200 steps)
    normalize_codes: bool = False  # catch: L2-normalised codes and encodings against codebook collapse
    code_reset_steps: int = 0  # catch: re-seed unused codes from encoder outputs during the first N steps
    lr: float = 1e-4
    batch_size: int = 256  # frames
    steps_per_epoch: int = 200
    start_after_epoch: int = 5
    stop_after_epoch: int = 0  # no updates after this epoch; 0: to the end, as in the paper (catch freezes the tokenizer)


@dataclass
class WorldModelConfig:
    max_blocks: int = 20  # steps in a training segment; each block is the frame tokens then 1 action token
    num_layers: int = 10
    num_heads: int = 4
    embed_dim: int = 256
    dropout: float = 0.1
    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 64  # segments
    steps_per_epoch: int = 200
    start_after_epoch: int = 25
    stop_after_epoch: int = 0  # no updates after this epoch; 0: to the end, as in the paper


@dataclass
class ActorCriticConfig:
    channels: tuple[int, ...] = (32, 32, 64, 64)
    lstm_dim: int = 512
    burn_in: int = 20  # real frames that set the LSTM state; imagination starts from the frame after them
    horizon: int = 20  # imagined steps
    gamma: float = 0.995
    lam: float = 0.95  # lambda of the lambda-returns
    entropy_weight: float = 0.001
    # catch: no loss on imagined steps after an imagined end. The world model never trains past an end (its
    # segments stop there), so what it imagines after one is noise; Catch's 7-step episodes end in every rollout.
    mask_after_end: bool = False
    lr: float = 1e-4
    batch_size: int = 64  # imagined trajectories
    steps_per_epoch: int = 200
    start_after_epoch: int = 50
    stop_after_epoch: int = 0  # no updates after this epoch; 0: to the end, as in the paper


@dataclass
class TrainingConfig:
    epochs: int = 600
    collect_steps: int = 200  # env steps collected per epoch
    collect_until_epoch: int = 500  # 500 x 200 = the 100k agent steps of Atari 100k
    collect_envs: int = 1
    epsilon: float = 0.01  # epsilon-greedy exploration while collecting
    temperature: float = 1.0  # policy sampling temperature while collecting
    grad_clip: float = 10.0
    eval_every: int = 5  # epochs; 0 disables the periodic evaluation
    eval_episodes: int = 16
    eval_temperature: float = 0.5
    final_eval_episodes: int = 100
    random_baseline_episodes: int = 0  # > 0: the final evaluation also plays a uniformly random policy (catch: 256)
    # How every component's batches are drawn. episode (official): an episode uniformly, then a step uniformly in it
    # (segments start or end there), so a 10-step life beside a 990-step one gets half the draws. step: uniformly
    # over all stored steps (long episodes weigh by their length; 1.4% of the segments for that 10-step life).
    sampling: str = "episode"
    # Official: a time-limit cut is stored as an episode end (its TimeLimit `done`), so the end head learns it and the
    # lambda-returns stop there. False departs: only real terminations are ends (the cut is not the game's doing).
    time_limit_is_end: bool = True
    device: str = "auto"  # auto | cpu | cuda
    # Speed, not algorithm (iris-bench perf compares them with the reference mode: no cache, fp32):
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | bf16 | fp32; master weights stay fp32
    kv_cache: bool = True  # imagination feeds only new tokens to the world model instead of re-running the sequence
    cuda_graphs: bool = True  # on CUDA, with the cache: each imagined step replays one captured CUDA graph
    token_cache: bool = True  # each stored frame is encoded (and decoded for burn-ins) at most once per epoch
    compile: str = "auto"  # auto (on CUDA) | on | off: torch.compile the convolutional nets (iris.trainer.compile_nets)
    # CUDA: torch's deterministic algorithms and a fixed cuBLAS workspace, so reruns of a seed are bit-identical
    # (slower). The CPU always runs deterministically (iris.runtime).
    deterministic: bool = False


# The values a string option takes; resolve() checks them before anything is written.
CHOICES = {
    "training.sampling": ("episode", "step"),
    "training.device": ("auto", "cpu", "cuda", "cuda:N"),
    "training.precision": ("auto", "bf16", "fp32"),
    "training.compile": ("auto", "on", "off"),
}


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, object]:
        """{'section.key': value}, the form of --set, MLflow params and search spaces."""
        return {f"{s}.{k}": v for s, sec in self.to_dict().items() for k, v in sec.items()}

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        cfg = cls()
        for key, value in _flatten(data).items():
            set_value(cfg, key, value)
        return cfg


def _flatten(data: dict) -> dict[str, object]:
    return {f"{s}.{k}": v for s, sec in data.items() for k, v in sec.items()}


def paper() -> Config:
    return Config()


def tiny() -> Config:
    """The paper's algorithm with small networks and a short schedule: minutes per epoch on a CPU."""
    return Config(
        tokenizer=TokenizerConfig(
            vocab_size=128, embed_dim=64, channels=16, channel_mult=(1, 1, 2, 2, 4), encoder_res_blocks=1,
            decoder_res_blocks=1, attn_resolutions=(), z_channels=64, perceptual_weight=0.0,
            batch_size=32, steps_per_epoch=20, start_after_epoch=1,
        ),
        world_model=WorldModelConfig(
            num_layers=2, num_heads=4, embed_dim=128, batch_size=16, steps_per_epoch=20, start_after_epoch=2,
        ),
        actor_critic=ActorCriticConfig(
            channels=(16, 16, 32, 32), lstm_dim=128, batch_size=16, steps_per_epoch=20, start_after_epoch=3,
        ),
        training=TrainingConfig(
            epochs=10, collect_steps=100, collect_until_epoch=10, eval_every=5, eval_episodes=2,
            final_eval_episodes=4,
        ),
    )


def catch() -> Config:
    """Small IRIS for the built-in Catch game, sized to learn it in minutes on 2 CPU cores: a test return of 0.8 after
    2.2-3.7 minutes for seeds 0-4, median 3.0 (`iris-bench perf --learn Catch --preset catch --seeds 0-4`). Before
    this sizing (32x32 frames, a 2-layer world model, 20 steps of each component an epoch from epoch 2) it took 12-25
    minutes."""
    return Config(
        # 8x8 frames, one pixel a cell, carry all of Catch: every convolution, the tokenizer's and the actor-critic's,
        # works on 1/16 of the pixels of 32x32. Two tokenizer levels give 4x4 = 16 tokens of 2x2 cells. Four tokens a
        # frame (three levels) would cut the world model's passes 3x, but the tokenizer then stayed at the blank-frame
        # loss (0.39) for 45 epochs, as it had at 16x16.
        env=EnvConfig(game="Catch", size=8, train_noop_max=0, test_noops=0),
        tokenizer=TokenizerConfig(
            vocab_size=64, embed_dim=64, channels=32, channel_mult=(1, 1), encoder_res_blocks=1,
            decoder_res_blocks=1, attn_resolutions=(), z_channels=64, perceptual_weight=0.0, l2_weight=10.0,
            normalize_codes=True, code_reset_steps=300, lr=1e-3, batch_size=32, start_after_epoch=0,
            steps_per_epoch=40,  # 40 (not 20): the tokens settle by epoch 10 instead of 25, and the world model sooner
            # Frozen once its tokens are settled (by epoch 10 every stored frame of seed 3 decoded within 0.5 of each
            # pixel; none at epoch 6). An epoch after it costs ~20% less: no tokenizer steps (1.1 s of 8.3), and the
            # token cache keeps the finished episodes' tokens and reconstructions from epoch to epoch (0.75 s -> 0.2 s).
            # The world model's targets stop moving: its loss at epoch 25 fell from 0.23-0.35 to 0.10-0.14. Seeds 0-4
            # reached 0.8 at epochs 27, 25, 30, 27, 32 (30, 25, 32, 37, 29 training to the end), in 2.6, 2.2, 3.2,
            # 3.0, 3.7 minutes (4.1, 3.3, 4.6, 5.2, 3.5), and that checkpoint scored 0.82, 0.98, 0.82, 0.88, 0.96
            # over 100 fresh episodes (1.0, 1.0, 1.0, 0.72, 0.9).
            stop_after_epoch=10,
        ),
        world_model=WorldModelConfig(
            # One layer learns Catch's dynamics faster than two, and costs half. Segments of 4 steps: every frame
            # shows the whole state, and an imagined rollout restarts from its current frame when its 4 steps are full.
            max_blocks=4, num_layers=1, num_heads=4, embed_dim=128, dropout=0.0, lr=1e-3, batch_size=32,
            steps_per_epoch=80, start_after_epoch=1,  # 80: frame loss 0.37 at epoch 15 (20 steps: 0.7 at 25)
        ),
        actor_critic=ActorCriticConfig(
            # Two convolution-and-pool levels leave a 2x2 map, as four did at 32x32; three (1x1) lose where the
            # ball and the paddle are, and did not learn in 45 epochs.
            channels=(16, 32), lstm_dim=128, burn_in=4, horizon=6, gamma=0.99, entropy_weight=0.01,
            mask_after_end=True, batch_size=32,
            # With an earlier 8x8 run's tokenizer and world model of epoch 27 frozen, the actor-critic alone needed ~800
            # updates at lr 1e-3 and ~500 at 3e-3 to reach a test return of 0.8. Its updates before the world model is
            # good are wasted, so it starts after epoch 10 and then takes 40 an epoch, sharing each epoch's fixed cost.
            # horizon=6 (8 before): 5 imagined steps. Catch's episodes have 7 and a rollout starts at a uniform step of
            # one, so about half the steps of 7 came after an imagined end, masked. With a test every 5 epochs, seeds
            # 0-4 reached 0.8 in 6.7, 3.1, 5.5, 4.0 and 4.3 minutes (that checkpoint over 100 episodes: 1.0, 0.78,
            # 0.98, 1.0, 1.0), against 5.1, 3.4, 9.2, 4.1 and 4.3 with 8 (0.94, 0.72, 0.82, 0.74, 1.0).
            lr=3e-3, steps_per_epoch=40, start_after_epoch=10,
        ),
        training=TrainingConfig(
            epochs=50, collect_steps=112, collect_until_epoch=50, collect_envs=16,
            # A test every epoch over 128 episodes (0.33 s here; 64 every 5 epochs before): the curve shows when the
            # policy turns, not up to 5 epochs (~50 s) later, and 128 episodes halve the variance of one test. An
            # evaluation draws from its own seed, so this does not change what the run learns.
            eval_every=1, eval_episodes=128, final_eval_episodes=256, random_baseline_episodes=256,
        ),
    )


def small() -> Config:
    """The paper's algorithm and schedule shape on a real Atari game within 90 minutes of 2 CPU cores: tiny's networks,
    50 epochs of 300 env steps (15k), each component starting at the paper's fraction of the schedule (tokenizer
    5/600, world model 25/600, actor-critic 50/600) and taking 20 steps an epoch, so learning rates are 3x the
    paper's. Sized on the measured cost on an idle 2-core machine (`perf --preset small --game Boxing`, and a
    first run): a full epoch ~73 s, the final 100 test episodes of Boxing ~14 min and the random policy's ~3 min. Against codebook collapse
    of the small tokenizer, catch's two named fixes (normalised codes, early re-seeding); no LPIPS (its weights are
    not here). It does not learn Boxing in that time: three tries (this preset; 40 updates an epoch; 32x32 frames with
    0.3 world-model updates an env step) scored below a random policy, because the world model's reward head learns
    little beyond the base rate (1.4% of steps +1, 1.5% -1), so imagination gives the actor-critic no signal."""
    cfg = tiny()
    cfg.tokenizer.normalize_codes, cfg.tokenizer.code_reset_steps, cfg.tokenizer.lr = True, 300, 3e-4
    cfg.tokenizer.start_after_epoch, cfg.world_model.start_after_epoch, cfg.actor_critic.start_after_epoch = 1, 2, 4
    cfg.world_model.lr, cfg.actor_critic.lr = 3e-4, 3e-4
    cfg.training = TrainingConfig(
        epochs=50, collect_steps=300, collect_until_epoch=50, eval_every=20, eval_episodes=8, final_eval_episodes=100,
        random_baseline_episodes=100,
    )
    return cfg


PRESETS = {"paper": paper, "tiny": tiny, "catch": catch, "small": small}


def load_preset(name: str) -> Config:
    """A preset by name, or a YAML file {base: PRESET, set: {section.key: value}}."""
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"preset file not found: {name}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"preset file {name} is not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict) or not isinstance(data.get("set") or {}, dict) or set(data) - {"base", "set"}:
            raise ConfigError(f"preset file {name} must be a mapping {{base: PRESET, set: {{section.key: value}}}}")
        cfg = load_preset(str(data.get("base", "paper")))
        return apply_overrides(cfg, [f"{k}={_yaml_scalar(v)}" for k, v in (data.get("set") or {}).items()])
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)} or a .yaml preset file")
    return PRESETS[name]()


def _yaml_scalar(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings in order; returns the same (mutated) config."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        set_value(cfg, key.strip(), parse_value(cfg, key.strip(), raw.strip()))
    return cfg


def _field_type(cfg: Config, key: str) -> tuple[object, str, type]:
    section_name, _, name = key.partition(".")
    sections = {f.name: f for f in dataclasses.fields(cfg)}
    if section_name not in sections or not name:
        raise ConfigError(f"unknown config key {key!r}; sections: {', '.join(sections)} (keys look like env.game)")
    section = getattr(cfg, section_name)
    hints = typing.get_type_hints(type(section))
    if name not in hints:
        close = difflib.get_close_matches(name, list(hints), n=3)
        valid = ", ".join(f"{section_name}.{k}" for k in (close or hints))
        raise ConfigError(f"unknown config key {key!r}; {'did you mean' if close else 'valid'}: {valid}")
    return section, name, hints[name]


def parse_value(cfg: Config, key: str, raw: str) -> object:
    _, _, kind = _field_type(cfg, key)
    try:
        if typing.get_origin(kind) is tuple:
            (item_type, _) = typing.get_args(kind)
            return tuple(item_type(x) for x in raw.strip("()[] ").split(",") if x.strip())
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return raw.lower() in ("true", "1")
        return kind(raw)
    except ValueError:
        raise ConfigError(f"bad value {raw!r} for {key}: expected {_type_name(kind)}") from None


def set_value(cfg: Config, key: str, value: object) -> None:
    section, name, kind = _field_type(cfg, key)
    if typing.get_origin(kind) is tuple and isinstance(value, list):
        value = tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    expected = typing.get_origin(kind) or kind
    if not isinstance(value, expected) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"bad value {value!r} for {key}: expected {_type_name(kind)}")
    setattr(section, name, value)


def _type_name(kind: object) -> str:
    if typing.get_origin(kind) is tuple:
        return f"comma-separated {typing.get_args(kind)[0].__name__}s"
    return getattr(kind, "__name__", str(kind))


def resolve(preset: str, overrides: list[str] = (), game: str | None = None) -> Config:
    """Preset, then --game, then --set overrides (the order the CLI promises), checked."""
    cfg = load_preset(preset)
    if game is not None:
        cfg.env.game = game
    return validate(apply_overrides(cfg, list(overrides)))


def validate(cfg: Config) -> Config:
    """One-line errors for values of the right type that no run accepts."""
    flat = cfg.flat()
    for key, valid in CHOICES.items():
        value = flat[key]
        if value not in valid and not (key == "training.device" and value.startswith("cuda:") and value[5:].isdigit()):
            raise ConfigError(f"unknown {key} {value!r}; valid: {', '.join(valid)}")
    for key in ("training.epochs", "training.collect_steps", "training.collect_envs", "training.final_eval_episodes"):
        if flat[key] < 1:
            raise ConfigError(f"{key}={flat[key]} must be 1 or more")
    cfg.env.game = check_game(cfg.env.game)  # `pong` is Pong: one spelling, one config hash
    for name in ("tokenizer", "world_model", "actor_critic"):
        section = getattr(cfg, name)
        if section.stop_after_epoch < 0 or 0 < section.stop_after_epoch <= section.start_after_epoch:
            raise ConfigError(f"{name}.stop_after_epoch={section.stop_after_epoch} stops before it starts (after epoch "
                              f"{section.start_after_epoch}); valid: 0 (never) or more than {section.start_after_epoch}")
    if cfg.actor_critic.horizon < 2:  # the actor-critic learns from the steps between imagined states
        raise ConfigError(f"actor_critic.horizon={cfg.actor_critic.horizon} imagines nothing; valid: 2 or more")
    return cfg

