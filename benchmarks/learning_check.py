"""Run one script on one environment for several seeds, as a user would from the shell, and summarize.

    python benchmarks/learning_check.py ppo.py CartPole-v1 --seeds 1 2 3 4 5 --threshold 475
    python benchmarks/learning_check.py a2c.py Pendulum-v1 --seeds 1 2 3 --threshold -200 -- --total-timesteps 1000000

Each run is a subprocess (`python SCRIPT --env-id ENV --seed S [extra args]`) writing into
benchmarks/runs/. From its metrics.csv the table reports the mean training return of the last
`--window` episodes, the deterministic evaluation return, and the environment step and wall-clock
second at which the mean of `--window` consecutive training episodes first reached `--threshold`.
"""
import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import read_metrics, summarize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script")
    parser.add_argument("env_id")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--runs-dir", default=str(ROOT / "benchmarks" / "runs"))
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # passed through to the script
    opts = parser.parse_args(argv[:len(argv) - len(extra) - (1 if "--" in argv else 0)])
    opts.extra = extra
    rows = []
    for seed in opts.seeds:
        exp_name = f"check_{Path(opts.script).stem}"
        cmd = [sys.executable, str(ROOT / opts.script), "--env-id", opts.env_id, "--seed", str(seed),
               "--exp-name", exp_name, "--runs-dir", opts.runs_dir, *opts.extra]
        print("$", " ".join(cmd[1:]), flush=True)
        done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        # the script names its own run directory (never another run's, even when checks run side by side)
        run_dir = Path(next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("run directory: ")))
        rows.append((seed, run_dir, summarize(read_metrics(run_dir), threshold=opts.threshold, window=opts.window)))
    print(f"\n{opts.script} on {opts.env_id} {' '.join(opts.extra)}")
    print(f"| seed | final return (last {opts.window} ep.) | eval return | first step mean>={opts.threshold:g} | seconds | SPS | steps |")
    print("|---|---|---|---|---|---|---|")
    for seed, _, s in rows:
        cross = f"{s['cross_step']:,}" if s["cross_step"] is not None else "never"
        secs = f"{s['cross_s']:.1f}" if s["cross_s"] is not None else "-"
        print(f"| {seed} | {s['final']:.1f} | {s['eval']:.1f} | {cross} | {secs} | {s['sps']:,.0f} | {s['last_step']:,} |")
    finals = [s["final"] for _, _, s in rows]
    print(f"| mean ± std | {statistics.fmean(finals):.1f} ± {statistics.pstdev(finals):.1f} | | | | | |")


if __name__ == "__main__":
    main()
