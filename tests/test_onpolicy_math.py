"""The math of the on-policy scripts (ppo.py, a2c.py, ppo_continuous.py, and a2c_atari.py where it shares it)
against hand computations and torch.distributions."""
import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal

import a2c
import a2c_atari
import ppo
import ppo_continuous

PPO_SCRIPTS = [pytest.param(ppo, id="ppo"), pytest.param(ppo_continuous, id="ppo_continuous")]


# ---- the clipped surrogate
def surrogate_grad(module, ratio: float, advantage: float, clip: float = 0.2) -> float:
    old = torch.tensor([math.log(0.5)], dtype=torch.float64)
    new = (old + math.log(ratio)).clone().requires_grad_(True)
    module.clipped_surrogate_loss(new, old, torch.tensor([advantage], dtype=torch.float64), clip).backward()
    return new.grad.item()


@pytest.mark.parametrize("module", PPO_SCRIPTS)
def test_ratio_one_gives_the_policy_gradient(module):
    """At ratio 1 (the first minibatch of every update) the clipped loss equals -mean(A * log pi) to first order:
    its gradient with respect to each log-probability is -A / N, the vanilla policy gradient."""
    g = torch.Generator().manual_seed(0)
    adv = torch.randn(64, generator=g, dtype=torch.float64)
    old = torch.randn(64, generator=g, dtype=torch.float64)
    new = old.clone().requires_grad_(True)
    loss = module.clipped_surrogate_loss(new, old, adv, 0.2)
    loss.backward()
    torch.testing.assert_close(new.grad, -adv / 64)
    torch.testing.assert_close(loss, -adv.mean())


@pytest.mark.parametrize("module", PPO_SCRIPTS)
@pytest.mark.parametrize("ratio,advantage", [(1.21, 2.0), (1.5, 2.0), (3.0, 2.0), (0.79, -2.0), (0.5, -2.0), (0.1, -2.0)])
def test_gradient_vanishes_where_the_ratio_left_the_trust_region_in_the_favoured_direction(module, ratio, advantage):
    assert surrogate_grad(module, ratio, advantage) == 0.0


@pytest.mark.parametrize("module", PPO_SCRIPTS)
@pytest.mark.parametrize("ratio,advantage", [(1.1, 2.0), (0.9, 2.0), (0.5, 2.0), (1.1, -2.0), (0.9, -2.0), (3.0, -2.0)])
def test_gradient_survives_where_the_objective_is_pessimistic(module, ratio, advantage):
    """Inside the trust region, and on the side where clipping would make the objective optimistic
    (positive A with a small ratio, negative A with a large one), the gradient is -A * ratio."""
    assert surrogate_grad(module, ratio, advantage) == pytest.approx(-advantage * ratio, rel=1e-12)


# ---- the value loss, the total loss, the KL estimate, explained variance
@pytest.mark.parametrize("module", PPO_SCRIPTS)
def test_value_loss_clipping_by_hand(module):
    old = torch.tensor([1.0, 1.0, 1.0])
    new = torch.tensor([2.0, 1.1, 0.5])
    ret = torch.tensor([3.0, 0.0, 0.0])
    # sample 1: unclipped (2-3)^2 = 1, clipped value 1.2 -> (1.2-3)^2 = 3.24, max 3.24
    # sample 2: inside the clip range, both errors are 1.1^2 = 1.21
    # sample 3: unclipped 0.5^2 = 0.25, clipped value 0.8 -> 0.64, max 0.64
    assert module.value_loss(new, old, ret, 0.2).item() == pytest.approx(0.5 * (3.24 + 1.21 + 0.64) / 3, rel=1e-6)
    assert module.value_loss(new, old, ret, None).item() == pytest.approx(0.5 * (1.0 + 1.21 + 0.25) / 3, rel=1e-6)
    new = torch.tensor([2.0], requires_grad=True)  # 1.0 above the old value, target further up
    module.value_loss(new, torch.tensor([1.0]), torch.tensor([3.0]), 0.2).backward()
    assert new.grad.item() == 0.0  # the clipped error is larger and does not depend on `new`


@pytest.mark.parametrize("module", PPO_SCRIPTS)
def test_ppo_loss_weighs_the_three_terms(module):
    pg, vl, ent = (torch.tensor(x, requires_grad=True) for x in (0.3, 2.0, 0.7))
    loss = module.ppo_loss(pg, vl, ent, ent_coef=0.01, vf_coef=0.5)
    assert loss.item() == pytest.approx(0.3 - 0.01 * 0.7 + 0.5 * 2.0)
    loss.backward()
    assert (pg.grad.item(), vl.grad.item(), ent.grad.item()) == pytest.approx((1.0, 0.5, -0.01))


@pytest.mark.parametrize("module", PPO_SCRIPTS)
def test_approx_kl_k3_is_exact_in_expectation(module):
    """With samples in exact proportion to pi_old, mean((r - 1) - log r) equals KL(pi_old || pi_new)."""
    p_old = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    p_new = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    logratio = (p_new.log() - p_old.log())[torch.tensor([0, 0, 1, 2])]
    torch.testing.assert_close(module.approx_kl(logratio), (p_old * (p_old.log() - p_new.log())).sum())
    assert module.approx_kl(torch.zeros(5)).item() == 0.0


@pytest.mark.parametrize("module", [ppo, a2c, ppo_continuous, a2c_atari], ids=["ppo", "a2c", "ppo_continuous", "a2c_atari"])
def test_explained_variance(module):
    y, pred = torch.tensor([1.0, 2.0, 4.0, 7.0]), torch.tensor([1.0, 3.0, 4.0, 6.0])
    # mean(y) = 3.5: Var[y] = (6.25 + 2.25 + 0.25 + 12.25) / 3 = 7; y - pred = (0, -1, 0, 1): Var = 2 / 3
    assert module.explained_variance(pred, y).item() == pytest.approx(1 - (2 / 3) / 7)
    assert module.explained_variance(y, y).item() == pytest.approx(1.0)
    assert module.explained_variance(torch.full_like(y, 3.5), y).item() == pytest.approx(0.0)
    constant = module.explained_variance(y, torch.ones(4))
    assert constant.dim() == 0 and math.isnan(constant.item())  # a constant target: undefined


# ---- reward scaling (ppo_continuous.py always, a2c.py with --norm-reward)
@pytest.mark.parametrize("module", [a2c, ppo_continuous], ids=["a2c", "ppo_continuous"])
def test_scale_reward_against_a_loop_over_the_discounted_returns(module):
    """r~_t = clip(r_t / sqrt(var + 1e-8), -10, 10), var the variance of every discounted return G seen so far (all envs,
    this step's included), each env's G_t = gamma G_{t-1} + r_t restarting at 0 after a done."""
    rng = np.random.default_rng(0)
    steps, envs, gamma = 200, 4, 0.9
    rewards, dones = rng.normal(0.0, 1.0, (steps, envs)), rng.random((steps, envs)) < 0.1
    rewards[150, 2], rewards[170, 0] = 500.0, -2000.0  # outliers to many G: beyond +10 and -10 standard deviations
    g, history, expected = np.zeros(envs), [], []
    for t in range(steps):
        g = gamma * g + rewards[t]
        history.extend(g)
        expected.append(np.clip(rewards[t] / np.sqrt(np.var(history) + 1e-8), -10.0, 10.0))
        g = np.where(dones[t], 0.0, g)
    assert (np.array(expected) == 10.0).any() and (np.array(expected) == -10.0).any()  # the clip is exercised

    return_rms, discounted = module.RunningMeanStd(shape=()), np.zeros(envs)
    for t in range(steps):
        scaled, discounted = module.scale_reward(rewards[t], discounted, dones[t], return_rms, gamma)
        # the statistics start from a pseudo-count of 1e-4 (gymnasium's RunningMeanStd): equal to 1e-3
        np.testing.assert_allclose(scaled, expected[t], rtol=1e-3, err_msg=f"step {t}")
    np.testing.assert_allclose(discounted, g, rtol=1e-12)
    assert return_rms.count == pytest.approx(steps * envs, abs=1e-3)
    np.testing.assert_allclose([return_rms.mean, return_rms.var], [np.mean(history), np.var(history)], rtol=1e-4)


@pytest.mark.parametrize("module", [a2c, a2c_atari], ids=["a2c", "a2c_atari"])
def test_a2c_loss_by_hand(module):
    logprob = torch.tensor([-1.0, -2.0], requires_grad=True)
    values = torch.tensor([0.5, 1.0], requires_grad=True)
    adv, ret, ent = torch.tensor([2.0, -1.0]), torch.tensor([1.5, 0.0]), torch.tensor([0.7, 0.5])
    loss, (pg, vl, em) = module.a2c_loss(logprob, ent, values, adv, ret, ent_coef=0.01, vf_coef=0.5)
    assert pg.item() == pytest.approx(-(2.0 * -1.0 + -1.0 * -2.0) / 2)
    assert vl.item() == pytest.approx(0.5 * (1.0 + 1.0) / 2)
    assert loss.item() == pytest.approx(pg.item() + 0.5 * vl.item() - 0.01 * 0.6)
    loss.backward()
    torch.testing.assert_close(logprob.grad, -adv / 2)              # the policy gradient
    torch.testing.assert_close(values.grad, 0.5 * (values.detach() - ret) / 2)


# ---- the policies' log-probabilities and entropies
@pytest.mark.parametrize("module", [ppo, a2c], ids=["ppo", "a2c"])
def test_categorical_matches_torch_distributions(module):
    torch.manual_seed(0)
    agent = ppo.Agent(4, 5) if module is ppo else a2c.Agent(4, 5, continuous=False)
    x, action = torch.randn(64, 4) * 3, torch.randint(0, 5, (64,))
    logprob, entropy, value = agent.evaluate_actions(x, action)
    reference = Categorical(logits=agent.actor(x))
    torch.testing.assert_close(logprob, reference.log_prob(action))
    torch.testing.assert_close(entropy, reference.entropy())
    torch.testing.assert_close(value, agent.critic(x)[:, 0])


def test_a2c_gaussian_is_independent_across_action_dimensions():
    """a2c's Gaussian: the log-density and the entropy of an action are the sums of its dimensions' (one std each)."""
    torch.manual_seed(0)
    agent = a2c.Agent(3, 2, continuous=True)
    with torch.no_grad():
        agent.actor_logstd.copy_(torch.tensor([-1.0, 0.5]))
    x, action = torch.randn(64, 3), torch.randn(64, 2) * 2
    logprob, entropy, value = agent.evaluate_actions(x, action)
    mean, std = agent.actor(x), torch.tensor([-1.0, 0.5]).exp()
    by_hand = (-0.5 * ((action - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(logprob, by_hand)
    torch.testing.assert_close(entropy, (0.5 + 0.5 * math.log(2 * math.pi) + std.log()).sum().expand(64))
    torch.testing.assert_close(value, agent.critic(x)[:, 0])
    assert agent.policy(x).sample().shape == (64, 2)


def test_ppo_continuous_gaussian_matches_torch_distributions():
    torch.manual_seed(0)
    agent = ppo_continuous.Agent(3, 2)
    with torch.no_grad():
        agent.actor_logstd.copy_(torch.tensor([[-1.0, 0.5]]))
    x, action = torch.randn(64, 3), torch.randn(64, 2) * 2
    logprob, entropy, value = agent.evaluate_actions(x, action)
    reference = Normal(agent.actor_mean(x), torch.tensor([-1.0, 0.5]).exp())
    torch.testing.assert_close(logprob, reference.log_prob(action).sum(-1))
    torch.testing.assert_close(entropy, reference.entropy().sum(-1))
    torch.testing.assert_close(value, agent.critic(x)[:, 0])
