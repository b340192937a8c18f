"""DQN on MinAtar Breakout (gymnax), three seeds trained together in one compiled program.

    jaxai train --config experiments/minatar_breakout_dqn.py --workdir runs/minatar_breakout
    python bench/dqn.py --config experiments/minatar_breakout_dqn.py --target 15 --seeds_at_target 0

MinAtar's network (Young & Tian 2019: Conv 16 3x3, Dense 128) and DQN recipe (Adam instead of
RMSprop; replay 100,000, batch 32, target copied every 1,000 updates, epsilon 1 -> 0.1), with
Double DQN and 3-step returns, 16 environments per seed and one update per 4 environment steps.
Measured (bench/RESULTS.md, two runs): the mean evaluation return of the 3 seeds passes 15 after
331 s and 365 s (15.9, 17.3) and ends at 16.7 and 13.8 after ~14.5 minutes.
"""

import ml_collections

from jaxai.config import base_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config(task="dqn", model="q_minatar")
    config.data.name = "none"
    task = config.task
    task.environment = "gymnax:Breakout-MinAtar"
    task.num_seeds = 3
    task.num_envs = 16
    task.steps_per_call = 500
    task.buffer_size = 100_000
    task.batch_size = 32
    task.learning_starts = 5_000
    task.train_frequency = 4
    task.target_update_every = 500
    task.gamma = 0.99
    task.n_step = 3
    task.double_dqn = True
    task.loss = "huber"
    task.epsilon_start, task.epsilon_end, task.exploration_fraction = 1.0, 0.05, 0.1
    task.eval_episodes = 16
    task.eval_epsilon = 0.05
    task.target_return = 15.0
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 5e-4
    config.optimizer.eps = 1.5e-4
    config.train.num_steps = 130  # x 500 iterations x 16 environments = 1,040,000 environment steps per seed.
    config.train.log_every = 5
    config.train.eval_every = 26
    config.train.checkpoint_every = 26
    if variant == "smoke":
        task.num_envs = 2
        task.steps_per_call = 10
        task.buffer_size = 200
        task.learning_starts = 40
        task.train_frequency = 2
        task.eval_episodes = 2
        config.train.num_steps = 4
        config.train.log_every = 2
        config.train.eval_every = 4
        config.train.checkpoint_every = 4
    elif variant:
        raise ValueError(f"Unknown variant {variant!r}; this experiment has '' and 'smoke'.")
    return config
