"""DQN on Atari Pong (Gymnasium + ale-py on the host), CleanRL's `dqn_atari` recipe.

    jaxai train --config experiments/atari_pong_dqn.py --workdir runs/pong

The same recipe and wrappers as experiments/atari_breakout_dqn.py (its docstring cites them), with
Pong's six actions. CleanRL reports Pong near +20 after 10M steps with this recipe.
"""

import os

import ml_collections

from jaxai.config import load_experiment


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    breakout = os.path.join(os.path.dirname(os.path.abspath(__file__)), "atari_breakout_dqn.py")
    config = load_experiment(breakout, variant)
    config.task.environment = "atari:Pong"
    return config
