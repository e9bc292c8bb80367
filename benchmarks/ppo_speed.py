"""Steps per second of ppo.py at CleanRL's classic CartPole settings, next to the environment alone.

    OMP_NUM_THREADS=1 python benchmarks/ppo_speed.py --reps 5

Each repetition times the bare vector environment (random actions, same 4 envs) and then ppo.py's
training loop, so the ratio of the two is measured under the same machine load; medians are reported.
Both are timed by the wall clock and by the process's CPU time: with one torch thread the process is
single-threaded, so on an idle machine the two agree, and on a shared one the CPU-time figure is what the
code costs while the wall-clock figure also counts time spent waiting for a core.
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


def timed(fn, steps: int) -> tuple[float, float]:
    """(wall-clock SPS, CPU-time SPS) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def env_only(steps: int, num_envs: int = 4) -> None:
    envs = ppo.make_envs("CartPole-v1", num_envs)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(steps // num_envs):
        envs.step(rng.integers(0, 2, num_envs))
    envs.close()


def ppo_run(steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ppo.main(ppo.Args(total_timesteps=steps, eval_episodes=0, cuda=False, runs_dir=tmp))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=102_400)
    opts = parser.parse_args()
    ppo_run(2048)  # first-call costs (imports torch._dynamo for the optimizer) stay out of the timings
    rows = []
    for rep in range(opts.reps):
        rows.append(timed(lambda: env_only(opts.steps), opts.steps) + timed(lambda: ppo_run(opts.steps), opts.steps))
        print("rep {}: env alone {:,.0f} SPS wall / {:,.0f} CPU | ppo.py {:,.0f} SPS wall / {:,.0f} CPU".format(rep, *rows[-1]),
              flush=True)
    env_wall, env_cpu, ppo_wall, ppo_cpu = (statistics.median(col) for col in zip(*rows))
    print(f"median of {opts.reps} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}):")
    print(f"  env alone: {env_wall:,.0f} SPS wall clock, {env_cpu:,.0f} SPS CPU time")
    print(f"  ppo.py:    {ppo_wall:,.0f} SPS wall clock, {ppo_cpu:,.0f} SPS CPU time (rollout + updates)")
    print(f"  ppo.py / env alone: {ppo_wall / env_wall:.3f} wall, {ppo_cpu / env_cpu:.3f} CPU")


if __name__ == "__main__":
    main()
