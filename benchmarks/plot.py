"""Draw the learning curves of your own runs (their metrics.csv) into a PNG.

    python benchmarks/plot.py runs/CartPole-v1__ppo__1__1700000000          # one run
    python benchmarks/plot.py runs/ --smooth 20                               # every run in runs/
    python benchmarks/plot.py runs/*__ppo__* --metric losses/value_loss --x time -o value_loss.png

One line per run, labelled by its directory name. Runs whose args.json differ only in `seed` (and in keys that do
not change what is learned: runs_dir, cuda, track, ...) are drawn as one group: the mean over seeds and a min-max
band, on a common grid over the x range every seed covers. A directory of run directories stands for the runs in it.
Runs still in progress work (a last line cut mid-write is skipped). --smooth N: a trailing moving average over N
points of each run (its first points average the fewer points there are so far).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

# arguments that change where or how a run is recorded, not what it learns: ignored when grouping seeds
NOT_LEARNING = {"seed", "runs_dir", "track", "cuda", "torch_threads", "checkpoint_interval", "resume", "save_model",
                "eval_episodes", "capture_video", "load_model"}


def fail(message: str):
    print(f"plot.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def read_curve(run_dir: Path, metric: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
    """(x, value) arrays of one scalar of metrics.csv, x the global step or the wall-clock seconds. A last line that
    does not end in a newline or does not parse (the run is writing it) is skipped."""
    path = run_dir / "metrics.csv"
    lines = path.read_text().split("\n")[1:-1] if path.is_file() else []  # past the header, up to the last newline
    points = []
    for i, line in enumerate(lines):
        fields = line.split(",")
        try:
            if fields[2] == metric:
                points.append((float(fields[0 if x == "step" else 1]), float(fields[3])))
        except (IndexError, ValueError):
            if i < len(lines) - 1:
                fail(f"{path}, line {i + 2}: cannot read {line!r}")
    return tuple(np.array(points).reshape(-1, 2).T)


def smooth(y: np.ndarray, n: int) -> np.ndarray:
    """Trailing moving average over n points; point i averages points max(0, i-n+1)..i."""
    total, end = np.concatenate([[0.0], np.cumsum(y)]), np.arange(1, len(y) + 1)
    start = np.maximum(end - n, 0)
    return (total[end] - total[start]) / (end - start)


def group_runs(runs: list[tuple[Path, dict]]) -> list[list[tuple[Path, dict]]]:
    """Runs whose args.json differ only by seed and recording options, together; in the order of their first run."""
    groups: dict[str, list] = {}
    for run_dir, args in runs:
        learns = {k: v for k, v in args.items() if k not in NOT_LEARNING and not k.startswith("wandb_")}
        groups.setdefault(json.dumps(learns, sort_keys=True), []).append((run_dir, args))
    return list(groups.values())


def aggregate(curves: list[tuple[np.ndarray, np.ndarray]]):
    """(grid, mean, min, max) of the curves interpolated on a grid over the x range all of them cover; None when
    they share no x range."""
    low, high = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    if low > high:
        return None
    grid = np.linspace(low, high, 200)
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(0), ys.min(0), ys.max(0)


def find_runs(paths: list[str]) -> list[tuple[Path, dict]]:
    """(run directory, its args.json) for each path given; a directory of run directories expands to them, sorted."""
    dirs: list[Path] = []
    for path in map(Path, paths):
        if (path / "args.json").is_file():
            inside = [path]
        else:
            inside = sorted(d for d in path.iterdir() if (d / "args.json").is_file()) if path.is_dir() else []
        if not inside:
            fail(f"{path} is not a run directory (no args.json) nor a directory of runs")
        dirs += [d for d in inside if d not in dirs]
    runs = []
    for d in dirs:
        try:
            runs.append((d, json.loads((d / "args.json").read_text())))
        except (OSError, ValueError) as e:
            fail(f"cannot read {d / 'args.json'} ({e})")
    return runs


def name(args: dict) -> str:
    return f"{args.get('exp_name')} on {args.get('env_id', args.get('task'))}"


def group_label(group: list[tuple[Path, dict]], others: list[dict]) -> str:
    """'ppo on CartPole-v1 (3 seeds)', with the arguments that tell it from the other groups of that name."""
    args = group[0][1]
    differ = {k for o in others if name(o) == name(args) for k in set(o) | set(args) if o.get(k) != args.get(k)}
    settings = "".join(f", {k}={args.get(k)}" for k in sorted(differ - NOT_LEARNING) if not k.startswith("wandb_"))
    seeds = len({a.get("seed") for _, a in group})
    return f"{name(args)}{settings} ({len(group)} {'seeds' if seeds == len(group) else 'runs'})"


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="plot.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories, or directories of them")
    parser.add_argument("--metric", default="charts/episodic_return", help="the scalar to draw (default: %(default)s)")
    parser.add_argument("--x", choices=("step", "time"), default="step", help="global step or wall-clock seconds")
    parser.add_argument("--smooth", type=int, default=1, metavar="N", help="trailing moving average over N points")
    parser.add_argument("-o", "--output", default="plot.png", metavar="FILE.png", help="default: %(default)s")
    opts = parser.parse_args(argv)
    if opts.smooth < 1:
        fail(f"--smooth must be at least 1 (got {opts.smooth})")
    output = Path(opts.output)
    if not output.parent.is_dir():
        fail(f"cannot write {output}: no directory {output.parent}")
    runs, empty, curves = [], [], {}
    for run_dir, args in find_runs(opts.runs):
        x, y = read_curve(run_dir, opts.metric, opts.x)
        (runs if len(x) else empty).append((run_dir, args))
        curves[run_dir] = (x, smooth(y, opts.smooth))
    if not runs:
        fail(f"no run has any {opts.metric} point")
    for run_dir, _ in empty:
        print(f"plot.py: {run_dir}: no {opts.metric} yet, skipped", file=sys.stderr)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    groups = group_runs(runs)
    for group in groups:
        band = aggregate([curves[d] for d, _ in group]) if len(group) > 1 else None
        if len(group) > 1 and band is None:
            print(f"plot.py: the seeds of {group[0][0].name} share no x range: drawn one by one", file=sys.stderr)
        if band is None:
            for run_dir, _ in group:
                x, y = curves[run_dir]
                ax.plot(x, y, marker="o" if len(x) == 1 else None, label=run_dir.name)
            continue
        grid, mean, low, high = band
        line, = ax.plot(grid, mean, label=group_label(group, [g[0][1] for g in groups if g is not group]))
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(opts.metric + (f" (moving average over {opts.smooth})" if opts.smooth > 1 else ""))
    ax.set_xlabel("global step" if opts.x == "step" else "wall-clock seconds")
    if opts.x == "step":  # 200 k, not 200000
        ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter())
    ax.set_ylabel(opts.metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)
    print(output)
    return output


if __name__ == "__main__":
    main()
