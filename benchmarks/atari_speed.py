"""Steps per second of a2c_atari.py for each way of stepping the games, in one process and in torchrun processes.

    python benchmarks/atari_speed.py --reps 3                       # Breakout, defaults (16 envs x 5 steps per process)
    python benchmarks/atari_speed.py --vector-envs ale async --procs 1 --steps 4000

Every repetition runs each configuration once, in a fixed order, so configurations compare under similar machine
load; the table gives the median of charts/SPS (agent steps per second summed over all processes, measured from
after the first reset (or the resume) to the end of training, no evaluation) and the same times 4, emulator frames per second
(the CleanRL way of counting: frames after frame skip). Each run is a fresh subprocess (`torchrun --standalone`
for more than one process, gloo on CPU).
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(vector_env: str, procs: int, steps: int, env_id: str, extra: list[str]) -> float:
    """charts/SPS of one training run (agent steps per second, all processes together)."""
    with tempfile.TemporaryDirectory() as tmp:
        launcher = [sys.executable] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                        f"--nproc_per_node={procs}"]
        cmd = [*launcher, str(ROOT / "a2c_atari.py"), "--env-id", env_id, "--vector-env", vector_env,
               "--total-timesteps", str(steps), "--eval-episodes", "0", "--no-cuda", "--runs-dir", tmp,
               "--log-interval", "1000000", *extra]  # one log line, at the last update
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        subprocess.run(cmd, check=True, capture_output=True, env={**env, "OMP_NUM_THREADS": "1"})
        (run_dir,) = Path(tmp).iterdir()
        with open(run_dir / "metrics.csv", newline="") as f:
            sps = [float(r["value"]) for r in csv.DictReader(f) if r["name"] == "charts/SPS"]
        return sps[-1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4000, help="agent steps per run, all processes together")
    parser.add_argument("--env-id", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--vector-envs", nargs="+", default=["ale", "async"])
    parser.add_argument("--procs", nargs="+", type=int, default=[1, 2], help="process counts (2+: torchrun)")
    opts, extra = parser.parse_known_args(argv)  # anything else goes to a2c_atari.py
    configs = [(p, v) for p in opts.procs for v in opts.vector_envs]
    results = {c: [] for c in configs}
    for rep in range(opts.reps):
        for procs, vector_env in configs:
            results[procs, vector_env].append(run_once(vector_env, procs, opts.steps, opts.env_id, extra))
            print(f"rep {rep} procs {procs} {vector_env:<11} {results[procs, vector_env][-1]:7.1f} agent steps/s", flush=True)
    print(f"\n{opts.env_id}, {opts.steps} agent steps per run, {os.cpu_count()} CPUs, medians of {opts.reps}:")
    print("| processes | --vector-env | agent steps/s | frames/s (x4) | runs |")
    print("|---|---|---|---|---|")
    for procs, vector_env in configs:
        sps = results[procs, vector_env]
        print(f"| {procs} | {vector_env} | {statistics.median(sps):.0f} | {4 * statistics.median(sps):.0f} | "
              f"{', '.join(f'{s:.0f}' for s in sps)} |")


if __name__ == "__main__":
    main()
