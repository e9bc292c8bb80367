"""sac.py and td3.py: the squashed Gaussian, the targets, polyak, the replay buffer, and short trainings.
Tests that hold for both scripts are parametrized over them; Ctrl-C and --help also cover ppo_continuous.py."""
import dataclasses
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import tyro

import ppo_continuous
import sac
import td3
from helpers import DEVICES, assert_finite_scalars, read_args, read_metrics

SCRIPTS = [pytest.param(sac, id="sac"), pytest.param(td3, id="td3")]
LOSSES = ["losses/qf1_loss", "losses/qf2_loss", "losses/qf1_values", "losses/actor_loss", "charts/SPS"]


def tiny_args(mod, **overrides):
    """A few hundred steps with small networks: enough to exercise every branch of the loop in seconds."""
    kw = dict(env_id="Pendulum-v1", total_timesteps=300, learning_starts=150, batch_size=32, hidden_size=32,
              buffer_size=1000, eval_episodes=1, cuda=False)
    kw.update(overrides)
    return mod.Args(**kw)


# ---------------------------------------------------------------- tanh-squashed Gaussian (SAC)
def squashed_reference_log_prob(mean, std, u, scale, bias):
    """log-density of a = bias + scale * tanh(u), u ~ N(mean, std^2), per dimension, by the change of variables
    with the Jacobian da/du taken by central finite differences (independent of the analytic formula)."""
    h = 1e-6
    dadu = scale * (np.tanh(u + h) - np.tanh(u - h)) / (2 * h)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return (log_normal - np.log(dadu)).sum(-1)


def test_squashed_log_prob_matches_change_of_variables():
    rng = np.random.default_rng(0)
    # |u| <= 5.3, where a finite difference of tanh is still accurate; the tails are checked separately below
    mean, log_std, noise = rng.uniform(-2, 2, (500, 2)), rng.uniform(-2, 0.5, (500, 2)), rng.uniform(-2, 2, (500, 2))
    low, high = np.array([-1.0, 0.0]), np.array([3.0, 10.0])  # asymmetric
    scale, bias = (high - low) / 2, (high + low) / 2
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    action, log_prob = sac.squashed_gaussian(t(mean), t(log_std), t(noise), t(scale), t(bias))
    u = mean + np.exp(log_std) * noise
    np.testing.assert_allclose(action.numpy(), bias + scale * np.tanh(u), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log_prob.numpy(), squashed_reference_log_prob(mean, np.exp(log_std), u, scale, bias),
                               rtol=1e-5, atol=1e-5)


def test_squashed_samples_follow_their_log_prob():
    """Monte Carlo: the histogram of 400k sampled actions matches exp(log_prob) integrated over each bin."""
    torch.manual_seed(0)
    low, high, mean, log_std = -1.0, 3.0, 0.4, math.log(0.8)
    scale, bias = torch.tensor([(high - low) / 2]), torch.tensor([(high + low) / 2])
    n = 400_000
    actions, _ = sac.squashed_gaussian(torch.full((n, 1), mean), torch.full((n, 1), log_std), torch.randn(n, 1), scale, bias)
    edges = np.linspace(low, high, 41)
    empirical = np.histogram(actions.numpy()[:, 0], bins=edges)[0] / n
    # density on a fine grid: recover the noise that produces each grid action, then ask for its log-prob
    grid = torch.linspace(low + 1e-4, high - 1e-4, 40_001, dtype=torch.float64)[:, None]
    u = torch.atanh((grid - bias.double()) / scale.double())
    noise = (u - mean) / math.exp(log_std)
    _, log_prob = sac.squashed_gaussian(torch.full_like(u, mean), torch.full_like(u, log_std), noise, scale.double(), bias.double())
    density, g = log_prob.exp().numpy(), grid[:, 0].numpy()
    predicted = [np.trapezoid(density[(g >= a) & (g <= b)], g[(g >= a) & (g <= b)]) for a, b in zip(edges[:-1], edges[1:])]
    assert abs(np.trapezoid(density, g) - 1.0) < 2e-3  # a density over the bounds
    np.testing.assert_allclose(empirical, predicted, atol=2.5e-3)


def test_squashed_gaussian_stays_finite_and_inside_bounds_at_extremes():
    low, high = torch.tensor([-1.0, 0.0, 2.0]), torch.tensor([3.0, 10.0, 2.5])
    scale, bias = (high - low) / 2, (high + low) / 2
    noise = torch.tensor([[-60.0, 0.0, 60.0], [60.0, -60.0, 0.0]])
    action, log_prob = sac.squashed_gaussian(torch.zeros(2, 3), torch.zeros(2, 3), noise, scale, bias)
    assert torch.all(action >= low) and torch.all(action <= high) and torch.isfinite(log_prob).all()
    assert action[0, 1] == bias[1] and action[0, 0] == low[0] and action[0, 2] == high[2]


@pytest.mark.parametrize("mod", SCRIPTS)
def test_actor_actions_rescaled_to_asymmetric_bounds(mod):
    torch.manual_seed(0)
    low, high = np.array([-1.0, 0.0]), np.array([3.0, 10.0])
    centred, wild = mod.Actor(4, 2, 16, low, high), mod.Actor(4, 2, 16, low, high)
    last = [m for m in centred.net if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_(), last.bias.zero_()  # pre-squash output 0: the middle of the bounds
        np.testing.assert_allclose(centred.act_deterministic(torch.zeros(1, 4)).numpy()[0], (low + high) / 2)
        wild.net[0].weight.mul_(100)  # push pre-squash values far into both tails
        obs = torch.randn(2000, 4)
        taken = wild.sample(obs)[0] if mod is sac else wild(obs)
    lo, hi = torch.tensor(low, dtype=torch.float32), torch.tensor(high, dtype=torch.float32)
    assert (taken >= lo).all() and (taken <= hi).all()
    assert taken[:, 1].max() > 9.9 and taken[:, 1].min() < 0.1  # both ends of the range are reached


# ---------------------------------------------------------------- targets and polyak
def test_sac_target_by_hand():
    rewards, terminated = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 1.0, 0.0])
    next_q = torch.tensor([[5.0, 3.0, -1.0], [4.0, 7.0, -2.0]])
    next_log_prob = torch.tensor([0.5, -1.0, 2.0])
    y = sac.sac_target(rewards, terminated, next_q, next_log_prob, alpha=0.2, gamma=0.9)
    # 1 + 0.9 * (min(5, 4) - 0.2 * 0.5);  terminated: -2;  0.5 + 0.9 * (min(-1, -2) - 0.2 * 2)
    torch.testing.assert_close(y, torch.tensor([1 + 0.9 * 3.9, -2.0, 0.5 + 0.9 * -2.4]))


def test_td3_smoothed_clipped_double_q_target_by_hand():
    scale, low, high = torch.tensor([2.0, 1.0]), torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 2.0])
    target_action = torch.tensor([[0.5, 1.9], [-1.9, 0.2]])
    noise = torch.tensor([[0.3, 0.4], [-0.9, -0.1]])
    a = td3.smoothed_target_action(target_action, noise, noise_clip=0.5, scale=scale, low=low, high=high)
    # noise clipped to [0.3, 0.4], [-0.5, -0.1], times scale [2, 1]: [1.1, 2.3 -> 2.0], [-2.9 -> -2.0, 0.1]
    torch.testing.assert_close(a, torch.tensor([[1.1, 2.0], [-2.0, 0.1]]))
    # Q'_i(s', a') = sum(a') + c_i with c = (0.5, -0.3): the min picks the second critic
    next_q = torch.stack([a.sum(1) + 0.5, a.sum(1) - 0.3])
    y = td3.td3_target(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), next_q, gamma=0.99)
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.99 * (3.1 - 0.3), 0.0]))


@pytest.mark.parametrize("mod", SCRIPTS)
@pytest.mark.parametrize("tau", [0.005, 0.3, 1.0])
def test_polyak_update_exact(mod, tau):
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)]
    targets = [torch.randn_like(p) for p in params]
    expected = [tau * p + (1 - tau) * t for p, t in zip(params, targets)]
    mod.polyak_update(targets, params, tau)
    for t, e in zip(targets, expected):
        torch.testing.assert_close(t, e, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mod", SCRIPTS)
def test_q_ensemble_equals_independent_mlps(mod):
    torch.manual_seed(0)
    qf = mod.QEnsemble(3, 2, 8)
    x = torch.randn(5, 5, requires_grad=True)
    q = qf(x)
    for i in range(2):
        w1, w2, w3 = (w[i] for w in qf.weights)
        b1, b2, b3 = (b[i, 0] for b in qf.biases)
        ref = torch.relu(torch.relu(x @ w1 + b1) @ w2 + b2) @ w3 + b3
        torch.testing.assert_close(q[i], ref[:, 0])
    assert not torch.equal(q[0], q[1])  # independently initialized members
    # detached layers: the gradient reaches the input, never the critic's weights
    qf(x, qf.layers(detach=True)).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in qf.parameters())


# ---------------------------------------------------------------- replay buffer
def rows(values, obs_dim=2, act_dim=1):
    v = np.asarray(values, dtype=np.float32)
    return (np.repeat(v[:, None], obs_dim, 1), np.repeat(v[:, None], act_dim, 1), v, np.zeros_like(v),
            np.repeat(v[:, None], obs_dim, 1) + 0.5)


@pytest.mark.parametrize("mod", SCRIPTS)
def test_replay_buffer_wraps_around(mod):
    rb = mod.ReplayBuffer(5, 2, 1, torch.device("cpu"))
    rb.add(*rows([1, 2]))
    rb.add(*rows([3, 4, 5]))
    assert (rb.size, rb.pos) == (5, 0)
    rb.add(*rows([6, 7, 8]))  # a batch that wraps: slots 0, 1, 2 are overwritten, 3 and 4 keep 4 and 5
    assert (rb.size, rb.pos) == (5, 3)
    np.testing.assert_array_equal(rb.data[:, 3].numpy(), [6, 7, 8, 4, 5])  # the reward column
    np.testing.assert_array_equal(rb.data[:, -1].numpy(), [6.5, 7.5, 8.5, 4.5, 5.5])  # next_obs
    rb.add(*rows([9, 10, 11]))  # wraps past the end
    np.testing.assert_array_equal(rb.data[:, 3].numpy(), [11, 7, 8, 9, 10])


@pytest.mark.parametrize("mod", SCRIPTS)
def test_replay_buffer_samples_only_filled_slots(mod):
    torch.manual_seed(0)
    rb = mod.ReplayBuffer(100, 2, 1, torch.device("cpu"))
    rb.add(*rows(np.arange(1, 11)))
    obs_action, rewards, terminated, next_obs = rb.sample(5000)
    assert set(rewards.tolist()) == set(range(1, 11))  # every filled slot, nothing else (empty slots hold 0)
    torch.testing.assert_close(obs_action[:, 0], rewards)
    torch.testing.assert_close(next_obs[:, 1], rewards + 0.5)
    assert obs_action.shape == (5000, 3) and next_obs.shape == (5000, 2) and not terminated.any()


@pytest.mark.parametrize("mod", SCRIPTS)
def test_truncation_stores_true_final_obs_and_no_terminated(mod):
    """Pendulum truncates at 200 steps and never terminates. Replaying the stored actions in a fresh env seeded
    like the run reproduces the stored final observation of the first episode; the next row starts a new one."""
    out = mod.main(tiny_args(mod, total_timesteps=260, learning_starts=1000, eval_episodes=0))
    data = out["replay_buffer"].data[:260].numpy()
    obs, actions, terminated, next_obs = data[:, :3], data[:, 3:4], data[:, 5], data[:, 6:]
    assert not terminated.any()
    same_episode = np.arange(259) != 199  # s' of row t is s of row t + 1, except across the time limit
    np.testing.assert_array_equal(next_obs[:-1][same_episode], obs[1:][same_episode])
    env = gym.make("Pendulum-v1")
    o, _ = env.reset(seed=1)
    for a in actions[:200]:
        o, *_ = env.step(a)
    np.testing.assert_allclose(next_obs[199], o, rtol=1e-6)
    assert not np.allclose(next_obs[199], obs[200])  # the reset observation did not replace it


# ---------------------------------------------------------------- training runs
@pytest.mark.parametrize("mod", SCRIPTS)
@pytest.mark.parametrize("env_id", ["Pendulum-v1", "Hopper-v5"])
def test_smoke_training_logs_finite_scalars(mod, env_id):
    args = tiny_args(mod, env_id=env_id)
    out = mod.main(args)
    metrics = read_metrics(out["run_dir"])
    names = LOSSES + ["charts/episodic_return", "charts/episodic_length", "eval/episodic_return"]
    assert_finite_scalars(metrics, names + (["losses/alpha"] if mod is sac else []))
    assert read_args(out["run_dir"])["env_id"] == env_id
    assert [s for s, _ in metrics["losses/qf1_loss"]][0] > args.learning_starts
    if env_id == "Hopper-v5":  # random actions make Hopper fall: each fall is one terminated row
        rb = out["replay_buffer"]
        term = rb.data[:rb.size, rb.obs_dim + rb.act_dim + 1].numpy()
        assert term.sum() == sum(1 for s, _ in out["episodic_returns"]) > 0


@pytest.mark.parametrize("autotune", [True, False])
def test_sac_alpha_is_tuned_or_fixed(autotune):
    out = sac.main(tiny_args(sac, alpha=0.3, autotune=autotune, eval_episodes=0))
    alphas = [v for _, v in read_metrics(out["run_dir"])["losses/alpha"]]
    if autotune:
        assert all(a != 0.3 for a in alphas)  # moved by its own gradient steps
    else:
        assert alphas == [pytest.approx(0.3)] * len(alphas)


@pytest.mark.parametrize("mod", SCRIPTS)
def test_num_envs_counts_environment_steps(mod):
    out = mod.main(tiny_args(mod, num_envs=2, total_timesteps=400, learning_starts=300, eval_episodes=0))
    # two envs, 200-step episodes: both finish at global step 400, and every environment step is stored
    assert [s for s, _ in out["episodic_returns"]] == [400, 400]
    assert out["replay_buffer"].size == 400
    assert len(read_metrics(out["run_dir"])["losses/qf1_loss"]) == 1  # 100 gradient steps after learning starts


@pytest.mark.parametrize("mod", SCRIPTS)
def test_seeded_runs_are_reproducible(mod):
    a, b = (mod.main(tiny_args(mod, total_timesteps=250, learning_starts=100, eval_episodes=0)) for _ in range(2))
    assert a["episodic_returns"] == b["episodic_returns"] and len(a["episodic_returns"]) == 1
    for p, q in zip(a["actor"].parameters(), b["actor"].parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("mod", SCRIPTS)
@pytest.mark.parametrize("cuda", DEVICES)
def test_saved_model_reloads_and_acts_identically(mod, cuda):
    out = mod.main(tiny_args(mod, save_model=True, eval_episodes=2, cuda=cuda))
    model = f"{out['run_dir']}/model.pt"
    loaded = mod.main(tiny_args(mod, load_model=model, eval_episodes=2, cuda=cuda))
    assert loaded["eval_returns"] == out["eval_returns"]
    assert read_metrics(loaded["run_dir"])["eval/episodic_return"]
    obs = torch.randn(16, 3, device=out["actor"].action_scale.device)
    torch.testing.assert_close(loaded["actor"].act_deterministic(obs), out["actor"].act_deterministic(obs), rtol=0, atol=0)
    other = td3 if mod is sac else sac
    with pytest.raises(ValueError, match="was not saved by"):
        other.main(tiny_args(other, load_model=model))
    with pytest.raises(ValueError, match="pass --env-id Pendulum-v1"):
        mod.main(tiny_args(mod, env_id="MountainCarContinuous-v0", load_model=model))
    with pytest.raises(ValueError, match="does not exist"):
        mod.main(tiny_args(mod, load_model="nowhere/model.pt"))


class ContinuousTestEnv(gym.Env):
    """Zero observations, reward 1; optionally an unbounded action space, or Ctrl-C after `interrupt_after` steps."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,))

    def __init__(self, low: float = -1.0, interrupt_after: int | None = None):
        self.action_space = gym.spaces.Box(low, -low, (1,))
        self.interrupt_after, self.calls = interrupt_after, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        return np.zeros(2, np.float32), 1.0, False, False, {}


gym.register("UnboundedActionTest-v0", entry_point=lambda: ContinuousTestEnv(low=-np.inf))
gym.register("InterruptTest-v0", entry_point=lambda: ContinuousTestEnv(interrupt_after=300), max_episode_steps=5)


@pytest.mark.parametrize("mod", SCRIPTS)
@pytest.mark.parametrize("overrides,message", [
    (dict(env_id="CartPole-v1"), "needs a continuous \\(Box\\) action space"),
    (dict(env_id="UnboundedActionTest-v0"), "unbounded action space"),
    (dict(env_id="NoSuchEnv-v9"), "unknown environment id"),
    (dict(tau=0.0), "--tau must be in"),
    (dict(batch_size=0), "--batch-size must be at least 1"),
    (dict(eval_episodes=-1), "--eval-episodes must be 0 or more"),
])
def test_bad_arguments_fail_with_a_clear_message(mod, overrides, message):
    with pytest.raises(ValueError, match=message):
        mod.main(tiny_args(mod, **overrides))


@pytest.mark.parametrize("mod,lr_flag", [(sac, "q_lr"), (td3, "learning_rate")])
def test_non_positive_learning_rate_is_refused(mod, lr_flag):
    with pytest.raises(ValueError, match="must be positive"):
        mod.check_args(tiny_args(mod, **{lr_flag: 0.0}))




# ---------------------------------------------------------------- Ctrl-C, --help, MuJoCo: the three scripts of issue 3
@pytest.mark.parametrize("mod,overrides", [
    pytest.param(sac, dict(learning_starts=100), id="sac"),
    pytest.param(td3, dict(learning_starts=100), id="td3"),
    pytest.param(ppo_continuous, dict(num_envs=1, num_steps=64, num_minibatches=2, update_epochs=1), id="ppo_continuous"),
])
def test_ctrl_c_stops_cleanly_and_keeps_metrics_and_model(mod, overrides):
    """The env raises KeyboardInterrupt on its 301st step: training stops without an exception, with the 60
    five-step episodes so far in metrics.csv, model.pt saved, and no evaluation."""
    args = dict(env_id="InterruptTest-v0", total_timesteps=5000, save_model=True, eval_episodes=5, cuda=False)
    if mod is not ppo_continuous:
        args.update(batch_size=32, hidden_size=32, buffer_size=1000)
    out = mod.main(mod.Args(**args, **overrides))
    metrics = read_metrics(out["run_dir"])
    assert len(metrics["charts/episodic_return"]) == 60
    assert "eval/episodic_return" not in metrics
    assert (Path(out["run_dir"]) / "model.pt").is_file()


ISSUE3 = [pytest.param(m, id=m.__name__) for m in (sac, td3, ppo_continuous)]


@pytest.mark.parametrize("mod", ISSUE3)
def test_missing_mujoco_names_the_pip_command(mod, monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # makes `import mujoco` raise ImportError
    with pytest.raises(ValueError, match='pip install "gymnasium\\[mujoco\\]"'):
        mod.check_args(mod.Args(env_id="Hopper-v5"))


@pytest.mark.parametrize("mod", ISSUE3)
def test_help_lists_every_flag_with_its_docstring(mod, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:  # what `python X.py --help` runs, in-process
        tyro.cli(mod.Args, args=["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(mod.Args):
        assert f"--{field.name.replace('_', '-')}" in text, field.name
    assert "the discount factor" in text and "(default: 0.99)" in text


# ---------------------------------------------------------------- learning
def mean_last(returns, n):
    return float(np.mean([r for _, r in returns[-n:]]))


# Budget: 4,000 steps (20 episodes), the first 500 random, with 64-unit networks, batch 128, the actor updated
# every step and raised learning rates: ~20 CPU-seconds per script. A random policy scores about -1200 on
# Pendulum; these seeded runs reach about -250 over their last 5 episodes, the test asks for better than -600.
@pytest.mark.parametrize("mod,overrides", [
    pytest.param(sac, dict(q_lr=3e-3, policy_lr=1e-3, policy_frequency=1), id="sac"),
    pytest.param(td3, dict(learning_rate=1e-3, policy_frequency=1), id="td3"),
])
def test_short_run_learns_pendulum(mod, overrides):
    out = mod.main(tiny_args(mod, total_timesteps=4000, learning_starts=500, batch_size=128, hidden_size=64,
                             buffer_size=4000, eval_episodes=0, **overrides))
    assert mean_last(out["episodic_returns"], 5) > -600


@pytest.mark.slow
@pytest.mark.parametrize("mod", SCRIPTS)
def test_default_networks_solve_pendulum(mod):
    """Default settings, seed 1, 15k steps (~5 CPU-minutes each): the last 10 training episodes average better
    than -250 (measured: sac -119, td3 -132; published references reach about -150 to -160 at 20k)."""
    out = mod.main(mod.Args(env_id="Pendulum-v1", total_timesteps=15_000, learning_starts=1000, eval_episodes=0,
                            cuda=False))
    assert mean_last(out["episodic_returns"], 10) > -250
