"""The benchmark tools: the summary statistics against hand computations, and the runner and report end to
end on a one-seed suite small enough for the default test run."""
import csv
import sys
from pathlib import Path

import pytest

from helpers import read_args

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import report  # noqa: E402
import run as runner  # noqa: E402


def write_metrics(run_dir: Path, rows) -> None:
    run_dir.mkdir(parents=True)
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["global_step", "wall_time", "name", "value"])
        w.writerows(rows)


def test_summary_by_hand(tmp_path):
    episodes = [(10 * (i + 1), 0.5 * (i + 1), "charts/episodic_return", float(i)) for i in range(10)]  # 0..9
    write_metrics(tmp_path / "r", episodes + [(100, 5.0, "charts/SPS", 1234.0), (100, 6.0, "eval/episodic_return", 4.0),
                                              (100, 6.0, "eval/episodic_return", 6.0)])
    s = report.summarize(report.read_metrics(tmp_path / "r"), threshold=7.0, window=3)
    assert s["final"] == pytest.approx((7 + 8 + 9) / 3)
    assert s["eval"] == pytest.approx(5.0)
    # rolling means of 3: ..., (5+6+7)/3 = 6, (6+7+8)/3 = 7 -> reached with the episode of value 8
    assert (s["cross_step"], s["cross_s"]) == (90, 4.5)
    assert s["sps"] == 1234.0 and s["count"] == 10 and s["last_step"] == 100
    assert report.summarize(report.read_metrics(tmp_path / "r"), threshold=100.0, window=3)["cross_step"] is None


def test_columns_show_start_and_end_over_seeds(tmp_path):
    """An evaluation's end is its last value; a training metric's end the mean of its last ten values."""
    runs = []
    for seed, (first, last) in enumerate([(0.1, 0.9), (0.3, 0.7)]):
        train = [(s, float(s), "train/y", float(s + 10 * seed)) for s in range(1, 13)]  # seed 0: 1..12, seed 1: 11..22
        write_metrics(tmp_path / str(seed), [(0, 0.0, "eval/x", first), (6, 1.0, "eval/x", 0.5), (12, 2.0, "eval/x", last),
                                             *train])
        runs.append(report.read_metrics(tmp_path / str(seed)))
    assert report.start_end(runs[0], "train/y") == (1.0, 7.5) and report.start_end(runs[0], "eval/x") == (0.1, 0.9)
    job = runner.Job("grpo_toy.py", "sum", variant="v", columns=("eval/x", "train/y"))
    lines = report.columns_table([job], {job: runs})
    assert lines[1] == "| script | task · variant | seeds | eval/x start → end | train/y start → end |"
    assert lines[3] == "| `grpo_toy.py` | sum · v | 2 | 0.200 ± 0.100 → 0.800 ± 0.100 | 6.0 ± 5.0 → 12.5 ± 5.0 |"


def test_suite_runs_skips_finished_seeds_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(report, "RUNS", tmp_path / "runs")
    job = runner.Job("ppo.py", "CartPole-v1", ("--env-id", "CartPole-v1", "--total-timesteps", "1024", "--num-envs", "2",
                                               "--num-steps", "128", "--eval-episodes", "2", "--no-cuda"),
                     seeds=(1,), threshold=15.0, window=5)
    monkeypatch.setitem(runner.SUITES, "tiny", [job])
    assert runner.main(["tiny"]) == 0
    marker = runner.done_file("tiny", job, 1)
    run_dir = tmp_path / "runs" / "tiny" / marker.read_text().strip()
    assert (run_dir / "metrics.csv").is_file() and run_dir.name.startswith("CartPole-v1__tiny_ppo__1__")
    assert runner.run_one("tiny", job, 1).startswith("skip")
    md = report.report("tiny", out_dir=tmp_path / "results").read_text()
    summary = report.summarize(report.read_metrics(run_dir), threshold=15.0, window=5)
    assert f"| `ppo.py` | CartPole-v1 | 1 | {summary['final']:.1f} | {summary['eval']:.1f} | 15 |" in md
    assert (tmp_path / "results" / "tiny_ppo_CartPole-v1.png").stat().st_size > 1000


def test_a_failing_run_is_reported_and_not_marked_done(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "RUNS", tmp_path / "runs")
    job = runner.Job("ppo.py", "Pendulum-v1", ("--env-id", "Pendulum-v1"), seeds=(1,))  # ppo.py refuses Box actions
    (tmp_path / "runs" / "bad").mkdir(parents=True)
    status = runner.run_one("bad", job, 1)
    assert status.startswith("FAIL") and not runner.done_file("bad", job, 1).exists()
    assert "needs discrete actions" in (tmp_path / "runs" / "bad" / "ppo__Pendulum-v1__1.log").read_text()


def test_ablation_variants_get_their_own_runs_and_one_figure_per_group(tmp_path, monkeypatch):
    """Two settings of one script on one env: distinct run names and .done files, a shared group figure, and
    each setting's row labelled with its variant."""
    monkeypatch.setattr(runner, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(report, "RUNS", tmp_path / "runs")
    base = ("--env-id", "CartPole-v1", "--total-timesteps", "512", "--num-envs", "2", "--num-steps", "64",
            "--eval-episodes", "0", "--no-cuda")
    jobs = [runner.Job("ppo.py", "CartPole-v1", base, seeds=(1,), window=5, variant="default", groups=("g",)),
            runner.Job("ppo.py", "CartPole-v1", (*base, "--no-norm-adv"), seeds=(1,), window=5, variant="no-norm-adv",
                       groups=("g",))]
    monkeypatch.setitem(runner.SUITES, "abl", jobs)
    monkeypatch.setitem(runner.ABLATIONS, "g", "a tiny ablation")
    assert runner.main(["abl"]) == 0
    names = [runner.done_file("abl", job, 1).read_text().strip() for job in jobs]
    assert names[0].startswith("CartPole-v1__abl_ppo_default__1__")
    assert names[1].startswith("CartPole-v1__abl_ppo_no-norm-adv__1__")
    args = [read_args(tmp_path / "runs" / "abl" / n) for n in names]
    assert (args[0]["norm_adv"], args[1]["norm_adv"]) == (True, False)
    md = report.report("abl", out_dir=tmp_path / "results").read_text()
    assert "| `ppo.py` | CartPole-v1 · default | 1 |" in md and "| `ppo.py` | CartPole-v1 · no-norm-adv | 1 |" in md
    assert "- `abl_g.png`: a tiny ablation" in md
    assert sorted(p.name for p in (tmp_path / "results").glob("*.png")) == ["abl_g.png"]


def test_a_stopped_run_is_resumed_in_its_own_directory(tmp_path, monkeypatch):
    import signal

    import ppo
    import tyro
    monkeypatch.setattr(runner, "RUNS", tmp_path / "runs")
    job = runner.Job("ppo.py", "CartPole-v1", ("--env-id", "CartPole-v1", "--total-timesteps", "1024", "--num-envs", "2",
                                               "--num-steps", "128", "--eval-episodes", "0", "--no-cuda"), seeds=(1,))
    real_log = ppo.Run.log

    def stop_after_the_first_update(self, step, scalars):  # as the signal handler would, in the middle of the run
        real_log(self, step, scalars)
        ppo.Stop.signum = signal.SIGTERM if "charts/SPS" in scalars else ppo.Stop.signum
    monkeypatch.setattr(ppo.Run, "log", stop_after_the_first_update)
    with pytest.raises(KeyboardInterrupt):
        ppo.main(tyro.cli(ppo.Args, args=runner.command("res", job, 1)[2:]))
    (stopped,) = (tmp_path / "runs" / "res").iterdir()
    assert runner.stopped_run("res", job, 1) == stopped
    status = runner.run_one("res", job, 1)
    assert status.startswith("resumed") and runner.done_file("res", job, 1).read_text().strip() == stopped.name
    assert not (stopped / "checkpoint.pt").exists() and len(list((tmp_path / "runs" / "res").iterdir())) == 3  # + .done, .log
    steps = [int(r["global_step"]) for r in csv.DictReader(open(stopped / "metrics.csv")) if r["name"] == "charts/SPS"]
    assert steps == [256, 512, 768, 1024]
