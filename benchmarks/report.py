"""Turn a suite's finished runs (benchmarks/run.py) into a results table and learning curves.

    python benchmarks/report.py quick            # writes benchmarks/results/quick.md and quick_*.png

For every script x environment of the suite, over its seeds: the final return (mean of the last `window`
values of the job's metric — 100 training episodes by default, the common convention), the deterministic
evaluation return, the environment step and the wall-clock second at which the mean of `window`
consecutive values first reached the job's threshold (mean over the seeds that reached it, and how many
did), and the steps per second. The PNGs show the mean and the min-max band across seeds, against
environment steps and against wall-clock seconds.
"""
import argparse
import csv
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ABLATIONS, RUNS, SUITES, Job, done_file, job_name  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def read_metrics(run_dir) -> dict:
    """metrics.csv as {name: [(global_step, wall_time, value), ...]}."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["name"], []).append((int(row["global_step"]), float(row["wall_time"]), float(row["value"])))
    return out


def first_reaching(rows, threshold: float, window: int):
    """(step, wall_time) at which the mean of `window` consecutive values first reaches the threshold."""
    values = [v for _, _, v in rows]
    for i in range(window, len(values) + 1):
        if statistics.fmean(values[i - window:i]) >= threshold:
            return rows[i - 1][:2]
    return None


def summarize(metrics: dict, metric: str = "charts/episodic_return", threshold: float | None = None,
              window: int = 100) -> dict:
    rows = metrics.get(metric, [])
    values = [v for _, _, v in rows]
    evals = [v for _, _, v in metrics.get("eval/episodic_return", [])]
    sps = metrics.get("charts/SPS", [])
    crossing = first_reaching(rows, threshold, min(window, len(rows))) if threshold is not None and rows else None
    return {"final": statistics.fmean(values[-window:]) if values else float("nan"),
            "eval": statistics.fmean(evals) if evals else float("nan"),
            "cross_step": crossing[0] if crossing else None, "cross_s": crossing[1] if crossing else None,
            "sps": sps[-1][2] if sps else float("nan"), "count": len(values),
            "last_step": max((s for r in metrics.values() for s, _, _ in r), default=0)}


def finished_runs(suite: str, job: Job) -> list[Path]:
    out = []
    for seed in job.seeds:
        marker = done_file(suite, job, seed)
        if marker.exists():
            out.append(RUNS / suite / marker.read_text().strip())
    return out


def mean_std(xs) -> str:
    xs = [x for x in xs if x == x]  # drop NaN
    if not xs:
        return "–"
    digits = 3 if max(abs(x) for x in xs) < 10 else 1  # accuracies and rewards in [0, 1] need more digits
    mean = statistics.fmean(xs)
    return f"{mean:.{digits}f} ± {statistics.pstdev(xs):.{digits}f}" if len(xs) > 1 else f"{mean:.{digits}f}"


def label(job: Job) -> str:
    return f"{job.label} · {job.variant}" if job.variant else job.label


def table_row(job: Job, summaries: list[dict]) -> str:
    reached = [s for s in summaries if s["cross_step"] is not None]
    if job.threshold is None:
        cross = secs = "–"
    else:
        cross = f"{statistics.fmean(s['cross_step'] for s in reached):,.0f} ({len(reached)}/{len(summaries)})" if reached else f"never (0/{len(summaries)})"
        secs = f"{statistics.fmean(s['cross_s'] for s in reached):.0f}" if reached else "–"
    sps = [s["sps"] for s in summaries if s["sps"] == s["sps"]]
    sps_text = f"{statistics.median(sps):,.0f}" if sps else "–"
    threshold = "–" if job.threshold is None else f"{job.threshold:g}"
    return (f"| `{job.script}` | {label(job)} | {len(summaries)} | {mean_std([s['final'] for s in summaries])} | "
            f"{mean_std([s['eval'] for s in summaries])} | {threshold} | {cross} | {secs} | {sps_text} |")


def start_end(metrics: dict, name: str) -> tuple[float, float]:
    """A metric's first value and its value at the end: the last one for evaluations (eval/*), the mean of the last
    ten for training metrics (one batch each)."""
    values = [v for _, _, v in metrics.get(name, [])]
    if not values:
        return float("nan"), float("nan")
    return values[0], values[-1] if name.startswith("eval/") else statistics.fmean(values[-10:])


def columns_table(jobs: list[Job], finished: dict) -> list[str]:
    """For jobs with `columns`: each column's start -> end, mean ± std over seeds."""
    lines = ["", "| script | task · variant | seeds | " + " | ".join(f"{c} start → end" for c in jobs[0].columns) + " |",
             "|---|---|---|" + "---|" * len(jobs[0].columns)]
    for job in jobs:
        pairs = [[start_end(m, c) for m in finished[job]] for c in job.columns]
        cells = [f"{mean_std([p[0] for p in ps])} → {mean_std([p[1] for p in ps])}" for ps in pairs]
        lines.append(f"| `{job.script}` | {label(job)} | {len(finished[job])} | " + " | ".join(cells) + " |")
    return lines


def mean_curve(runs: list[dict], metric: str, window: int, x_index: int):
    """(grid, values per seed on the grid) of a metric against steps (x_index 0) or seconds (1), each seed's
    curve lightly smoothed (a rolling mean over a tenth of the window) and cut to the shortest seed's range."""
    curves = []
    for metrics in runs:
        rows = metrics.get(metric, [])
        if not rows:
            continue
        x = np.array([r[x_index] for r in rows], dtype=float)
        v = np.array([r[2] for r in rows], dtype=float)
        k = max(1, min(window // 10, len(v)))
        curves.append((x[k - 1:], np.convolve(v, np.ones(k) / k, mode="valid")))
    if not curves:
        return None, None
    grid = np.linspace(0, min(c[0][-1] for c in curves), 200)
    return grid, np.stack([np.interp(grid, x, v) for x, v in curves])


def plot_curves(title: str, metric: str, threshold, series: list[tuple[str, Job, list[dict]]], path: Path) -> None:
    """One figure, two panels (against steps, against seconds): per series the mean over seeds and a min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    steps = "training steps" if all("toy" in job.script for _, job, _ in series) else "environment steps"
    for ax, x_index, xlabel in ((axes[0], 0, steps), (axes[1], 1, "wall-clock seconds")):
        for name, job, runs in series:
            grid, ys = mean_curve(runs, metric, job.window, x_index)
            if grid is None:
                continue
            seeds = f"{len(ys)} seed" + "s" * (len(ys) > 1)
            line, = ax.plot(grid, ys.mean(0), label=f"{name} ({seeds})" if name else f"mean of {seeds}")
            ax.fill_between(grid, ys.min(0), ys.max(0), alpha=0.15 if len(series) > 1 else 0.25, color=line.get_color(),
                            label=None if len(series) > 1 else "min-max")
        if threshold is not None:
            ax.axhline(threshold, color="gray", linestyle="--", linewidth=1)
        ax.set_xlabel(xlabel)
        if x_index == 0:  # 200 k, not 200000 (labels that overlap)
            ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter())
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_job(job: Job, runs: list[dict], path: Path) -> None:
    plot_curves(f"{job.script} on {job.label}", job.metric, job.threshold, [("", job, runs)], path)


def report(suite: str, out_dir: Path = RESULTS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# Suite `{suite}`", "",
             "| script | env / task | seeds | final (mean ± std) | eval | threshold | step reached (seeds) | seconds | SPS |",
             "|---|---|---|---|---|---|---|---|---|"]
    finished = {}
    for job in SUITES[suite]:
        runs = finished[job] = [read_metrics(d) for d in finished_runs(suite, job)]
        if not runs:
            lines.append(f"| `{job.script}` | {label(job)} | 0 | not run | | | | | |")
            continue
        lines.append(table_row(job, [summarize(m, job.metric, job.threshold, job.window) for m in runs]))
        if not job.groups:  # ablation settings are drawn together, one figure per group
            plot_job(job, runs, out_dir / f"{suite}_{job_name(job)}_{job.label.replace('/', '_')}.png")
    for columns in dict.fromkeys(job.columns for job in SUITES[suite] if job.columns and finished[job]):
        lines += columns_table([job for job in SUITES[suite] if job.columns == columns and finished[job]], finished)
    groups = dict.fromkeys(g for job in SUITES[suite] for g in job.groups)
    if groups:
        lines += ["", "Figures (mean over seeds, min-max band):", ""]
    for group in groups:
        members = [job for job in SUITES[suite] if group in job.groups]
        series = [(f"{Path(job.script).stem} {job.variant}".strip(), job, finished[job]) for job in members]
        path = out_dir / f"{suite}_{group}.png"
        plot_curves(ABLATIONS.get(group, group), members[0].metric, members[0].threshold, series, path)
        lines.append(f"- `{path.name}`: {ABLATIONS.get(group, group)}")
    path = out_dir / f"{suite}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=sorted(SUITES))
    opts = parser.parse_args(argv)
    print(report(opts.suite).read_text())


if __name__ == "__main__":
    main()
