"""DQN on Atari Breakout (Gymnasium + ale-py on the host), CleanRL's `dqn_atari` recipe.

    jaxai train --config experiments/atari_breakout_dqn.py --workdir runs/breakout
    python bench/side_by_side.py --model dqn_atari   # environment steps per second against a PyTorch peer

CleanRL's hyper-parameters (Huang et al. 2022, `dqn_atari.py`, after Mnih et al. 2015): the Nature
network, Adam 1e-4, batch 32, one update per 4 environment steps from step 80,000, target copied
every 1,000 environment steps (250 updates), gamma 0.99, epsilon 1 -> 0.01 over the first 10% of
10M steps, one environment, Huber loss (the Nature paper's error clipping). Standard wrappers: up to
30 no-op starts, frame skip 4 with a max over the last two frames, 84x84 grey, 4 frames stacked,
reward sign, a lost life ends the learner's episode, no sticky actions (task.atari.sticky_action_prob
= 0.25 for Machado et al.'s protocol). One difference: the buffer keeps 100,000 transitions, not
1,000,000, because it stores each stacked observation whole (28 KB: 2.8 GB for 100,000).
Ten million steps take days on a 2-core CPU; this is the configuration to run on a GPU machine.
`--config.task.record_gif=True` saves one game of the final policy as WORKDIR/episode.gif.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    return atari_config("Breakout", variant)


def atari_config(game: str, variant: str = "") -> ml_collections.ConfigDict:
    """CleanRL's dqn_atari recipe for `game`; `variant` 'smoke' is a few steps for the tests."""
    config = base_config(task="dqn", model="q_nature")
    config.data.name = "none"
    config.mesh.num_devices = 1  # Host environments: one program, one device.
    task = config.task
    task.environment = f"atari:{game}"
    task.num_seeds = 1
    task.num_envs = 1
    task.steps_per_call = 1000
    task.buffer_size = 100_000
    task.batch_size = 32
    task.learning_starts = 80_000
    task.train_frequency = 4
    task.target_update_every = 250
    task.gamma = 0.99
    task.loss = "huber"
    task.epsilon_start, task.epsilon_end, task.exploration_fraction = 1.0, 0.01, 0.1
    task.eval_episodes = 10
    task.eval_epsilon = 0.05
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-4
    config.train.num_steps = 10_000  # x 1,000 = 10,000,000 environment steps.
    config.train.log_every = 10
    config.train.eval_every = 500
    config.train.checkpoint_every = 100
    if variant == "smoke":
        task.steps_per_call = 8
        task.buffer_size = 64
        task.learning_starts = 16
        task.eval_episodes = 1
        task.atari.max_episode_steps = 30
        config.train.num_steps = 4
        config.train.log_every = 2
        config.train.eval_every = 4
        config.train.checkpoint_every = 4
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
