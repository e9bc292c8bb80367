"""ppo_continuous.py: the Gaussian policy's math, running statistics (saved, restored, frozen), truncation
bootstrapping, and short trainings. GAE itself is tested in test_gae.py with the other scripts; Ctrl-C, --help
and a missing MuJoCo are tested with sac.py and td3.py in test_sac_td3.py."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo_continuous as pc
from helpers import DEVICES, ConstantRewardEnv, assert_finite_scalars, read_args, read_metrics

LOGGED = ["charts/episodic_return", "charts/episodic_length", "charts/SPS", "charts/learning_rate",
          "losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl", "losses/clipfrac",
          "losses/grad_norm", "losses/explained_variance", "charts/advantage_mean", "charts/advantage_std",
          "eval/episodic_return"]


def tiny_args(**overrides):
    kw = dict(env_id="Pendulum-v1", total_timesteps=512, num_envs=2, num_steps=128, num_minibatches=4,
              update_epochs=2, eval_episodes=2, cuda=False)
    kw.update(overrides)
    return pc.Args(**kw)


def test_gaussian_log_prob_and_entropy_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, log_std, action = (torch.randn(64, 3, generator=g, dtype=torch.float64) for _ in range(3))
    ref = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(pc.gaussian_log_prob(action, mean, log_std), ref.log_prob(action).sum(-1))
    torch.testing.assert_close(pc.gaussian_entropy(log_std), ref.entropy().sum(-1))


def test_running_mean_std_matches_the_statistics_of_everything_seen():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 4)) for n in (1, 7, 200, 3)]
    rms = pc.RunningMeanStd((4,))
    for b in batches:
        rms.update(b)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(rms.var, everything.var(0), rtol=1e-5)
    np.testing.assert_allclose(rms.normalize(everything).mean(0), 0.0, atol=1e-4)


def test_normalization_statistics_shared_saved_restored_and_frozen():
    out = pc.main(tiny_args(total_timesteps=256, save_model=True))
    obs_rms, return_rms = out["obs_rms"], out["return_rms"]
    # one set of statistics fed by both envs: the reset observations plus 128 steps of each env
    assert obs_rms.count == pytest.approx(2 * 129, abs=1e-3) and return_rms.count == pytest.approx(256, abs=1e-3)
    agent, restored = pc.load_checkpoint(f"{out['run_dir']}/model.pt", "Pendulum-v1", torch.device("cpu"))
    np.testing.assert_array_equal(restored.mean, obs_rms.mean)
    np.testing.assert_array_equal(restored.var, obs_rms.var)
    assert restored.count == obs_rms.count
    # evaluation reads the statistics and never updates them
    before = (restored.mean.copy(), restored.var.copy(), restored.count)
    returns = pc.evaluate(agent, restored, "Pendulum-v1", 2, seed=7, device=torch.device("cpu"))
    np.testing.assert_array_equal(restored.mean, before[0])
    assert restored.count == before[2] and len(returns) == 2
    # the reloaded run scores exactly what the training run's own evaluation scored...
    loaded = pc.main(tiny_args(load_model=f"{out['run_dir']}/model.pt"))
    assert loaded["eval_returns"] == out["eval_returns"]
    obs = np.random.default_rng(1).normal(size=(8, 3)) * 3
    with torch.no_grad():
        a = out["agent"].act_deterministic(torch.as_tensor(obs_rms.normalize(obs)))
        b = loaded["agent"].act_deterministic(torch.as_tensor(loaded["obs_rms"].normalize(obs)))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # ...and the statistics are what it depends on: without them the same weights act differently
    with torch.no_grad():
        assert not torch.allclose(a, loaded["agent"].act_deterministic(torch.as_tensor(obs, dtype=torch.float32)))


# Observation [t mod 2], reward 1, never terminates; a 5-step time limit truncates it.
gym.register("ParityTest-v0", entry_point=lambda: ConstantRewardEnv(action_space=gym.spaces.Box(-1.0, 1.0, (1,)),
                                                                   observe=lambda t, horizon: t % 2),
             max_episode_steps=5)


def test_truncation_bootstraps_from_the_true_final_observation(monkeypatch):
    """At the time limit the final observation is [1] (5 mod 2) while the reset observation is [0]: the reward that
    reaches GAE must be 1 + gamma * V([1]), and V([1]) is the value the rollout recorded at any odd step."""
    seen, real_gae = {}, pc.compute_gae

    def spy(rewards, values, dones, next_value, gamma, gae_lambda):
        seen.update(rewards=rewards.clone(), values=values.clone(), dones=dones.clone())
        return real_gae(rewards, values, dones, next_value, gamma, gae_lambda)

    monkeypatch.setattr(pc, "compute_gae", spy)
    pc.main(tiny_args(env_id="ParityTest-v0", num_envs=1, num_steps=16, total_timesteps=16, num_minibatches=2,
                      norm_obs=False, norm_reward=False, eval_episodes=0, gamma=0.9))
    rewards, values, dones = (seen[k][:, 0] for k in ("rewards", "values", "dones"))
    truncated = [4, 9, 14]
    assert torch.nonzero(dones).flatten().tolist() == truncated
    torch.testing.assert_close(rewards[truncated], 1.0 + 0.9 * values[1].expand(3))  # obs[1] = [1]
    assert torch.all(rewards[[t for t in range(16) if t not in truncated]] == 1.0)
    assert not torch.isclose(values[1], values[0])  # V([1]) != V([0]): the test tells the two apart


@pytest.mark.parametrize("env_id,overrides", [
    ("Pendulum-v1", {}),
    ("Hopper-v5", dict(eval_episodes=1)),  # MuJoCo; random actions make Hopper fall within a few dozen steps
])
def test_smoke_training_logs_finite_scalars(env_id, overrides):
    out = pc.main(tiny_args(env_id=env_id, **overrides))
    metrics = read_metrics(out["run_dir"])
    assert_finite_scalars(metrics, LOGGED)
    assert read_args(out["run_dir"])["env_id"] == env_id
    lrs = [v for _, v in metrics["charts/learning_rate"]]
    assert lrs[0] == pytest.approx(3e-4) and lrs[-1] < lrs[0]  # annealed


@pytest.mark.parametrize("cuda", DEVICES)
def test_seeded_runs_are_reproducible(cuda):
    a, b = (pc.main(tiny_args(total_timesteps=512, eval_episodes=0, cuda=cuda)) for _ in range(2))
    assert a["episodic_returns"] == b["episodic_returns"] and len(a["episodic_returns"]) == 2
    for p, q in zip(a["agent"].parameters(), b["agent"].parameters()):
        assert torch.equal(p, q)
    np.testing.assert_array_equal(a["obs_rms"].var, b["obs_rms"].var)


@pytest.mark.parametrize("overrides,message", [
    (dict(env_id="CartPole-v1"), "needs a continuous \\(Box\\) action space"),
    (dict(num_minibatches=3), "not divisible by --num-minibatches"),
    (dict(total_timesteps=100), "smaller than one batch"),
    (dict(learning_rate=0.0), "--learning-rate must be positive"),
    (dict(env_id="NoSuchEnv-v9"), "unknown environment id"),
    (dict(load_model="nowhere/model.pt"), "does not exist"),
])
def test_bad_arguments_fail_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError, match=message):
        pc.main(tiny_args(**overrides))


def test_checkpoint_of_another_script_or_env_is_refused(tmp_path):
    torch.save({"script": "sac.py", "env_id": "Pendulum-v1"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="was not saved by ppo_continuous.py"):
        pc.main(tiny_args(load_model=str(tmp_path / "other.pt")))
    out = pc.main(tiny_args(total_timesteps=256, save_model=True, eval_episodes=0))
    with pytest.raises(ValueError, match="pass --env-id Pendulum-v1"):
        pc.main(tiny_args(env_id="MountainCarContinuous-v0", load_model=f"{out['run_dir']}/model.pt"))


@pytest.mark.slow
def test_learns_pendulum():
    """100k steps with Pendulum-tuned settings (~1 CPU-minute); a random policy scores about -1200, this seeded
    run about -410 over its last 20 training episodes and -394 in evaluation."""
    out = pc.main(pc.Args(env_id="Pendulum-v1", total_timesteps=100_000, num_envs=4, num_steps=1024, gamma=0.9,
                          learning_rate=1e-3, cuda=False))
    assert np.mean([r for _, r in out["episodic_returns"][-20:]]) > -600
    assert np.mean(out["eval_returns"]) > -600
