"""Steps per second of ppo.py at CleanRL's classic CartPole settings, next to the environment alone.

    OMP_NUM_THREADS=1 python benchmarks/ppo_speed.py --reps 5

Each repetition times the bare vector environment (random actions, same 4 envs) and then ppo.py's
training loop, so the ratio of the two is measured under the same machine load; medians are reported.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import ppo  # noqa: E402


def env_only_sps(steps: int, num_envs: int = 4) -> float:
    envs = ppo.make_envs("CartPole-v1", num_envs)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps // num_envs):
        envs.step(rng.integers(0, 2, num_envs))
    sps = steps / (time.perf_counter() - start)
    envs.close()
    return sps


def ppo_sps(steps: int, **overrides) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = ppo.Args(total_timesteps=steps, eval_episodes=0, cuda=False, runs_dir=tmp, **overrides)
        start = time.perf_counter()
        ppo.main(args)
        return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=102_400)
    opts = parser.parse_args()
    env, agent = [], []
    for rep in range(opts.reps):
        env.append(env_only_sps(opts.steps))
        agent.append(ppo_sps(opts.steps))
        print(f"rep {rep}: env alone {env[-1]:,.0f} SPS | ppo.py {agent[-1]:,.0f} SPS", flush=True)
    e, a = statistics.median(env), statistics.median(agent)
    print(f"median over {opts.reps}: env alone {e:,.0f} SPS | ppo.py {a:,.0f} SPS (wall clock incl. updates) "
          f"| ppo.py / env = {a / e:.2f} | OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")


if __name__ == "__main__":
    main()
