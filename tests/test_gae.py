"""compute_gae of every on-policy script against brute-force references (tests/helpers.py)."""
import importlib

import numpy as np
import pytest
import torch

from helpers import discounted_return_reference, gae_reference

# Every script that defines compute_gae (CONVENTIONS §5); later scripts add themselves here.
GAE_SCRIPTS = ["ppo", "a2c", "a2c_atari", "ppo_continuous"]


def random_rollout(seed: int, num_steps: int = 17, num_envs: int = 5):
    g = np.random.default_rng(seed)
    rewards = g.normal(size=(num_steps, num_envs))
    values = g.normal(size=(num_steps, num_envs))
    dones = (g.random((num_steps, num_envs)) < 0.15).astype(np.float64)
    dones[0, 0] = 1.0       # an episode ending at the first step
    dones[-1, 1] = 1.0      # ... at the last step (next_value must then be ignored)
    dones[5:8, 2] = 1.0     # consecutive one-step episodes in the middle
    dones[:, 3] = 0.0       # an env whose episode never ends in the rollout
    next_value = g.normal(size=num_envs)
    return rewards, values, dones, next_value


def call(module, rewards, values, dones, next_value, gamma, lam):
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    adv, ret = module.compute_gae(t(rewards), t(values), t(dones), t(next_value), gamma, lam)
    return adv.numpy(), ret.numpy()


@pytest.mark.parametrize("script", GAE_SCRIPTS)
@pytest.mark.parametrize("gamma", [0.9, 0.99])
@pytest.mark.parametrize("gae_lambda", [0.0, 0.95, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_brute_force(script, gamma, gae_lambda, seed):
    module = importlib.import_module(script)
    rollout = random_rollout(seed)
    adv, ret = call(module, *rollout, gamma, gae_lambda)
    ref_adv, ref_ret = gae_reference(*rollout, gamma, gae_lambda)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("script", GAE_SCRIPTS)
def test_gae_limits(script):
    """lambda = 1 gives discounted Monte-Carlo returns bootstrapped only at the rollout's end;
    lambda = 0 gives the one-step TD target r + gamma * V(s') * (1 - done)."""
    module = importlib.import_module(script)
    rewards, values, dones, next_value = random_rollout(7)
    gamma = 0.97
    _, ret1 = call(module, rewards, values, dones, next_value, gamma, 1.0)
    np.testing.assert_allclose(ret1, discounted_return_reference(rewards, dones, next_value, gamma), atol=1e-10)
    _, ret0 = call(module, rewards, values, dones, next_value, gamma, 0.0)
    v_next = np.concatenate([values[1:], next_value[None]])
    np.testing.assert_allclose(ret0, rewards + gamma * v_next * (1 - dones), atol=1e-10)


@pytest.mark.parametrize("script", GAE_SCRIPTS)
def test_gae_float32_shapes(script):
    """The dtype the scripts train with (float32) keeps shapes and does not modify the inputs."""
    module = importlib.import_module(script)
    rewards, values, dones, next_value = (torch.tensor(a, dtype=torch.float32) for a in random_rollout(3))
    copies = [x.clone() for x in (rewards, values, dones, next_value)]
    adv, ret = module.compute_gae(rewards, values, dones, next_value, 0.99, 0.95)
    assert adv.shape == ret.shape == rewards.shape and adv.dtype == torch.float32
    for before, after in zip(copies, (rewards, values, dones, next_value)):
        assert torch.equal(before, after)
    ref_adv, _ = gae_reference(*(x.double().numpy() for x in copies), 0.99, 0.95)
    np.testing.assert_allclose(adv.numpy(), ref_adv, rtol=1e-4, atol=1e-4)
