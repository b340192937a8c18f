"""Atari 2600 games through Gymnasium and ale-py, with the DQN (Nature 2015) preprocessing.

Each sub-environment: `ALE/<Game>-v5` without its own frame skip -> RecordEpisodeStatistics (the real,
unclipped, whole-game return and length) -> AtariPreprocessing (up to 30 no-op starts, 4-frame skip
with a max over the last two frames, 84x84 grayscale uint8) -> EpisodicLife (a lost life ends the
learner's episode, the game goes on) -> reward sign -> the last 4 frames stacked -> channels-last.
The vector env autoresets on the same step: the observation returned with done is already the first
of the next episode. Observations are uint8 [num_envs, 84, 84, 4]; call reset(seed=seed), which seeds
sub-environment i with seed + i.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable

import numpy as np

from jaxai.errors import ConfigError

try:
    import ale_py
    import cv2  # noqa: F401  (AtariPreprocessing resizes with OpenCV)
    import gymnasium
except ImportError:  # Optional: only Atari runs need them.
    ale_py = gymnasium = None

_INSTALL = "Atari needs Gymnasium and ale-py: pip install 'jaxai[rl]'."


class EpisodicLife(gymnasium.Wrapper if gymnasium else object):
    """A lost life ends the episode for the learner; the game itself restarts only once it is over.

    Gymnasium's own AtariPreprocessing(terminal_on_life_loss=True) restarts the whole game on the reset
    that follows a lost life, so the agent never plays past its first life and the game never ends.
    """

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.lives, self.game_over = 0, True

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        life_lost, self.lives = lives < self.lives, lives
        return obs, reward, terminated or life_lost, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:  # Go on with the same game: one no-op step instead of a restart.
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        self.lives, self.game_over = self.env.unwrapped.ale.lives(), False
        return obs, info


def game_names() -> list[str]:
    """Every single-player game ale-py registers, as the short names `make_atari_envs` takes."""
    _require()
    return sorted(name[4:-3] for name in gymnasium.registry if name.startswith("ALE/") and name.endswith("-v5"))


def env_id(game: str) -> str:
    """'Breakout', 'breakout', 'BreakoutNoFrameskip-v4' or 'ALE/Breakout-v5' -> 'ALE/Breakout-v5'."""
    short = re.sub(r"(NoFrameskip|Deterministic)?-v\d+$", "", game.removeprefix("ALE/"))
    key = short.replace("_", "").lower()
    names = {name.lower(): name for name in game_names()}
    if key not in names:
        close = [names[n] for n in difflib.get_close_matches(key, names, n=3, cutoff=0.5)]
        hint = f"did you mean {', '.join(close)}?" if close else f"one of {len(names)} games like Breakout, Pong."
        raise ConfigError(f"Unknown Atari game {game!r}: {hint}")
    return f"ALE/{names[key]}-v5"


def make_atari_envs(game: str, num_envs: int, seed: int, *, noop_max: int = 30, frame_skip: int = 4,
                    screen_size: int = 84, frame_stack: int = 4, episodic_life: bool = True,
                    clip_rewards: bool = True, sticky_action_prob: float = 0.0,
                    render: bool = False) -> "gymnasium.vector.VectorEnv":
    """`num_envs` preprocessed copies of `game` in one SyncVectorEnv (same-step autoreset); obs uint8
    [num_envs, screen_size, screen_size, frame_stack]. Seeds the action spaces; pass `seed` to reset."""
    name = env_id(game)
    obs_space = gymnasium.spaces.Box(0, 255, (screen_size, screen_size, frame_stack), np.uint8)

    def make_one() -> gymnasium.Env:
        env = gymnasium.make(name, frameskip=1, repeat_action_probability=sticky_action_prob,
                             full_action_space=False, render_mode="rgb_array" if render else None)
        env = gymnasium.wrappers.RecordEpisodeStatistics(env)
        env = gymnasium.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=frame_skip,
                                                    screen_size=screen_size, terminal_on_life_loss=False,
                                                    grayscale_obs=True, scale_obs=False)
        if episodic_life:
            env = EpisodicLife(env)
        if clip_rewards:
            env = gymnasium.wrappers.TransformReward(env, lambda r: float(np.sign(r)))
        env = gymnasium.wrappers.FrameStackObservation(env, frame_stack)  # [stack, H, W]
        return gymnasium.wrappers.TransformObservation(env, lambda o: np.moveaxis(o, 0, -1), obs_space)

    envs = gymnasium.vector.SyncVectorEnv([make_one] * num_envs,
                                          autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
    envs.action_space.seed(seed)
    for i, env in enumerate(envs.envs):
        env.action_space.seed(seed + i)
    return envs


def episode_returns(infos: dict, num_envs: int) -> tuple[np.ndarray, np.ndarray]:
    """The vector env's step info -> (finished bool [num_envs], returns float32 [num_envs]): which games
    ended this step and their whole-game, unclipped returns (0 where none ended).

    With same-step autoreset a finished game's statistics sit in infos["final_info"]["episode"]["r"]
    (mask infos["final_info"]["_episode"]); next-step autoreset puts them at the top level."""
    finished, returns = np.zeros(num_envs, bool), np.zeros(num_envs, np.float32)
    for source in (infos, infos.get("final_info", {})):
        if "episode" in source:
            mask = np.asarray(source.get("_episode", np.ones(num_envs, bool)), bool)
            returns = np.where(mask, np.asarray(source["episode"]["r"], np.float32), returns)
            finished |= mask
    return finished, returns


def record_episode_gif(game: str, policy: Callable[[np.ndarray], np.ndarray], path: str, *, seed: int = 0,
                       epsilon: float = 0.05, max_steps: int = 4500, settings: dict[str, Any] | None = None) -> str:
    """Plays one whole game with `policy` (observations [1, 84, 84, 4] -> actions [1]; epsilon-random
    actions so a policy stuck before serving still ends) and saves its screens as an animated GIF."""
    from PIL import Image

    envs = make_atari_envs(game, 1, seed, render=True, **(settings or {}))
    rng = np.random.default_rng(seed)
    observations, _ = envs.reset(seed=seed)
    frames = [envs.envs[0].render()]
    for _ in range(max_steps):
        actions = policy(observations)
        if rng.random() < epsilon:
            actions = np.asarray([envs.single_action_space.sample()])
        observations, _, _, _, infos = envs.step(actions)
        frames.append(envs.envs[0].render())
        if episode_returns(infos, 1)[0][0]:
            break
    envs.close()
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)  # 4 frames skipped: 20 fps.
    return path


def _require() -> None:
    if gymnasium is None:
        raise ConfigError(_INSTALL)
    gymnasium.register_envs(ale_py)
