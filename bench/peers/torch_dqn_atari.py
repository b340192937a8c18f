"""Peer benchmark: a CleanRL-style DQN on Atari in PyTorch eager on the CPU; one JSON line.

    pip install -e '.[peers,rl]'       # torch==2.13.0 CPU build, Gymnasium, ale-py; never jaxai dependencies
    python bench/peers/torch_dqn_atari.py --game Breakout --total_timesteps 200000

Environment: jaxai.data.atari.make_atari_envs with one env (the very wrappers jaxai's DQN uses, so
the env's cost is the same): no-op starts, 4-frame skip with max-pooling, 84x84 grayscale, a lost
life ends the episode, reward sign, 4 frames stacked; same-step autoreset.
Network (Nature DQN): x / 255 -> Conv(4 -> 32, 8x8, stride 4) -> ReLU -> Conv(32 -> 64, 4x4, stride 2)
-> ReLU -> Conv(64 -> 64, 3x3, stride 1) -> ReLU -> flatten (3136) -> Linear(512) -> ReLU -> Linear(A);
PyTorch's default init.
Recipe (CleanRL's dqn_atari.py): Adam lr 1e-4, gamma 0.99, Huber (smooth L1) loss on
r + gamma * (1 - done) * max_a' Q_target(s', a'), batch 32 drawn uniformly from a circular replay
buffer, one update every --train_frequency env steps once past --learning_starts, the target network
copied every --target_network_frequency env steps, epsilon-greedy with epsilon falling linearly from
1.0 to 0.01 over the first --exploration_fraction of --total_timesteps.

Reported: env_steps_per_s (all env steps over the whole loop), learning_steps_per_s (the env steps
after --learning_starts over the time since then: acting, storing and updating together), updates,
episodes (whole games, from info["episode"]), mean_return_last_10 (their unclipped returns), wall_s
(the whole process, imports included), torch_threads, load_before (the 1-minute load average first).
"""

from __future__ import annotations

import time

_PROCESS_START = time.perf_counter()  # Before importing torch: wall_s counts the import too.

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from jaxai.data.atari import episode_returns, make_atari_envs  # noqa: E402


class QNetwork(nn.Module):
    def __init__(self, num_actions: int, frames: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(frames, 32, 8, stride=4), nn.ReLU(),  # 84 -> 20
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),  # 20 -> 9
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),  # 9 -> 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(),
            nn.Linear(512, num_actions),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [B, 4, 84, 84] -> Q-values [B, A]."""
        return self.net(frames.float() / 255.0)


class ReplayBuffer:
    """A circular buffer of transitions in numpy, sampled uniformly over the filled slots.

    Frames are stored NCHW (transposed once as each one arrives, as CleanRL's CHW env gives them), so
    a sampled batch goes to the convolutions without a permute."""

    def __init__(self, capacity: int, frame_shape: tuple[int, int, int], seed: int) -> None:
        self.obs = np.zeros((capacity, *frame_shape), np.uint8)
        self.next_obs = np.zeros((capacity, *frame_shape), np.uint8)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.capacity, self.position, self.size = capacity, 0, 0
        self.rng = np.random.default_rng(seed)

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: int, reward: float, done: bool) -> None:
        i = self.position
        self.obs[i], self.next_obs[i] = obs, next_obs
        self.actions[i], self.rewards[i], self.dones[i] = action, reward, done
        self.position, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        index = self.rng.integers(0, self.size, batch_size)
        return tuple(torch.from_numpy(a[index]) for a in
                     (self.obs, self.next_obs, self.actions, self.rewards, self.dones))


def to_nchw(obs: np.ndarray) -> np.ndarray:
    """The env's channels-last [N, 84, 84, 4] -> [N, 4, 84, 84], contiguous."""
    return np.ascontiguousarray(obs.transpose(0, 3, 1, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--total_timesteps", type=int, default=10_000_000)
    parser.add_argument("--learning_starts", type=int, default=80_000)
    parser.add_argument("--buffer_size", type=int, default=10_000, help="Transitions kept (CleanRL: 1,000,000).")
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--train_frequency", type=int, default=4)
    parser.add_argument("--target_network_frequency", type=int, default=1000)
    parser.add_argument("--start_e", type=float, default=1.0)
    parser.add_argument("--end_e", type=float, default=0.01)
    parser.add_argument("--exploration_fraction", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps torch's default.")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    envs = make_atari_envs(args.game, 1, args.seed)
    num_actions = int(envs.single_action_space.n)
    q_network, target_network = QNetwork(num_actions), QNetwork(num_actions)
    target_network.load_state_dict(q_network.state_dict())
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate)
    height, width, frames = envs.single_observation_space.shape
    buffer = ReplayBuffer(args.buffer_size, (frames, height, width), args.seed)
    exploration_steps = args.exploration_fraction * args.total_timesteps

    obs, _ = envs.reset(seed=args.seed)
    obs = to_nchw(obs)
    returns, updates = [], 0
    loop_start = learning_start = time.perf_counter()
    for step in range(args.total_timesteps):
        if step == args.learning_starts:
            learning_start = time.perf_counter()
        epsilon = max(args.end_e, args.start_e + (args.end_e - args.start_e) * step / exploration_steps)
        if rng.random() < epsilon:
            actions = envs.action_space.sample()
        else:
            with torch.no_grad():
                actions = q_network(torch.from_numpy(obs)).argmax(dim=1).numpy()
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        next_obs = to_nchw(next_obs)
        finished, episode_return = episode_returns(infos, 1)
        if finished[0]:
            returns.append(float(episode_return[0]))
        # Same-step autoreset: on done, next_obs already starts the next episode; done masks it out of
        # the target, so the final frame is not needed (a truncation counts as terminal too).
        done = bool(terminations[0] or truncations[0])
        buffer.add(obs[0], next_obs[0], int(actions[0]), float(rewards[0]), done)
        obs = next_obs

        if step > args.learning_starts:
            if step % args.train_frequency == 0:
                batch_obs, batch_next, batch_actions, batch_rewards, batch_dones = buffer.sample(args.batch_size)
                with torch.no_grad():
                    next_value = target_network(batch_next).max(dim=1).values
                    target = batch_rewards + args.gamma * next_value * (1.0 - batch_dones)
                value = q_network(batch_obs).gather(1, batch_actions[:, None]).squeeze(1)
                loss = F.smooth_l1_loss(value, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                updates += 1
            if step % args.target_network_frequency == 0:
                target_network.load_state_dict(q_network.state_dict())
    end = time.perf_counter()
    envs.close()

    learning_steps = args.total_timesteps - args.learning_starts
    print(json.dumps({
        "peer": "torch_dqn_atari",
        "game": args.game,
        "total_timesteps": args.total_timesteps,
        "learning_starts": args.learning_starts,
        "wall_s": round(time.perf_counter() - _PROCESS_START, 2),
        "env_steps_per_s": round(args.total_timesteps / (end - loop_start), 1),
        "learning_steps_per_s": round(learning_steps / (end - learning_start), 1) if learning_steps > 0 else None,
        "updates": updates,
        "episodes": len(returns),
        "mean_return_last_10": round(float(np.mean(returns[-10:])), 2) if returns else None,
        "torch_threads": torch.get_num_threads(),
        "load_before": load_before,
    }))


if __name__ == "__main__":
    main()
