"""ppo_continuous.py's own pieces: observation normalization and reward scaling (the statistics shared, saved,
restored and frozen), and truncation bootstrapping from the true final observation. What it shares with ppo.py
and a2c.py is tested with them in test_onpolicy_math.py and test_onpolicy_scripts.py."""
import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo_continuous as pc
from helpers import ConstantRewardEnv


def tiny_args(**overrides):
    kw = dict(env_id="Pendulum-v1", total_timesteps=512, num_envs=2, num_steps=128, num_minibatches=4,
              update_epochs=2, eval_episodes=2, cuda=False)
    kw.update(overrides)
    return pc.Args(**kw)


def test_running_statistics_are_those_of_everything_seen():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 4)) for n in (1, 7, 200, 3)]
    rms = pc.RunningMeanStd(shape=(4,))
    normalized = [pc.normalize_obs(rms, b, update=True) for b in batches]
    everything = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(rms.var, everything.var(0), rtol=1e-5)
    np.testing.assert_allclose(pc.normalize_obs(rms, everything).mean(0), 0.0, atol=1e-4)
    assert normalized[-1].dtype == np.float32
    np.testing.assert_array_equal(pc.normalize_obs(rms, np.full((1, 4), 1e9)), np.full((1, 4), 10.0, np.float32))


def test_reward_scale_by_hand():
    """r~ = clip(r / sqrt(var(G) + 1e-8), -10, 10) with G = gamma * G + r per env, reset to 0 after a done."""
    rms = pc.RunningMeanStd(shape=())
    g = np.zeros(2)
    seen = []
    for reward, done in [([1.0, 2.0], [False, True]), ([3.0, -1.0], [False, False]), ([0.5, 4.0], [True, False])]:
        expected_g = 0.9 * g + np.array(reward)
        seen.extend(expected_g)
        scaled, g = pc.scale_reward(np.array(reward), g, np.array(done), rms, 0.9)
        np.testing.assert_allclose(scaled, np.clip(np.array(reward) / np.sqrt(np.var(seen) + 1e-8), -10, 10), rtol=1e-3)
        np.testing.assert_array_equal(g, np.where(done, 0.0, expected_g))


def test_normalization_statistics_shared_saved_restored_and_frozen():
    out = pc.main(tiny_args(total_timesteps=256, save_model=True))
    obs_rms, return_rms = out["obs_rms"], out["return_rms"]
    # one set of statistics fed by both envs: the reset observations plus 128 steps of each env
    assert obs_rms.count == pytest.approx(2 * 129, abs=1e-3) and return_rms.count == pytest.approx(256, abs=1e-3)
    agent, restored = pc.load_checkpoint(f"{out['run_dir']}/model.pt", "Pendulum-v1", torch.device("cpu"))
    np.testing.assert_array_equal(restored.mean, obs_rms.mean)
    np.testing.assert_array_equal(restored.var, obs_rms.var)
    assert restored.count == obs_rms.count
    # the reloaded run evaluates on the same code path with the same weights and statistics: exactly equal
    loaded = pc.main(tiny_args(load_model=f"{out['run_dir']}/model.pt"))
    assert loaded["eval_returns"] == out["eval_returns"]
    # evaluation reads the statistics and never updates them
    np.testing.assert_array_equal(loaded["obs_rms"].mean, restored.mean)
    assert loaded["obs_rms"].count == restored.count
    # ...and the statistics are what it depends on: without them the same weights act differently
    obs = np.random.default_rng(1).normal(size=(8, 3)) * 3
    with torch.no_grad():
        with_stats = loaded["agent"].actor_mean(torch.from_numpy(pc.normalize_obs(loaded["obs_rms"], obs)))
        assert not torch.allclose(with_stats, loaded["agent"].actor_mean(torch.as_tensor(obs, dtype=torch.float32)))


def test_without_normalization_nothing_is_tracked_or_saved():
    out = pc.main(tiny_args(total_timesteps=256, save_model=True, norm_obs=False, norm_reward=False, eval_episodes=0))
    assert out["obs_rms"] is None and out["return_rms"] is None
    assert pc.load_checkpoint(f"{out['run_dir']}/model.pt", "Pendulum-v1", torch.device("cpu"))[1] is None


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
    # the per-step critic call and the batched pass run the same network on different batch sizes: rounding only
    torch.testing.assert_close(rewards[truncated], 1.0 + 0.9 * values[1].expand(3), rtol=1e-6, atol=1e-6)
    assert torch.all(rewards[[t for t in range(16) if t not in truncated]] == 1.0)
    assert not torch.isclose(values[1], values[0])  # V([1]) != V([0]): the test tells the two apart


@pytest.mark.slow
def test_learns_pendulum():
    """100k steps with Pendulum-tuned settings (~1 CPU-minute); a random policy scores about -1200."""
    out = pc.main(pc.Args(env_id="Pendulum-v1", total_timesteps=100_000, num_envs=4, num_steps=1024, gamma=0.9,
                          learning_rate=1e-3, cuda=False))
    assert np.mean([r for _, r in out["episodic_returns"][-20:]]) > -600
    assert np.mean(out["eval_returns"]) > -600
