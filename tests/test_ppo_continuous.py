"""ppo_continuous.py's own pieces: observation normalization and reward scaling (the statistics shared, saved,
restored by --load-model alone, kept by a stop, and frozen), truncation bootstrapping from the true final observation,
actions clipped only where they enter the environment, and MuJoCo's warnings and headless videos. What it shares with
ppo.py and a2c.py is tested with them in test_onpolicy_math.py and test_onpolicy_scripts.py, its command line with
every script in test_family.py."""
import math
import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo_continuous as pc
from helpers import ConstantRewardEnv, read_args, read_metrics


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


def test_normalization_statistics_shared_saved_restored_and_frozen():
    out = pc.main(tiny_args(total_timesteps=256, save_model=True, seed=3))
    obs_rms, return_rms = out["obs_rms"], out["return_rms"]
    # one set of statistics fed by both envs: the reset observations plus 128 steps of each env
    assert obs_rms.count == pytest.approx(2 * 129, abs=1e-3) and return_rms.count == pytest.approx(256, abs=1e-3)
    model = f"{out['run_dir']}/model.pt"
    restored = pc.load_checkpoint(pc.Args(load_model=model))["obs_rms"]
    np.testing.assert_array_equal(restored["mean"].numpy(), obs_rms.mean)
    np.testing.assert_array_equal(restored["var"].numpy(), obs_rms.var)
    assert restored["count"].item() == obs_rms.count
    # --load-model alone: the run's environment and seed, the same weights and statistics: the same evaluation episodes
    # beside eight more (to rounding: a batch of 10 observations goes through another matmul kernel than a batch of 2)
    loaded = pc.main(pc.Args(load_model=model, cuda=False))  # 10 evaluation episodes
    assert (read_args(loaded["run_dir"])["env_id"], read_args(loaded["run_dir"])["seed"]) == ("Pendulum-v1", 3)
    assert loaded["eval_returns"][:2] == pytest.approx(out["eval_returns"], rel=1e-6)
    # evaluation reads the statistics and never updates them (nor does the reset before the zero training rollouts)
    np.testing.assert_array_equal(loaded["obs_rms"].mean, obs_rms.mean)
    assert loaded["obs_rms"].count == obs_rms.count
    # ...and the statistics are what it depends on: without them the same weights act differently
    obs = np.random.default_rng(1).normal(size=(8, 3)) * 3
    with torch.no_grad():
        with_stats = loaded["agent"].actor_mean(torch.from_numpy(pc.normalize_obs(loaded["obs_rms"], obs)))
        assert not torch.allclose(with_stats, loaded["agent"].actor_mean(torch.as_tensor(obs, dtype=torch.float32)))


# Observation [t], reward 1, never terminates; a 5-step time limit truncates it. The 41st step raises KeyboardInterrupt,
# as SIGINT does; with observe=nan_at_7 the 7th step's observation is NaN.
def nan_at_7(t, horizon):
    return math.nan if t == 7 else t


gym.register("CountTest-v0", entry_point=lambda: ConstantRewardEnv(action_space=gym.spaces.Box(-1.0, 1.0, (1,)),
                                                                   observe=lambda t, horizon: t, interrupt_after=40),
             max_episode_steps=5)
gym.register("NanObsTest-v0", entry_point=lambda: ConstantRewardEnv(action_space=gym.spaces.Box(-1.0, 1.0, (1,)),
                                                                    horizon=100, observe=nan_at_7), max_episode_steps=100)


def test_a_stop_keeps_the_statistics_it_trained_with_in_model_pt():
    """Stopped in its third rollout (after two updates), the run's model.pt holds the observation statistics of every
    observation so far: the reset's, then one per step (40 steps; the 41st raised)."""
    with pytest.raises(KeyboardInterrupt):
        pc.main(tiny_args(env_id="CountTest-v0", num_envs=1, num_steps=16, num_minibatches=2, total_timesteps=64,
                          save_model=True, seed=2))
    (run_dir,) = Path("runs").iterdir()
    assert len(read_metrics(run_dir)["losses/policy_loss"]) == 2 and "eval/episodic_return" not in read_metrics(run_dir)
    stats = pc.load_checkpoint(pc.Args(load_model=str(run_dir / "model.pt")))["obs_rms"]
    seen = [0] + [t for _ in range(8) for t in (1, 2, 3, 4, 0)]  # each episode: t = 1..4, then the reset's 0
    assert stats["count"].item() == pytest.approx(len(seen), abs=1e-3)
    np.testing.assert_allclose([stats["mean"][0], stats["var"][0]], [np.mean(seen), np.var(seen)], rtol=1e-4)


def test_a_non_finite_observation_stops_training_and_keeps_the_finite_model():
    """The 7th observation is NaN: the run stops at the step that returned it, before it can enter the statistics or
    reach the policy, and model.pt keeps the finite weights."""
    with pytest.raises(FloatingPointError, match=r"^the observation is not finite at step 7: training stopped\.$"):
        pc.main(tiny_args(env_id="NanObsTest-v0", num_envs=1, num_steps=16, num_minibatches=2, total_timesteps=64,
                          save_model=True))
    (run_dir,) = Path("runs").iterdir()
    assert (run_dir / "model.pt").is_file()


def test_mujoco_warnings_go_through_python_once_and_no_log_file(monkeypatch):
    """Args() defaults to HalfCheetah-v5 and seed 1; its model compiles with a deprecation warning on every gym.make.
    It arrives as a Python RuntimeWarning, once however many environments are made, and MuJoCo writes no
    MUJOCO_LOG.TXT into the working directory (each test runs in its own)."""
    pytest.importorskip("mujoco")
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    args = pc.Args()
    with pytest.warns(RuntimeWarning, match="settotalmass") as caught:
        pc.check_args(args)
        pc.make_envs(args.env_id, 3).close()
    assert (args.env_id, args.seed) == ("HalfCheetah-v5", 1)
    assert len([w for w in caught if "settotalmass" in str(w.message)]) == 1
    assert not Path("MUJOCO_LOG.TXT").exists()
    assert os.environ.get("MUJOCO_GL") == ("egl" if sys.platform == "linux" else None)


def test_capture_video_renders_mujoco_headless():
    """--capture-video on a MuJoCo env writes an mp4 without a display (MuJoCo renders through EGL on Linux)."""
    pytest.importorskip("mujoco")
    out = pc.main(tiny_args(env_id="Hopper-v5", num_envs=1, num_steps=64, num_minibatches=2, total_timesteps=64,
                            update_epochs=1, capture_video=True, eval_episodes=0))
    videos = list(Path(out["run_dir"], "videos").glob("*.mp4"))
    assert videos and all(v.stat().st_size > 1000 for v in videos)


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
    # normalization out of the way (raw observations, unscaled rewards): this is about the bootstrap alone
    monkeypatch.setattr(pc, "normalize_obs", lambda obs_rms, obs, update=False: obs.astype(np.float32))
    monkeypatch.setattr(pc, "scale_reward", lambda reward, discounted, done, return_rms, gamma: (reward, discounted))
    pc.main(tiny_args(env_id="ParityTest-v0", num_envs=1, num_steps=16, total_timesteps=16, num_minibatches=2,
                      eval_episodes=0, gamma=0.9))
    rewards, values, dones = (seen[k][:, 0] for k in ("rewards", "values", "dones"))
    truncated = [4, 9, 14]
    assert torch.nonzero(dones).flatten().tolist() == truncated
    # the per-step critic call and the batched pass run the same network on different batch sizes: rounding only
    torch.testing.assert_close(rewards[truncated], 1.0 + 0.9 * values[1].expand(3), rtol=1e-6, atol=1e-6)
    assert torch.all(rewards[[t for t in range(16) if t not in truncated]] == 1.0)
    assert not torch.isclose(values[1], values[0])  # V([1]) != V([0]): the test tells the two apart


class ActionRecordingEnv(ConstantRewardEnv):
    """ConstantRewardEnv that keeps every action it receives."""
    received = []

    def step(self, action):
        ActionRecordingEnv.received.append(np.array(action))
        return super().step(action)


BOUNDS = gym.spaces.Box(np.array([-0.1, 0.0], np.float32), np.array([0.2, 0.05], np.float32))
gym.register("BoundedActionTest-v0", entry_point=lambda: ActionRecordingEnv(action_space=BOUNDS), max_episode_steps=5)


def test_actions_are_clipped_only_where_they_enter_the_environment(monkeypatch):
    """The Gaussian's samples (std 1 at the start) mostly leave the narrow bounds: the environment receives each one
    clipped to them, while the loss's batched pass sees the very samples the policy drew."""
    sampled, real_evaluate = [], pc.Agent.evaluate_actions

    def spy(agent, x, action):
        sampled.append(action.clone())
        return real_evaluate(agent, x, action)

    monkeypatch.setattr(pc.Agent, "evaluate_actions", spy)
    monkeypatch.setattr(ActionRecordingEnv, "received", [])
    pc.main(tiny_args(env_id="BoundedActionTest-v0", num_envs=1, num_steps=16, total_timesteps=16, num_minibatches=2,
                      update_epochs=1, eval_episodes=0))
    rollout = sampled[0].numpy()  # the first call: the batched pass over the whole rollout, in step order
    assert rollout.shape == (16, 2) and (rollout < BOUNDS.low).any() and (rollout > BOUNDS.high).any()
    np.testing.assert_array_equal(np.stack(ActionRecordingEnv.received), np.clip(rollout, BOUNDS.low, BOUNDS.high))


@pytest.mark.slow
def test_learns_pendulum():
    """100k steps with Pendulum-tuned settings (~1 CPU-minute); a random policy scores about -1200."""
    out = pc.main(pc.Args(env_id="Pendulum-v1", total_timesteps=100_000, num_envs=4, num_steps=1024, gamma=0.9,
                          learning_rate=1e-3, cuda=False))
    assert np.mean([r for _, r in out["episodic_returns"][-20:]]) > -600
    assert np.mean(out["eval_returns"]) > -600
