"""The loss pieces of ppo.py / a2c.py and their numpy acting path, against hand computations and torch."""
import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical

import a2c
import ppo
import ppo_continuous


# ---- the clipped surrogate
def surrogate_grad(ratio: float, advantage: float, clip: float = 0.2) -> float:
    old = torch.tensor([math.log(0.5)], dtype=torch.float64)
    new = (old + math.log(ratio)).clone().requires_grad_(True)
    ppo.clipped_surrogate_loss(new, old, torch.tensor([advantage], dtype=torch.float64), clip).backward()
    return new.grad.item()


def test_ratio_one_gives_the_policy_gradient():
    """At ratio 1 (the first minibatch of every update) the clipped loss equals -mean(A * log pi) to first order:
    its gradient with respect to each log-probability is -A / N, the vanilla policy gradient."""
    g = torch.Generator().manual_seed(0)
    adv = torch.randn(64, generator=g, dtype=torch.float64)
    old = torch.randn(64, generator=g, dtype=torch.float64)
    new = old.clone().requires_grad_(True)
    loss = ppo.clipped_surrogate_loss(new, old, adv, 0.2)
    loss.backward()
    torch.testing.assert_close(new.grad, -adv / 64)
    torch.testing.assert_close(loss, -adv.mean())


@pytest.mark.parametrize("ratio", [1.21, 1.5, 3.0])
def test_positive_advantage_gradient_vanishes_above_one_plus_clip(ratio):
    assert surrogate_grad(ratio, +2.0) == 0.0


@pytest.mark.parametrize("ratio", [0.79, 0.5, 0.1])
def test_negative_advantage_gradient_vanishes_below_one_minus_clip(ratio):
    assert surrogate_grad(ratio, -2.0) == 0.0


@pytest.mark.parametrize("ratio,advantage", [(1.1, 2.0), (0.9, 2.0), (0.5, 2.0), (1.1, -2.0), (0.9, -2.0), (3.0, -2.0)])
def test_gradient_survives_where_the_objective_is_pessimistic(ratio, advantage):
    """Inside the trust region, and on the side where clipping would make the objective optimistic
    (positive A with a small ratio, negative A with a large one), the gradient is -A * ratio."""
    assert surrogate_grad(ratio, advantage) == pytest.approx(-advantage * ratio, rel=1e-12)


def test_value_loss_clipping_by_hand():
    old = torch.tensor([1.0, 1.0, 1.0])
    new = torch.tensor([2.0, 1.1, 0.5])
    ret = torch.tensor([3.0, 0.0, 0.0])
    # sample 1: unclipped (2-3)^2 = 1, clipped value 1.2 -> (1.2-3)^2 = 3.24, max 3.24
    # sample 2: inside the clip range, both errors are 1.1^2 = 1.21
    # sample 3: unclipped 0.5^2 = 0.25, clipped value 0.8 -> 0.64, max 0.64
    expected = 0.5 * (3.24 + 1.21 + 0.64) / 3
    assert ppo.value_loss(new, old, ret, 0.2).item() == pytest.approx(expected, rel=1e-6)
    assert ppo.value_loss(new, old, ret, None).item() == pytest.approx(0.5 * (1.0 + 1.21 + 0.25) / 3, rel=1e-6)


def test_value_clipping_stops_the_gradient_beyond_the_range():
    new = torch.tensor([2.0], requires_grad=True)  # 1.0 above the old value, target further up
    ppo.value_loss(new, torch.tensor([1.0]), torch.tensor([3.0]), 0.2).backward()
    assert new.grad.item() == 0.0  # the clipped error is larger and does not depend on `new`


def test_approx_kl_k3_is_exact_in_expectation():
    """With samples in exact proportion to pi_old, mean((r - 1) - log r) equals KL(pi_old || pi_new)."""
    p_old = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    p_new = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    samples = torch.tensor([0, 0, 1, 2])
    logratio = (p_new.log() - p_old.log())[samples]
    exact = (p_old * (p_old.log() - p_new.log())).sum()
    torch.testing.assert_close(ppo.approx_kl(logratio), exact)
    assert ppo.approx_kl(torch.zeros(5)).item() == 0.0


def test_explained_variance():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert ppo.explained_variance(y, y) == pytest.approx(1.0)
    assert ppo.explained_variance(torch.full_like(y, y.mean()), y) == pytest.approx(0.0)
    assert a2c.explained_variance(y, y).item() == pytest.approx(1.0)


def test_a2c_loss_by_hand():
    logprob = torch.tensor([-1.0, -2.0], requires_grad=True)
    values = torch.tensor([0.5, 1.0], requires_grad=True)
    adv, ret, ent = torch.tensor([2.0, -1.0]), torch.tensor([1.5, 0.0]), torch.tensor([0.7, 0.5])
    loss, (pg, vl, em) = a2c.a2c_loss(logprob, ent, values, adv, ret, ent_coef=0.01, vf_coef=0.5)
    assert pg.item() == pytest.approx(-(2.0 * -1.0 + -1.0 * -2.0) / 2)
    assert vl.item() == pytest.approx(0.5 * (1.0 + 1.0) / 2)
    assert loss.item() == pytest.approx(pg.item() + 0.5 * vl.item() - 0.01 * 0.6)
    loss.backward()
    torch.testing.assert_close(logprob.grad, -adv / 2)              # the policy gradient
    torch.testing.assert_close(values.grad, 0.5 * (values.detach() - ret) / 2)


# ---- acting in numpy must be the same policy as the torch module the update trains
def test_ppo_numpy_forward_matches_torch_and_follows_updates():
    torch.manual_seed(0)
    agent = ppo.Agent(6, 3)
    x = torch.randn(9, 6)
    actor, critic = agent.numpy_layers()
    np.testing.assert_allclose(ppo.mlp_numpy(actor, x.numpy()), agent.actor(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ppo.mlp_numpy(critic, x.numpy())[:, 0], agent.get_value(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    opt = torch.optim.Adam(agent.parameters(), lr=0.1, fused=True)
    agent.actor(x).sum().backward()
    opt.step()  # on CPU the numpy arrays are views: they must see the new weights without a refresh
    np.testing.assert_allclose(ppo.mlp_numpy(actor, x.numpy()), agent.actor(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_ppo_policy_scores_match_torch_distributions():
    torch.manual_seed(0)
    agent = ppo.Agent(4, 5)
    x, action = torch.randn(64, 4) * 3, torch.randint(0, 5, (64,))
    _, logprob, entropy, value = agent.get_action_and_value(x, action)
    reference = Categorical(logits=agent.actor(x))
    torch.testing.assert_close(logprob, reference.log_prob(action))
    torch.testing.assert_close(entropy, reference.entropy())
    torch.testing.assert_close(value, agent.critic(x)[:, 0])
    sampled, *_ = agent.get_action_and_value(x)
    assert sampled.shape == (64,) and sampled.dtype == torch.long and 0 <= sampled.min() <= sampled.max() < 5


def test_categorical_sampling_is_exact():
    """Gumbel-max samples follow softmax(logits), and the recorded log-probability is torch's."""
    logits = np.array([[0.0, 1.0, -1.0, 2.0]] * 40_000, dtype=np.float32)
    action, logp = ppo.sample_categorical(logits, np.random.default_rng(0))
    probs = torch.softmax(torch.from_numpy(logits[0]), -1).numpy()
    freq = np.bincount(action, minlength=4) / len(action)
    sigma = np.sqrt(probs * (1 - probs) / len(action))
    assert np.all(np.abs(freq - probs) < 5 * sigma), (freq, probs)
    expected = Categorical(logits=torch.from_numpy(logits)).log_prob(torch.from_numpy(action)).numpy()
    np.testing.assert_allclose(logp, expected, rtol=1e-5, atol=1e-6)
    counts = np.bincount(a2c.sample_action(logits, None, np.random.default_rng(1)), minlength=4) / len(action)
    assert np.all(np.abs(counts - probs) < 5 * sigma), (counts, probs)


def test_a2c_gaussian_sampling_and_actor():
    torch.manual_seed(0)
    agent = a2c.Agent(3, 2, continuous=True)
    with torch.no_grad():
        agent.actor_logstd.copy_(torch.tensor([-1.0, 0.5]))
    x = torch.randn(5, 3)
    layers, critic, logstd = agent.numpy_layers()
    mean = a2c.mlp_numpy(layers, x.numpy())
    np.testing.assert_allclose(mean, agent.actor(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a2c.mlp_numpy(critic, x.numpy())[:, 0], agent.get_value(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    samples = a2c.sample_action(np.repeat(mean[:1], 50_000, 0), logstd, np.random.default_rng(0))
    np.testing.assert_allclose(samples.mean(0), mean[0], atol=0.03)
    np.testing.assert_allclose(samples.std(0), np.exp([-1.0, 0.5]), rtol=0.02)


# ---- the single parameter buffer of a2c.py and ppo_continuous.py
def flat_case(script: str):
    """(agent factory, its log-prob / entropy / value function, its module) for the flat-buffer test."""
    if script == "a2c":
        return (lambda: a2c.Agent(3, 2, continuous=True)), (lambda agent, x, a: agent.evaluate_actions(x, a)), a2c
    return (lambda: ppo_continuous.Agent(3, 2)), (lambda agent, x, a: agent.get_logprob_entropy_value(x, a)), ppo_continuous


@pytest.mark.parametrize("script,optimizer", [("a2c", "rmsprop"), ("a2c", "adam"), ("ppo_continuous", "fused-adam")])
def test_flat_parameter_buffer_trains_exactly_like_separate_parameters(script, optimizer):
    """flatten_parameters puts the weights and the gradients of both MLPs (and the log-std) into one buffer
    each. Three clipped optimizer steps on that buffer must leave the same weights as the same steps on the
    separate parameters of an untouched copy; the modules' gradients must be views of the gradient buffer,
    filled by backward(); and the numpy views used for acting must follow the steps."""
    def make_optimizer(params):
        if optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-5)
        return torch.optim.Adam(params, lr=1e-2, eps=1e-5, fused=optimizer == "fused-adam")

    make_agent, evaluate, module = flat_case(script)
    torch.manual_seed(0)
    flat_agent, reference = make_agent(), make_agent()
    reference.load_state_dict(flat_agent.state_dict())
    flat = module.flatten_parameters(flat_agent)
    assert flat.numel() == sum(p.numel() for p in reference.parameters())
    actor_np = flat_agent.numpy_layers()[0]
    opt_flat, opt_ref = make_optimizer([flat]), make_optimizer(list(reference.parameters()))
    x, action = torch.randn(16, 3), torch.randn(16, 2)
    initial = {k: v.clone() for k, v in flat_agent.state_dict().items()}

    def loss(agent):
        logprob, entropy, value = evaluate(agent, x, action)
        return -(logprob * value.detach()).mean() + value.square().mean() - 0.01 * entropy.mean()

    for _ in range(3):
        flat.grad.zero_()
        loss(flat_agent).backward()
        torch.testing.assert_close(flat.grad, torch.cat([p.grad.reshape(-1) for p in flat_agent.parameters()]))
        assert flat.grad.abs().sum() > 0
        opt_ref.zero_grad()
        loss(reference).backward()
        torch.testing.assert_close(flat.grad, torch.cat([p.grad.reshape(-1) for p in reference.parameters()]))
        torch.nn.utils.clip_grad_norm_([flat], 0.5)
        torch.nn.utils.clip_grad_norm_(list(reference.parameters()), 0.5)
        opt_flat.step()
        opt_ref.step()
    for (name, a), b in zip(flat_agent.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert all(not torch.equal(v, initial[k]) for k, v in flat_agent.state_dict().items())  # every tensor trained
    actor = flat_agent.actor if script == "a2c" else flat_agent.actor_mean
    np.testing.assert_allclose(module.mlp_numpy(actor_np, x.numpy()), actor(x).detach().numpy(), rtol=1e-5, atol=1e-6)
