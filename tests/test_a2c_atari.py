"""Behaviour of a2c_atari.py on real ALE games: the preprocessing of both backends, what the learner sees against
what is logged (clipped rewards and life-loss ends vs raw full-game scores), short trainings in one process and
in two torchrun processes, seeded runs, the sampled evaluation, save / load across backends, what only this script
refuses, a non-finite update, and stops (Ctrl-C in-process; a signal to the process group of --vector-env async).
The command-line contract shared by the eight scripts is tests/test_family.py's."""
import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from helpers import assert_finite_scalars, read_args, read_metrics

import a2c_atari

ROOT = Path(__file__).resolve().parents[1]
SCALARS = ["charts/episodic_return", "charts/episodic_length", "charts/SPS", "charts/learning_rate",
           "losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/explained_variance",
           "losses/grad_norm", "charts/advantage_mean", "charts/advantage_std"]
TINY = dict(num_envs=4, num_steps=5, log_interval=5)
BACKENDS = ["ale", "async"]


def run(**overrides) -> dict:
    return a2c_atari.main(a2c_atari.Args(**{"cuda": False, "eval_episodes": 0, "torch_threads": 1, **TINY,
                                            **overrides}))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class Recorder(gym.vector.VectorWrapper):
    """Records what the environment returned at every step (around the script's own envs); optionally
    raises KeyboardInterrupt, as Ctrl-C does, on step `interrupt_after + 1`."""

    def __init__(self, env, interrupt_after=None):
        super().__init__(env)
        self.rewards, self.terminated, self.truncated, self.lives, self.final_obs = [], [], [], [], []
        self.interrupt_after = interrupt_after

    def reset(self, **kwargs):
        obs, infos = self.env.reset(**kwargs)
        self.lives.append(infos["lives"].copy())
        return obs, infos

    def step(self, actions):
        if self.interrupt_after is not None and len(self.rewards) >= self.interrupt_after:
            raise KeyboardInterrupt
        obs, reward, terminated, truncated, infos = self.env.step(actions)
        for store, x in ((self.rewards, reward), (self.terminated, terminated), (self.truncated, truncated),
                         (self.lives, infos["lives"])):
            store.append(np.array(x, copy=True))
        self.final_obs.append(infos["final_obs"].copy() if "final_obs" in infos else None)
        return obs, reward, terminated, truncated, infos


def record_envs(monkeypatch, interrupt_after=None) -> list:
    made, original = [], a2c_atari.make_envs

    def make(*args, **kwargs):
        made.append(Recorder(original(*args, **kwargs), interrupt_after))
        return made[-1]

    monkeypatch.setattr(a2c_atari, "make_envs", make)
    return made


def spy_on_gae(monkeypatch) -> list:
    """(rewards, dones) of every rollout as main hands them to compute_gae."""
    seen, real_gae = [], a2c_atari.compute_gae

    def spy(rewards, values, dones, next_value, gamma, gae_lambda):
        seen.append((rewards.clone(), dones.clone()))
        return real_gae(rewards, values, dones, next_value, gamma, gae_lambda)

    monkeypatch.setattr(a2c_atari, "compute_gae", spy)
    return seen


# ---- preprocessing
@pytest.mark.parametrize("vector_env", BACKENDS)
@pytest.mark.parametrize("env_id", ["BreakoutNoFrameskip-v4", "ALE/Pong-v5"])
def test_preprocessing_gives_four_stacked_84x84_uint8_frames(env_id, vector_env):
    a2c_atari.check_args(a2c_atari.Args(env_id=env_id))  # registers the ALE ids
    envs = a2c_atari.make_envs(env_id, 2, vector_env)
    assert envs.single_observation_space.shape == (4, 84, 84) and envs.single_observation_space.dtype == np.uint8
    obs, _ = envs.reset(seed=0)
    frames = [obs]
    for _ in range(30):
        obs, *_ = envs.step(np.ones(2, dtype=np.int64))
        frames.append(obs)
    envs.close()
    assert all(f.shape == (2, 4, 84, 84) and f.dtype == np.uint8 for f in frames)
    assert frames[-1].std() > 0  # a grayscale picture, not a blank
    for before, after in zip(frames[:-1], frames[1:]):
        np.testing.assert_array_equal(after[:, :3], before[:, 1:])  # the stack shifts by one frame, newest last


def test_both_preprocessings_make_the_same_frames_from_the_same_game():
    """ale-py's C++ preprocessing and gymnasium's wrappers, with no-op starts and FIRE switched off so that
    both play the same game from the same seed: every stacked frame must be identical, bit for bit."""
    from ale_py.vector_env import AtariVectorEnv

    a2c_atari.check_args(a2c_atari.Args())
    ale = AtariVectorEnv("breakout", 1, repeat_action_probability=0.0, noop_max=0, frameskip=4, maxpool=True,
                         img_height=84, img_width=84, grayscale=True, stack_num=4, use_fire_reset=False)
    wrapped = gym.wrappers.FrameStackObservation(gym.wrappers.AtariPreprocessing(
        gym.make("BreakoutNoFrameskip-v4"), noop_max=0, frame_skip=4, screen_size=84, terminal_on_life_loss=False),
        4, padding_type="zero")
    a, _ = ale.reset(seed=5)
    b, _ = wrapped.reset(seed=5)
    rewards, over, t, rng = [], False, 0, np.random.default_rng(0)
    while not over:  # one whole game of random play
        np.testing.assert_array_equal(a[0], b, err_msg=f"step {t}")
        action = int(rng.integers(4))
        a, ra, term_a, trunc_a, _ = ale.step(np.array([action]))
        b, rb, term_b, trunc_b, _ = wrapped.step(action)
        assert (ra[0], term_a[0], trunc_a[0]) == (rb, term_b, trunc_b)
        rewards.append(rb)
        over, t = term_b or trunc_b, t + 1
    np.testing.assert_array_equal(a[0], b)  # the final frames too
    ale.close()
    wrapped.close()
    assert t > 100 and sum(rewards) > 0  # a game that went on and scored, not blank frames


# ---- what the learner sees and what is logged
def test_learning_signal_clips_rewards_and_ends_on_a_lost_life():
    reward = np.array([7.0, -3.0, 0.0, 0.5, 1.0])
    terminated = np.array([False, False, True, False, False])
    truncated = np.array([False, False, False, True, False])
    prev_lives, lives = np.array([3, 3, 1, 2, 2]), np.array([3, 2, 5, 2, 2])  # env 2: game over, new game
    clipped, done = a2c_atari.learning_signal(reward, terminated, truncated, lives, prev_lives)
    np.testing.assert_array_equal(clipped, [1.0, -1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(done, [False, True, True, True, False])


@pytest.mark.parametrize("vector_env", BACKENDS)
def test_learner_sees_clipped_rewards_and_life_loss_ends_while_raw_full_game_scores_are_logged(monkeypatch, vector_env):
    """Berzerk pays 50 points per robot, has 3 lives and short random games. Spying on compute_gae: the
    rollout's rewards must be the signs of the raw rewards and its dones must include every lost life, while
    the logged returns are the raw sums over whole games, which go on across lost lives."""
    made, seen = record_envs(monkeypatch), spy_on_gae(monkeypatch)
    out = run(env_id="BerzerkNoFrameskip-v4", total_timesteps=800, vector_env=vector_env, seed=2)  # games end in it
    rec = made[0]
    raw = np.stack(rec.rewards)
    game_over = np.stack(rec.terminated) | np.stack(rec.truncated)
    lives = np.stack(rec.lives)
    life_lost = lives[1:] < lives[:-1]
    assert (np.abs(raw) > 1).any() and (life_lost & ~game_over).any() and game_over.any()
    np.testing.assert_array_equal(torch.cat([r for r, _ in seen]).numpy(), np.sign(raw))
    np.testing.assert_array_equal(torch.cat([d for _, d in seen]).numpy(), (game_over | life_lost).astype(np.float32))
    # Raw full-game scores, in the order the games ended.
    expected, running = [], np.zeros(raw.shape[1])
    for t in range(len(raw)):
        running += raw[t]
        for i in np.flatnonzero(game_over[t]):
            expected.append(running[i])
            running[i] = 0.0
    logged = [r for _, r in out["episodic_returns"]]
    assert logged == expected
    assert [r for _, r in read_metrics(out["run_dir"])["charts/episodic_return"]] == logged


# Breakout cut by a 200-frame time limit, so that truncations happen in a short test.
gym.register("TestBreakout200Frames-v0", entry_point="ale_py.env:AtariEnv",
             kwargs=dict(game="breakout", repeat_action_probability=0.0, full_action_space=False, frameskip=1,
                         max_num_frames_per_episode=200))


@pytest.mark.parametrize("vector_env", BACKENDS)
def test_time_limit_is_bootstrapped_with_the_value_of_the_true_final_frames(monkeypatch, vector_env):
    """A truncated step reaches the learner as done with reward sign(r) + gamma * V(final observation); every
    other step with sign(r). The learning rate is so small that the weights after the one update are those
    that acted."""
    made, seen = record_envs(monkeypatch), spy_on_gae(monkeypatch)
    out = run(env_id="TestBreakout200Frames-v0", num_envs=2, num_steps=60, total_timesteps=120, learning_rate=1e-30,
              vector_env=vector_env)
    rec = made[0]
    (rewards, dones), = seen
    cut = np.stack(rec.truncated) & ~np.stack(rec.terminated)
    assert cut.sum(0).tolist() == [1, 1]  # each game cut once by the time limit
    expected = torch.from_numpy(np.sign(np.stack(rec.rewards))).float()
    for t, i in zip(*np.nonzero(cut)):
        with torch.no_grad():
            expected[t, i] += 0.99 * out["agent"](torch.from_numpy(rec.final_obs[t][i][None]))[1][0]
    assert dones[torch.from_numpy(cut)].tolist() == [1.0, 1.0]
    torch.testing.assert_close(rewards, expected)


# ---- the network and the loss
def test_nature_cnn_shared_by_both_heads_takes_uint8_frames():
    agent = a2c_atari.Agent(4)
    convs = [m for m in agent.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (8, 8), (4, 4)), (64, (4, 4), (2, 2)),
                                                                         (64, (3, 3), (1, 1))]
    trunk = (32 * 4 * 64 + 32) + (64 * 32 * 16 + 64) + (64 * 64 * 9 + 64) + (64 * 7 * 7 * 512 + 512)
    assert sum(p.numel() for p in agent.parameters()) == trunk + (512 * 4 + 4) + (512 + 1)  # one trunk, two heads
    frames = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        pi, value = agent(frames)
        hidden = agent.trunk(frames.float() / 255)
        torch.testing.assert_close(value, agent.critic(hidden).squeeze(-1))
        torch.testing.assert_close(pi.logits, torch.log_softmax(agent.actor(hidden), -1))
    assert pi.probs.shape == (3, 4) and value.shape == (3,)
    assert pi.entropy().min() > math.log(4) - 0.01  # the policy head starts near uniform


# ---- short trainings
def test_smoke_training_logs_finite_scalars():
    out = run(total_timesteps=800)
    run_dir = Path(out["run_dir"])
    assert run_dir.parent == Path("runs") and run_dir.name.startswith("BreakoutNoFrameskip-v4__a2c_atari__1__")
    metrics = read_metrics(run_dir)
    assert_finite_scalars(metrics, SCALARS)
    assert max(s for name in metrics for s, _ in metrics[name]) == 800  # agent steps, counted over all envs
    assert read_args(run_dir) == dataclasses.asdict(a2c_atari.Args(  # the defaults resolved: the game and the seed
        env_id="BreakoutNoFrameskip-v4", seed=1, cuda=False, eval_episodes=0, torch_threads=1, total_timesteps=800, **TINY))
    lr = [v for _, v in metrics["charts/learning_rate"]]
    assert lr == sorted(lr, reverse=True) and lr[-1] < 7e-4 / 10  # linear decay towards 0


def test_seeded_runs_are_reproducible():
    """The default backend steps the games in ale-py's worker threads: the same seed must still give the same
    games and actions, hence bit-identical weights; another seed gives other weights."""
    budget = dict(num_envs=2, total_timesteps=100, log_interval=1)
    first, second, other = (run(seed=seed, **budget)["agent"].state_dict() for seed in (3, 3, 4))
    assert_same_weights(first, second)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_capture_video_writes_mp4_with_gymnasium_envs():
    out = run(vector_env="async", capture_video=True, num_envs=2, total_timesteps=100)
    assert list((Path(out["run_dir"]) / "videos").glob("*.mp4"))


# Run by torchrun in every process: a2c_atari.main, with spies that keep the first update's own gradient (before
# the all-reduce), its mean over the processes (after it), the weights that update started from and the frames
# it learned from.
LAUNCHER = """
import os
import sys

import torch

sys.path.insert(0, {root!r})
import a2c_atari

first, average, forward = {{}}, a2c_atari.average_gradients, a2c_atari.Agent.forward


def average_spy(params, world):
    if "mean" not in first:
        first.update(initial=[p.detach().clone() for p in params], own=[p.grad.clone() for p in params])
    average(params, world)
    first.setdefault("mean", [p.grad.clone() for p in params])


def forward_spy(agent, frames):
    if len(frames) == 10:  # the update's batch: 5 steps x 2 envs
        first.setdefault("frames", frames.clone())
    return forward(agent, frames)


a2c_atari.average_gradients, a2c_atari.Agent.forward = average_spy, forward_spy
out = a2c_atari.main(a2c_atari.Args(cuda=False, num_envs=2, num_steps=5, total_timesteps=200, log_interval=5,
                                    eval_episodes=0, torch_threads=1, save_model=True))
torch.save(dict(first, model=out["agent"].state_dict()), f"rank{{os.environ['RANK']}}.pt")
"""


def test_two_torchrun_processes_average_their_gradients_and_end_with_identical_weights(tmp_path, monkeypatch):
    """Two gloo processes, each with its own games: their frames and own gradients differ, the all-reduce hands
    both the mean of the two gradients, and so their weights stay identical."""
    (tmp_path / "launcher.py").write_text(LAUNCHER.format(root=str(ROOT)))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "launcher.py"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert not torch.equal(rank0["frames"], rank1["frames"])  # different games (seed offset per rank)
    for initial0, initial1 in zip(rank0["initial"], rank1["initial"]):
        assert torch.equal(initial0, initial1)  # the same starting weights
    assert any(not torch.equal(g0, g1) for g0, g1 in zip(rank0["own"], rank1["own"]))
    for g0, g1, mean0, mean1 in zip(rank0["own"], rank1["own"], rank0["mean"], rank1["mean"]):
        torch.testing.assert_close(mean0, (g0 + g1) / 2, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(mean1, (g0 + g1) / 2, rtol=1e-5, atol=1e-7)
    # Bit-identical: both processes apply the same averaged gradients to the same weights with the same code.
    assert_same_weights(rank0["model"], rank1["model"])
    initial = dict(zip(rank0["model"], rank0["initial"]))
    assert any(not torch.equal(initial[k], rank0["model"][k]) for k in initial)  # and they trained
    (run_dir,) = (tmp_path / "runs").iterdir()  # one run directory, written by rank 0 only
    assert_same_weights(torch.load(run_dir / "model.pt", weights_only=True)["model"], rank0["model"])
    metrics = read_metrics(run_dir)
    assert_finite_scalars(metrics, SCALARS[2:])
    # 2 processes x 2 envs x 5 steps = 20 agent steps per update, logged every 5 updates
    assert [s for s, _ in metrics["charts/SPS"]] == [100, 200]


# ---- evaluation
def test_evaluation_samples_full_games_that_end_without_the_time_limit(monkeypatch):
    """An untrained policy never learned to FIRE: sampled, it still ends each game by losing every life, in a
    few hundred steps rather than at the 108k-frame limit. The scores are the raw sums of each env's first game."""
    made = record_envs(monkeypatch)
    out = run(total_timesteps=20, eval_episodes=2)
    ev = made[1]  # made[0] trained
    raw, terminated, truncated = (np.stack(x) for x in (ev.rewards, ev.terminated, ev.truncated))
    first_end = [int(np.flatnonzero(terminated[:, i] | truncated[:, i])[0]) for i in range(2)]
    assert not any(truncated[t, i] for i, t in enumerate(first_end)) and max(first_end) < 2_000
    assert out["eval_returns"] == [float(raw[:t + 1, i].sum()) for i, t in enumerate(first_end)]
    assert read_metrics(out["run_dir"])["eval/episodic_return"] == [(20, r) for r in out["eval_returns"]]


class Log:
    def log(self, step, scalars):
        pass


def test_each_evaluation_game_is_the_same_whatever_the_number_of_games():
    """Env i samples from its own stream: the first two games of an evaluation of 3 are those of an evaluation of 2
    (so `--load-model` alone, with the default 10, repeats a run's evaluation of fewer games)."""
    args = a2c_atari.Args(eval_episodes=2)
    a2c_atari.check_args(args)
    torch.manual_seed(0)
    agent = a2c_atari.Agent(4)
    two = a2c_atari.evaluate(agent, args, torch.device("cpu"), Log(), 0)
    three = a2c_atari.evaluate(agent, dataclasses.replace(args, eval_episodes=3), torch.device("cpu"), Log(), 0)
    assert three[:2] == two


# ---- save / load
def test_load_model_alone_repeats_the_evaluation_of_a_run_made_with_either_backend():
    """Pong, trained a little with gymnasium's subprocesses: `--load-model` alone (so ale-py's env, the run's game and
    seed) acts identically and scores exactly what the run's own evaluation scored: both play on ale-py's env."""
    trained = run(env_id="ALE/Pong-v5", vector_env="async", num_envs=2, total_timesteps=100, save_model=True,
                  eval_episodes=1, seed=7)
    path = Path(trained["run_dir"]) / "model.pt"
    assert path.is_file() and not Path(str(path) + ".tmp").exists()
    assert Path(trained["run_dir"]).name.startswith("ALE_Pong-v5__a2c_atari__7__")  # no "/" in the name
    loaded = run(load_model=str(path), eval_episodes=1)  # no --env-id, no --seed
    obs = torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8)
    with torch.no_grad():
        (pi_a, v_a), (pi_b, v_b) = loaded["agent"](obs), trained["agent"](obs)
        assert torch.equal(pi_a.logits, pi_b.logits) and torch.equal(v_a, v_b)
    assert len(trained["eval_returns"]) == 1 and -21 <= trained["eval_returns"][0] < 0  # a raw Pong score
    assert loaded["eval_returns"] == trained["eval_returns"]
    assert read_args(loaded["run_dir"])["env_id"] == "ALE/Pong-v5" and read_args(loaded["run_dir"])["seed"] == 7
    assert read_metrics(loaded["run_dir"])["eval/episodic_return"] == [(0, trained["eval_returns"][0])]
    assert set(torch.load(path, weights_only=True)) == {"script", "env_id", "args", "model"}


# ---- what only this script refuses (the family's table has the rest)
def test_under_torchrun_a_budget_counts_every_process_and_load_model_is_refused(monkeypatch, tmp_path):
    checkpoint = str(tmp_path / "model.pt")  # a real one: only the process count is wrong
    a2c_atari.save_checkpoint(checkpoint, a2c_atari.Agent(4), a2c_atari.Args(env_id="BreakoutNoFrameskip-v4", seed=1))
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it for two processes
    with pytest.raises(a2c_atari.UsageError, match=r"smaller than one rollout \(num_envs \* num_steps \* processes = 40\)"):
        run(total_timesteps=30)
    with pytest.raises(a2c_atari.UsageError, match="--load-model evaluates in one process; run it with python, not torchrun"):
        run(load_model=checkpoint)
    assert not Path("runs").exists()  # refused before anything was built or written


@pytest.mark.parametrize("module,overrides,message", [
    ("ale_py", {}, r'needs ale-py.*pip install "gymnasium\[atari\]"'),
    ("cv2", {"vector_env": "async"}, r"--vector-env async uses gymnasium's AtariPreprocessing, which needs opencv.*"
                                     r"pip install opencv-python-headless"),
])
def test_missing_ale_py_or_opencv_names_the_pip_command(monkeypatch, module, overrides, message):
    monkeypatch.setitem(sys.modules, module, None)  # what `import` sees when the package is not installed
    with pytest.raises(ValueError, match=message):
        run(**overrides)
    assert not Path("runs").exists()


# ---- a non-finite update
def test_a_non_finite_loss_stops_before_the_step_and_model_pt_keeps_the_last_finite_weights(monkeypatch):
    """The third update's loss turns NaN: the run stops naming it and the step, before the optimizer applies it, so
    the saved weights are those after two updates (the same as a run of exactly two)."""
    real_loss, calls = a2c_atari.a2c_loss, []

    def poisoned(*args):
        calls.append(1)
        loss, parts = real_loss(*args)
        return (loss * math.nan, (parts[0] * math.nan, *parts[1:])) if len(calls) == 3 else (loss, parts)

    monkeypatch.setattr(a2c_atari, "a2c_loss", poisoned)
    with pytest.raises(FloatingPointError, match=r"^the policy loss is not finite at step 60: training stopped\.$"):
        run(total_timesteps=400, save_model=True, anneal_lr=False, log_interval=1)
    (run_dir,) = Path("runs").iterdir()
    saved = torch.load(run_dir / "model.pt", weights_only=True)["model"]
    monkeypatch.setattr(a2c_atari, "a2c_loss", real_loss)
    assert_same_weights(saved, run(total_timesteps=40, anneal_lr=False)["agent"].state_dict())
    assert [s for s, _ in read_metrics(run_dir)["losses/policy_loss"]] == [20, 40]


def processes_naming(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(int(pid))
        except OSError:  # gone meanwhile
            pass
    return found


def test_subprocess_workers_sit_out_of_the_run_s_process_group():
    """So a terminal's Ctrl-C, or a signal to the run's group, reaches the main process alone, which ends them; the
    main process itself (which builds one game too, for the spaces) stays in its group."""
    a2c_atari.check_args(a2c_atari.Args())
    group = os.getpgid(0)
    envs = a2c_atari.make_envs("BreakoutNoFrameskip-v4", 2, "async")
    try:
        assert all(os.getpgid(p.pid) == p.pid != group for p in envs.unwrapped.processes)  # each leads its own group
        assert os.getpgid(0) == group
    finally:
        envs.close()
