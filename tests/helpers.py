"""Helpers shared by the test modules: reading a run's metrics and independent references."""
import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

# Parametrize a test over devices: CPU always, CUDA where present (the `cuda` marker skips it elsewhere).
DEVICES = [pytest.param(False, id="cpu"), pytest.param(True, id="cuda", marks=pytest.mark.cuda)]


class ConstantRewardEnv(gym.Env):
    """A test environment: reward 1 on every step. The observation is `observe(t, horizon)` — by default the
    fraction of the horizon elapsed. With terminate=False the episode only ever ends by a TimeLimit
    (truncation); with terminate=True by termination at step `horizon`. With interrupt_after=N the
    (N+1)-th step raises KeyboardInterrupt, as Ctrl-C does in the main thread."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)

    def __init__(self, horizon: int = 5, terminate: bool = False, action_space=None, interrupt_after=None,
                 observe=lambda t, horizon: t / horizon):
        self.horizon, self.terminate, self.t, self.calls = horizon, terminate, 0, 0
        self.action_space = action_space or gym.spaces.Discrete(2)
        self.interrupt_after, self.observe = interrupt_after, observe

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.observe(0, self.horizon)], np.float32), {}

    def step(self, action):
        self.t += 1
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        obs = np.array([self.observe(self.t, self.horizon)], np.float32)
        return obs, 1.0, self.terminate and self.t >= self.horizon, False, {}


def read_metrics(run_dir) -> dict:
    """metrics.csv as {name: [(global_step, value), ...]} in file order; checks the header."""
    path = Path(run_dir) / "metrics.csv"
    with open(path, newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["global_step", "wall_time", "name", "value"]
        out = defaultdict(list)
        for step, wall, name, value in reader:
            float(wall)
            out[name].append((int(step), float(value)))
    return dict(out)


def read_args(run_dir) -> dict:
    return json.loads((Path(run_dir) / "args.json").read_text())


def assert_finite_scalars(metrics: dict, names) -> None:
    for name in names:
        assert name in metrics and metrics[name], f"{name} was not logged"
        values = [v for _, v in metrics[name]]
        assert all(math.isfinite(v) for v in values), f"{name} has non-finite values: {values[:10]}"


def gae_reference(rewards, values, dones, next_value, gamma, gae_lambda):
    """Brute-force lambda-advantages: for every (t, env) walk forward summing (gamma*lambda)^k * delta,
    stopping at the end of the episode. Independent of the backward recursion the scripts use."""
    rewards, values, dones = (np.asarray(x, dtype=np.float64) for x in (rewards, values, dones))
    next_value = np.asarray(next_value, dtype=np.float64)
    T, N = rewards.shape
    v_next = np.concatenate([values[1:], next_value[None]], axis=0)
    deltas = rewards + gamma * v_next * (1.0 - dones) - values
    adv = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * deltas[k, n]
                if dones[k, n]:
                    break
                weight *= gamma * gae_lambda
            adv[t, n] = total
    return adv, adv + values


def discounted_return_reference(rewards, dones, next_value, gamma):
    """Monte-Carlo return of every step, bootstrapped with next_value only at the rollout's end."""
    rewards, dones = np.asarray(rewards, np.float64), np.asarray(dones, np.float64)
    T, N = rewards.shape
    out = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            g, disc, k = 0.0, 1.0, t
            while k < T:
                g += disc * rewards[k, n]
                if dones[k, n]:
                    break
                disc *= gamma
                k += 1
            else:
                g += disc * float(next_value[n])
            out[t, n] = g
    return out
