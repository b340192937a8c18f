"""Atari through Gymnasium + ale-py: shapes, reward sign, seeding, episodic life, same-step autoreset, errors."""

import numpy as np
import pytest

pytest.importorskip("ale_py", reason="Atari tests need ale-py (pip install 'jaxai[rl]').")
pytest.importorskip("cv2", reason="Gymnasium's AtariPreprocessing needs OpenCV (opencv-python-headless).")
gymnasium = pytest.importorskip("gymnasium", reason="Atari tests need Gymnasium (pip install 'jaxai[rl]').")

from jaxai.data import atari  # noqa: E402
from jaxai.errors import ConfigError  # noqa: E402


def make(game: str = "Breakout", num_envs: int = 1, seed: int = 0, **kwargs):
    """make_atari_envs + reset(seed), skipping the test where the emulator cannot start here."""
    try:
        envs = atari.make_atari_envs(game, num_envs, seed, **kwargs)
        obs, info = envs.reset(seed=seed)
    except (RuntimeError, OSError, gymnasium.error.Error) as error:
        pytest.skip(f"ALE cannot start {game} here: {error}")
    return envs, obs


def rollout(envs, steps: int):
    """`steps` seeded random steps -> the stacked observations [T, N, 84, 84, 4] and rewards [T, N]."""
    observations, rewards = [], []
    for _ in range(steps):
        obs, reward, _, _, _ = envs.step(envs.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
    return np.stack(observations), np.stack(rewards)


def test_observations_are_channels_last_uint8_stacks():
    envs, obs = make(num_envs=2)
    assert envs.observation_space.shape == (2, 84, 84, 4) and envs.observation_space.dtype == np.uint8
    assert obs.shape == (2, 84, 84, 4) and obs.dtype == np.uint8
    for k in range(1, 4):  # A fresh stack repeats the reset frame.
        np.testing.assert_array_equal(obs[..., k], obs[..., 0])
    observations, rewards = rollout(envs, 5)
    assert observations.shape == (5, 2, 84, 84, 4) and observations.dtype == np.uint8
    assert rewards.shape == (5, 2)
    np.testing.assert_array_equal(observations[1, ..., :3], observations[0, ..., 1:])  # Oldest frame first.
    envs.close()


def test_rewards_are_clipped_to_their_sign():
    # Space Invaders scores 5-30 points an invader, so a random agent soon sees rewards above 1.
    raw_envs, _ = make("SpaceInvaders", seed=3, clip_rewards=False)
    clipped_envs, _ = make("SpaceInvaders", seed=3, clip_rewards=True)
    _, raw = rollout(raw_envs, 300)
    _, clipped = rollout(clipped_envs, 300)
    assert raw.max() > 1, "the random agent scored nothing: the test needs a reward above 1"
    assert set(np.unique(clipped)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(clipped, np.sign(raw))


def test_the_same_seed_gives_the_same_frames():
    first, obs_a = make(seed=7)
    second, obs_b = make(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rollout(first, 50)[0], rollout(second, 50)[0])
    third, _ = make(seed=8)
    assert not np.array_equal(rollout(make(seed=7)[0], 50)[0], rollout(third, 50)[0])


def test_a_lost_life_ends_the_episode_and_the_game_goes_on():
    envs, obs = make(seed=0)
    ale = envs.envs[0].unwrapped.ale
    lives_after_each_end, game_over_at = [], None
    for step in range(4000):
        obs, _, terminated, truncated, info = envs.step(envs.action_space.sample())
        finished, returns = atari.episode_returns(info, 1)
        if terminated[0] or truncated[0]:
            lives_after_each_end.append(ale.lives())
            # Same-step autoreset: obs already starts the next episode (a fresh stack), not the final frame.
            assert not np.array_equal(info["final_obs"][0], obs[0])
            for k in range(1, 4):
                np.testing.assert_array_equal(obs[0, ..., k], obs[0, ..., 0])
        if finished[0]:
            game_over_at = step
            break
        assert returns[0] == 0.0
    assert game_over_at is not None, "Breakout did not end in 4000 random steps"
    # Breakout has 5 lives: four life losses end the learner's episode with the game going on, then the
    # game ends (and only then does info report a whole-game episode) and restarts with 5 lives.
    assert lives_after_each_end == [4, 3, 2, 1, 5]
    assert returns[0] >= 0 and info["final_info"]["episode"]["l"][0] > game_over_at  # Counted in frames.


def test_without_episodic_life_only_the_game_end_is_terminal():
    envs, _ = make(seed=0, episodic_life=False)
    for step in range(4000):
        _, _, terminated, _, info = envs.step(envs.action_space.sample())
        if terminated[0]:
            assert atari.episode_returns(info, 1)[0][0], "an episode ended before the game did"
            return
    pytest.fail("Breakout did not end in 4000 random steps")


def test_episode_returns_reads_both_info_layouts():
    same_step = {"final_info": {"episode": {"r": np.array([0.0, 21.0, 0.0])}, "_episode": np.array([0, 1, 0], bool)}}
    next_step = {"episode": {"r": np.array([3.0, 0.0, 5.0])}, "_episode": np.array([1, 0, 1], bool)}
    for info, finished, returns in [(same_step, [0, 1, 0], [0, 21, 0]), (next_step, [1, 0, 1], [3, 0, 5]),
                                    ({}, [0, 0, 0], [0, 0, 0])]:
        got_finished, got_returns = atari.episode_returns(info, 3)
        np.testing.assert_array_equal(got_finished, np.array(finished, bool))
        assert got_returns.dtype == np.float32
        np.testing.assert_array_equal(got_returns, returns)


@pytest.mark.parametrize("game", ["Breakout", "breakout", "BreakoutNoFrameskip-v4", "ALE/Breakout-v5"])
def test_game_name_spellings(game):
    assert atari.env_id(game) == "ALE/Breakout-v5"


def test_an_unknown_game_names_close_games():
    with pytest.raises(ConfigError, match="'Breakot'.*Breakout"):
        atari.make_atari_envs("Breakot", 1, 0)
    with pytest.raises(ConfigError, match="SpaceInvaders"):
        atari.env_id("SpaceInvader")


def test_missing_libraries_say_what_to_install(monkeypatch):
    monkeypatch.setattr(atari, "gymnasium", None)
    with pytest.raises(ConfigError, match=r"pip install 'jaxai\[rl\]'"):
        atari.make_atari_envs("Breakout", 1, 0)


def test_a_run_asked_for_a_gif_saves_one_whole_game_and_says_where(tmp_path):
    import os

    from PIL import Image

    from jaxai.config import load_config
    from jaxai.train.loop import train
    from run_helpers import read_metrics

    make()  # Skips where ALE cannot start.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = load_config(os.path.join(root, "experiments", "atari_breakout_dqn.py:smoke"),
                         ["train.progress_bar=False", "task.record_gif=True"])
    workdir = str(tmp_path / "run")
    train(config, workdir)
    path = os.path.join(workdir, "episode.gif")
    with Image.open(path) as gif:
        assert gif.size == (160, 210) and gif.n_frames > 20  # Atari's screen, a whole game of 5 lives.
    exported = [record for record in read_metrics(workdir, "run") if record.get("event") == "export"]
    assert [record["episode_gif"] for record in exported] == [path]
