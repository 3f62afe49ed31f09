"""The episode store: every collected episode, one compressed .npz file each, all of them held in memory.

Files are written atomically (temporary file, fsync, rename), so a killed writer leaves only whole
episodes plus perhaps a hidden temporary file, which the next open deletes. Sampling keeps no copy of
the frames: it draws (episode, step) pairs, by episode as the official IRIS code does (an episode uniformly, then
a step uniformly inside it) or, under `sampling="step"`, uniformly over all stored steps.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iris.errors import RunStateError
from iris.rundir import atomic_write_bytes

FIELDS = ("observations", "actions", "rewards", "ends")
STEP_BYTES = 8 + 4 + 1  # a step's action (int64), reward (float32) and end (bool) besides its frame
# np.savez_compressed shrinks frames at least this much: 500 random-policy steps of each Atari 100k game at 64x64
# measured 12x (UpNDown) to 85x (Breakout), Catch's stored runs 19x. Disk estimates (iris-bench run) use it.
MIN_COMPRESSION = 10


def stored_bytes(steps: int, frame_bytes: int) -> int:
    """About what `steps` stored steps of `frame_bytes` frames take on disk, erring high (MIN_COMPRESSION)."""
    return steps * (frame_bytes // MIN_COMPRESSION + STEP_BYTES)


@dataclass
class Episode:
    observations: np.ndarray  # uint8 [T, H, W, 3]: what the agent saw before each action
    actions: np.ndarray  # int64 [T]
    rewards: np.ndarray  # float32 [T]
    ends: np.ndarray  # bool [T]: the episode terminated after that action
    truncated: bool = False  # cut by the time limit rather than terminated

    def __post_init__(self):
        if np.asarray(self.observations).dtype != np.uint8:
            raise ValueError(f"episode observations must be uint8 frames, got {np.asarray(self.observations).dtype}")
        self.observations = np.asarray(self.observations)
        self.actions = np.asarray(self.actions, np.int64)
        self.rewards = np.asarray(self.rewards, np.float32)
        self.ends = np.asarray(self.ends, bool)
        lengths = {k: len(getattr(self, k)) for k in FIELDS}
        if len(set(lengths.values())) != 1 or lengths["actions"] == 0:
            raise ValueError(f"an episode needs one or more steps and equal lengths, got {lengths}")
        self.truncated = bool(self.truncated)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def ret(self) -> float:
        return float(self.rewards.sum())


class EpisodeStore:
    """Episodes in `directory` as <id>.npz, ids 0, 1, 2, ... in the order they were added; `sampling` is how
    batches draw them (iris.config.TrainingConfig.sampling)."""

    def __init__(self, directory: str | Path, sampling: str = "episode"):
        if sampling not in ("episode", "step"):
            raise ValueError(f"unknown sampling {sampling!r}; valid: episode, step")
        self.sampling = sampling
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for tmp in self.directory.glob(".*.tmp"):  # unfinished writes of a killed writer (one writer per store)
            tmp.unlink()
        self.ids: list[int] = []
        self.episodes: list[Episode] = []
        self.pending: list[Episode] = []  # episodes in progress: sampled too, not on disk
        self.version = -1  # changes so far (_reindex counts them)
        self.cuts = 0  # truncations so far: until the next one, the finished episodes' steps keep their numbers
        self._reindex()  # an empty store has an (empty) index too
        for path in sorted(self.directory.glob("*.npz"), key=lambda p: int(p.stem)):
            if int(path.stem) != len(self.ids):
                raise RunStateError(f"{self._path(len(self.ids))} is missing (episodes are numbered 0, 1, 2, ...): "
                                    "restore it; training without it would give another run")
            try:
                with np.load(path) as f:
                    episode = Episode(*(f[k] for k in FIELDS), truncated=bool(f["truncated"]))
            except Exception as e:  # zip, npz or field errors of a damaged file
                raise RunStateError(f"{path} is damaged ({type(e).__name__}: {e}): restore it from a copy") from None
            self._append(int(path.stem), episode)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_steps(self) -> int:
        return int(self._step_ends[-1]) if self._sampled else 0

    @property
    def finished_steps(self) -> int:
        """Steps of the finished episodes: numbered first (pending ones follow), so adding episodes keeps their numbers."""
        return int(self._step_ends[len(self.episodes) - 1]) if self.episodes else 0

    def _path(self, episode_id: int) -> Path:
        return self.directory / f"{episode_id:06d}.npz"

    def _append(self, episode_id: int, episode: Episode) -> None:
        if self.episodes and episode.observations.shape[1:] != self.episodes[0].observations.shape[1:]:
            raise ValueError(
                f"frames of shape {episode.observations.shape[1:]} do not match the store's "
                f"{self.episodes[0].observations.shape[1:]}"
            )
        self.ids.append(episode_id)
        self.episodes.append(episode)
        self._reindex()

    def set_pending(self, episodes: list[Episode]) -> None:
        """The collector's episodes in progress. They are sampled like finished ones, so training can start
        before the first episode ends (a Pong episode lasts ~900 steps); the collector's checkpoint keeps them."""
        self.pending = list(episodes)
        self._reindex()

    def _reindex(self) -> None:
        self.version += 1  # every change renumbers steps: caches keyed by step check it
        self._sampled = self.episodes + self.pending
        lengths = np.array([len(e) for e in self._sampled], np.int64)
        self._step_ends = np.cumsum(lengths)
        self._step_starts = self._step_ends - lengths

    def add(self, episode: Episode) -> int:
        episode_id = self.ids[-1] + 1 if self.ids else 0
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{k: getattr(episode, k) for k in FIELDS}, truncated=episode.truncated)
        atomic_write_bytes(self._path(episode_id), buffer.getvalue())
        self._append(episode_id, episode)
        return episode_id

    def truncate(self, num_episodes: int) -> None:
        """Keep only the first num_episodes (drop those collected after the checkpoint a run resumes from)."""
        if num_episodes > self.num_episodes:
            raise RunStateError(f"{self._path(self.num_episodes)} is missing: the checkpoint counts {num_episodes} "
                                f"episodes, {self.directory} holds {self.num_episodes}; restore the missing files")
        for episode_id in self.ids[num_episodes:]:
            self._path(episode_id).unlink()
        del self.ids[num_episodes:], self.episodes[num_episodes:]
        self.cuts += 1
        self._reindex()

    def _sample_steps(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(episode index, step in episode) for batch_size draws: an episode uniformly, then a step uniformly in it;
        or, sampling "step", a step uniformly over all stored steps."""
        if not self._sampled:
            raise ValueError(f"cannot sample from an empty episode store ({self.directory})")
        if self.sampling == "episode":
            episode_index = rng.integers(len(self._sampled), size=batch_size)
            lengths = self._step_ends[episode_index] - self._step_starts[episode_index]
            return episode_index, rng.integers(lengths)
        steps = rng.integers(self.num_steps, size=batch_size)
        episode_index = np.searchsorted(self._step_ends, steps, side="right")
        return episode_index, steps - self._step_starts[episode_index]

    def sample_frames(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([self._sampled[e].observations[t] for e, t in zip(*self._sample_steps(batch_size, rng))])

    def sample_segments(self, batch_size: int, length: int, rng: np.random.Generator, from_start: bool) -> dict[str, np.ndarray]:
        """Segments of `length` steps around a drawn step (_sample_steps), zero-padded where they leave their episode
        (mask False there). from_start: the drawn step comes first and padding follows the episode's end, so
        real steps sit at the same positions as in an imagined rollout (world model); else the drawn step
        comes last and padding precedes the episode's start, so the last frame is real (burn-in).
        `index` numbers each real step among all sampled steps (-1 on padding): it names a frame until the
        store changes (iris.tokenizer.TokenCache)."""
        episode_index, steps = self._sample_steps(batch_size, rng)
        frame_shape = self._sampled[0].observations.shape[1:]
        batch = {
            "observations": np.zeros((batch_size, length, *frame_shape), np.uint8),
            "actions": np.zeros((batch_size, length), np.int64),
            "rewards": np.zeros((batch_size, length), np.float32),
            "ends": np.zeros((batch_size, length), bool),
            "mask": np.zeros((batch_size, length), bool),
            "index": np.full((batch_size, length), -1, np.int64),
        }
        for b, (e, step) in enumerate(zip(episode_index, steps)):
            episode = self._sampled[e]
            start, stop = (step, min(step + length, len(episode))) if from_start else (max(step + 1 - length, 0), step + 1)
            at = 0 if from_start else length - (stop - start)
            for k in FIELDS:
                batch[k][b, at:at + stop - start] = getattr(episode, k)[start:stop]
            batch["mask"][b, at:at + stop - start] = True
            batch["index"][b, at:at + stop - start] = np.arange(start, stop) + self._step_starts[e]
        return batch
