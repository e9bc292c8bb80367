"""Steps per second of this repository's sac.py and td3.py next to Stable-Baselines3's SAC and TD3, at identical
settings on Pendulum-v1: batch 256, two 256-unit hidden layers for every network, one gradient step per
environment step, the same learning start, the same torch thread count, Adam everywhere.

Stable-Baselines3 is not a dependency of this repository. Install it in a separate virtual environment that
reuses the pinned packages (check that `pip list` there still shows torch 2.13.0), and run this file with it:

    python -m venv --system-site-packages /tmp/sb3venv && /tmp/sb3venv/bin/pip install stable-baselines3 pandas
    /tmp/sb3venv/bin/python benchmarks/offpolicy_speed.py --reps 5 --steps 3000

Each repetition runs, for each algorithm, ours and then SB3's, so every ratio compares two runs made under the
same machine load; the table reports medians. SPS is environment steps over wall time of building the agent
and training (no evaluation), with learning (one gradient step per step) from step --learning-starts on.
--profile prints where our scripts spend their time (torch profiler, self CPU time per op).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import sac  # noqa: E402
import td3  # noqa: E402

ENV_ID = "Pendulum-v1"


def ours_args(name: str, steps: int, learning_starts: int, threads: int, runs_dir: str):
    common = dict(env_id=ENV_ID, total_timesteps=steps, learning_starts=learning_starts, batch_size=256,
                  hidden_size=256, buffer_size=steps, eval_episodes=0, cuda=False, torch_threads=threads, runs_dir=runs_dir)
    if name == "sac":  # SB3 updates the actor and alpha every step, with one learning rate
        return sac, sac.Args(policy_frequency=1, policy_lr=3e-4, q_lr=3e-4, **common)
    return td3, td3.Args(policy_frequency=2, policy_noise=0.2, noise_clip=0.5, exploration_noise=0.1, **common)


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of fn(); CPU time is less sensitive to other users' load."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def ours_run(name: str, steps: int, learning_starts: int, threads: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        module, args = ours_args(name, steps, learning_starts, threads, tmp)
        return timed(lambda: module.main(args))


def sb3_run(name: str, steps: int, learning_starts: int, threads: int) -> tuple[float, float]:
    import gymnasium as gym
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(threads)

    def build_and_learn():
        env = gym.make(ENV_ID)
        common = dict(batch_size=256, learning_starts=learning_starts, buffer_size=steps, train_freq=1, gradient_steps=1,
                      policy_kwargs=dict(net_arch=[256, 256]), learning_rate=3e-4, seed=1, device="cpu", verbose=0)
        if name == "sac":
            model = SAC("MlpPolicy", env, **common)
        else:
            scale = (env.action_space.high - env.action_space.low) / 2
            noise = NormalActionNoise(np.zeros_like(scale), 0.1 * scale)
            model = TD3("MlpPolicy", env, action_noise=noise, policy_delay=2, target_policy_noise=0.2,
                        target_noise_clip=0.5, **common)
        model.learn(steps)

    return timed(build_and_learn)


def profile_ours(name: str, steps: int, learning_starts: int, threads: int) -> None:
    from torch.profiler import profile

    with tempfile.TemporaryDirectory() as tmp:
        module, args = ours_args(name, steps, learning_starts, threads, tmp)
        with profile() as prof:
            start = time.perf_counter()
            module.main(args)
            wall = time.perf_counter() - start
    print(f"\n{name}.py: {steps} steps in {wall:.1f} s; self CPU time by op:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--learning-starts", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both implementations")
    parser.add_argument("--algos", nargs="+", default=["sac", "td3"])
    parser.add_argument("--profile", action="store_true", help="also profile one run of each of ours")
    opts = parser.parse_args()
    for algo in opts.algos:  # warm-up: the first run of a process pays one-off imports and allocator growth
        ours_run(algo, 2 * opts.learning_starts, opts.learning_starts, opts.threads)
        sb3_run(algo, 2 * opts.learning_starts, opts.learning_starts, opts.threads)
    # per algorithm and implementation: (wall SPS, steps per CPU second) of every rep
    res = {(a, impl): [] for a in opts.algos for impl in ("ours", "sb3")}
    for rep in range(opts.reps):
        for algo in opts.algos:
            for impl, run in (("ours", ours_run), ("sb3", sb3_run)):
                wall, cpu = run(algo, opts.steps, opts.learning_starts, opts.threads)
                res[algo, impl].append((opts.steps / wall, opts.steps / cpu))
            (ow, oc), (sw, sc) = res[algo, "ours"][-1], res[algo, "sb3"][-1]
            print(f"rep {rep} {algo}: ours {ow:6.1f} SPS ({oc:6.1f} per CPU s) | SB3 {sw:6.1f} SPS ({sc:6.1f} per CPU s) "
                  f"| ratio {ow / sw:.2f} ({oc / sc:.2f})", flush=True)
    print(f"\n{ENV_ID}, {opts.steps} steps (learning from {opts.learning_starts}), batch 256, 256-256 networks, "
          f"{opts.threads} torch thread(s), medians of {opts.reps} alternating reps:")
    print("| algorithm | this repo SPS | SB3 SPS | ratio | this repo steps/CPU-s | SB3 steps/CPU-s | ratio |")
    print("|---|---|---|---|---|---|---|")
    med = statistics.median
    for algo in opts.algos:
        ours, sb3 = np.array(res[algo, "ours"]), np.array(res[algo, "sb3"])
        ratios = ours / sb3  # per rep, so both sides of a ratio saw the same load
        print(f"| {algo.upper()} | {med(ours[:, 0]):.1f} | {med(sb3[:, 0]):.1f} | {med(ratios[:, 0]):.2f} | "
              f"{med(ours[:, 1]):.1f} | {med(sb3[:, 1]):.1f} | {med(ratios[:, 1]):.2f} |")
    if opts.profile:
        for algo in opts.algos:
            profile_ours(algo, opts.steps, opts.learning_starts, opts.threads)


if __name__ == "__main__":
    main()
