"""benchmarks/plot.py on fake run directories: reading partial metrics.csv, smoothing and seed grouping against
hand computations, the PNG written, and the errors."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import plot  # noqa: E402

ARGS = {"exp_name": "ppo", "seed": 1, "env_id": "CartPole-v1", "learning_rate": 0.001, "total_timesteps": 1000,
        "runs_dir": "runs", "cuda": True, "track": False, "wandb_project_name": "p", "torch_threads": 1}
RET = "charts/episodic_return"


def make_run(root: Path, name: str, rows, tail: str = "", **args) -> Path:
    """A run directory: args.json (ARGS updated by args) and metrics.csv of rows (step, time, name, value) + tail."""
    d = root / name
    d.mkdir(parents=True)
    (d / "args.json").write_text(json.dumps({**ARGS, **args}))
    lines = "".join(f"{s},{t},{n},{v}\n" for s, t, n, v in rows)
    (d / "metrics.csv").write_text("global_step,wall_time,name,value\n" + lines + tail)
    return d


def returns(values, step=10, dt=0.5):
    """Episodic returns at steps step, 2*step, ... and times dt, 2*dt, ..., with an SPS row between them."""
    rows = []
    for i, v in enumerate(values, 1):
        rows += [(i * step, i * dt, RET, v), (i * step, i * dt, "charts/SPS", 999.0)]
    return rows


def test_read_curve_skips_a_cut_last_line(tmp_path):
    run = make_run(tmp_path, "a", returns([1.0, 2.0, 3.0]), tail="40,2.0,charts/episodic_return,12")
    x, y = plot.read_curve(run, RET)
    assert x.tolist() == [10, 20, 30] and y.tolist() == [1.0, 2.0, 3.0]
    x, _ = plot.read_curve(run, RET, "time")
    assert x.tolist() == [0.5, 1.0, 1.5]
    cut_inside = make_run(tmp_path, "b", returns([1.0, 2.0]), tail="30,1.5,charts/epis\n")  # does not parse
    assert plot.read_curve(cut_inside, RET)[1].tolist() == [1.0, 2.0]


def test_smooth_against_a_hand_computed_moving_average():
    y = np.array([1.0, 2.0, 6.0, 3.0, 8.0])
    assert plot.smooth(y, 3) == pytest.approx([1.0, 1.5, 3.0, 11 / 3, 17 / 3])
    assert plot.smooth(y, 1) == pytest.approx(y)
    assert plot.smooth(y, 10) == pytest.approx([1.0, 1.5, 3.0, 3.0, 4.0])


def test_seeds_form_one_group_and_configurations_two():
    runs = [(Path(f"r{i}"), {**ARGS, "seed": i, "runs_dir": f"d{i}", "cuda": i % 2 == 0, "wandb_entity": i})
            for i in (1, 2, 3)]
    assert [len(g) for g in plot.group_runs(runs)] == [3]
    other_lr = [(Path(f"s{i}"), {**ARGS, "seed": i, "learning_rate": 0.01}) for i in (1, 2, 3)]
    other_script = [(Path("t1"), {**ARGS, "exp_name": "a2c"})]
    groups = plot.group_runs(runs[:2] + other_lr[:1] + runs[2:] + other_lr[1:] + other_script)
    assert [[d.name for d, _ in g] for g in groups] == [["r1", "r2", "r3"], ["s1", "s2", "s3"], ["t1"]]
    assert plot.group_label(groups[0], [groups[2][0][1]]) == "ppo on CartPole-v1 (3 seeds)"
    assert plot.group_label(groups[1], [groups[0][0][1]]) == "ppo on CartPole-v1, learning_rate=0.01 (3 seeds)"
    assert plot.group_label(runs[:2] + [runs[0]], []) == "ppo on CartPole-v1 (3 runs)"  # a seed given twice


def test_mean_and_band_over_the_common_range_of_linear_runs():
    # three lines y = a x + b, sampled on different x ranges; linear interpolation of them is exact
    lines = [(np.arange(0, 101, 10.0), 1.0, 0.0), (np.arange(12, 90, 7.0), 2.0, -5.0),
             (np.arange(5, 121, 5.0), -1.0, 30.0)]
    grid, mean, low, high = plot.aggregate([(x, a * x + b) for x, a, b in lines])
    assert grid[0] == 12 and grid[-1] == 89  # the second run's points: 12, 19, ..., 89
    assert mean == pytest.approx((1 + 2 - 1) / 3 * grid + (0 - 5 + 30) / 3)
    assert low == pytest.approx(np.minimum.reduce([grid, 2 * grid - 5, 30 - grid]))
    assert high == pytest.approx(np.maximum.reduce([grid, 2 * grid - 5, 30 - grid]))
    assert plot.aggregate([(np.array([0.0, 1.0]), np.zeros(2)), (np.array([2.0, 3.0]), np.zeros(2))]) is None


def test_a_directory_of_runs_expands_to_its_runs_sorted(tmp_path):
    for name in ("run_c", "run_a", "run_d", "run_b"):
        make_run(tmp_path / "runs", name, [])
    (tmp_path / "runs" / "notes").mkdir()
    found = plot.find_runs([str(tmp_path / "runs"), str(tmp_path / "runs" / "run_a")])  # run_a once
    assert [d.name for d, _ in found] == ["run_a", "run_b", "run_c", "run_d"]
    assert found[0][1] == ARGS


def test_main_writes_a_png_of_a_directory_of_partial_runs(tmp_path, capsys):
    for seed in (1, 2, 3):
        make_run(tmp_path / "runs", f"CartPole-v1__ppo__{seed}", returns([seed, 2.0 * seed, 3.0]), seed=seed,
                 tail=f"40,2.0,{RET},9")
    make_run(tmp_path / "runs", "CartPole-v1__ppo__4", returns([]), seed=4)  # started, no episode yet
    (tmp_path / "runs" / "notes").mkdir()
    out = plot.main([str(tmp_path / "runs"), "-o", str(tmp_path / "curve.png")])
    assert out == tmp_path / "curve.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert captured.err.strip() == f"plot.py: {tmp_path / 'runs' / 'CartPole-v1__ppo__4'}: no {RET} yet, skipped"


def test_main_smooths_each_run_alone_against_time(tmp_path, monkeypatch):
    a = make_run(tmp_path, "a", returns([2.0, 4.0, 9.0], dt=1.0))
    b = make_run(tmp_path, "b", returns([10.0, 0.0, 5.0, 1.0], dt=0.25), seed=2)
    seen, original = [], plot.aggregate
    monkeypatch.setattr(plot, "aggregate", lambda curves: seen.append(curves) or original(curves))
    plot.main([str(a), str(b), "--x", "time", "--smooth", "2", "--metric", RET])
    [(xa, ya), (xb, yb)] = seen[0]
    assert xa.tolist() == [1.0, 2.0, 3.0] and xb.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert ya == pytest.approx([2.0, 3.0, 6.5]) and yb == pytest.approx([10.0, 5.0, 2.5, 3.0])



@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "is not a run directory"),
    (lambda root: (root / "empty").mkdir() or root / "empty", "is not a run directory"),
    (lambda root: make_run(root, "r", returns([1.0])) / "metrics.csv", "is not a run directory"),
    (lambda root: make_run(root, "r", [(10, 0.5, "charts/SPS", 1.0)]), f"no run has any {RET} point"),
    (lambda root: make_run(root, "r", [], tail=f"10,0.5,{RET}\n20,1.0,{RET},1\n"), "line 2: cannot read"),
])
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, make, message):
    with pytest.raises(SystemExit) as e:
        plot.main([str(make(tmp_path)), "-o", str(tmp_path / "x.png")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("plot.py: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()
