"""benchmarks/sb3_curves.py without Stable-Baselines3: the --print-ours command parsed back into our Args (SETTINGS,
the run's env, length, seed, learning starts and buffer, and what SB3 is given), the run directory's name against
sac.py's, metrics.csv written from Monitor-style infos and read by report.py / plot.py, and the evaluation seeds against
sac.py's evaluate. One end-to-end run with SB3, skipped where it is not importable (the repository's environment)."""
import csv
import dataclasses
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import tyro

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import plot  # noqa: E402
import report  # noqa: E402
import sb3_curves  # noqa: E402
import speed  # noqa: E402

RUN_FIELDS = {"env_id", "total_timesteps", "buffer_size", "learning_starts", "seed", "exp_name", "runs_dir"}


def print_ours(*argv: str) -> list[str]:
    """The command `sb3_curves.py ... --print-ours` prints, run as a script where stable_baselines3 cannot be imported."""
    stub = Path("stub/stable_baselines3")
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('SB3 must not be needed for --print-ours')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["stub", os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sb3_curves.py"), *argv, "--print-ours"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert len(out.splitlines()) == 1, out
    return shlex.split(out)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_print_ours_is_our_script_at_the_settings_sb3_gets(algo):
    cmd = print_ours(algo, "--env-id", "Hopper-v5", "--total-timesteps", "200000", "--seed", "2")
    assert cmd[:2] == ["python", f"{algo}.py"]
    module = speed.MODULES[algo]
    args = tyro.cli(module.Args, args=cmd[2:])
    for key, value in speed.SETTINGS[algo].items():
        if key != "env_id":
            assert getattr(args, key) == value, key
    default_starts = {"sac": 5_000, "td3": 25_000}[algo]  # our scripts' defaults, which the SB3 side takes too
    assert (args.env_id, args.total_timesteps, args.seed, args.learning_starts, args.buffer_size) == \
        ("Hopper-v5", 200_000, 2, default_starts, 200_000)
    assert (args.exp_name, args.runs_dir) == (f"{algo}_sb3_settings", "benchmarks/runs/mujoco_sb3")
    module.check_args(args)  # a command our script accepts
    # what differs from our script's defaults: the run's own fields, and for sac.py what SB3 cannot do otherwise
    changed = {f.name for f in dataclasses.fields(args) if getattr(args, f.name) != getattr(module.Args(), f.name)}
    assert changed - RUN_FIELDS == ({"q_lr", "policy_frequency"} if algo == "sac" else set())
    # SB3 is given the same run: the same env, learning starts, buffer and batch
    opts = sb3_curves.parse([algo, "--env-id", "Hopper-v5", "--total-timesteps", "200000", "--seed", "2"])
    kw = speed.sb3_config(algo, opts.total_timesteps, opts.learning_starts).kwargs
    assert (kw["learning_starts"], kw["buffer_size"], kw["batch_size"], kw["gamma"], kw["tau"]) == \
        (args.learning_starts, args.buffer_size, args.batch_size, args.gamma, args.tau)
    assert kw["learning_rate"] == (args.q_lr if algo == "sac" else args.learning_rate)


def test_print_ours_spells_booleans_and_small_budgets_as_tyro_reads_them(monkeypatch):
    monkeypatch.setitem(speed.SETTINGS, "sac", {**speed.SETTINGS["sac"], "autotune": False})
    opts = sb3_curves.parse(["sac", "--env-id", "Pendulum-v1", "--total-timesteps", "3000", "--learning-starts", "300"])
    cmd = sb3_curves.ours_command(opts)
    assert "--no-autotune" in cmd
    args = tyro.cli(speed.sac.Args, args=cmd[2:])
    assert (args.autotune, args.env_id, args.total_timesteps, args.learning_starts) == (False, "Pendulum-v1", 3000, 300)


def test_learning_starts_below_a_batch_is_refused(capsys):
    with pytest.raises(SystemExit):
        sb3_curves.parse(["td3", "--total-timesteps", "3000", "--learning-starts", "100"])
    assert "at least the batch size, 256" in capsys.readouterr().err


def test_run_directory_is_named_as_ours_and_never_reused(tmp_path):
    base = tmp_path / sb3_curves.run_dir_name("ALE/Pong-v5", "sac", 3, 1_700_000_000)
    first, second = (sb3_curves.Recorder(base, {"total_timesteps": 10}) for _ in range(2))
    assert first.dir.name == "ALE_Pong-v5__sb3_sac__3__1700000000" and second.dir.name == first.dir.name + "_2"
    # sac.py names its run with exp_name sb3_sac the same way, up to the unix time
    ours = speed.sac.Run(speed.sac.Args(env_id="ALE/Pong-v5", exp_name="sb3_sac", seed=3, runs_dir=str(tmp_path)), None)
    ours.finish(None, [])
    assert Path(ours.dir).name.rsplit("__", 1)[0] == first.dir.name.rsplit("__", 1)[0]


def test_metrics_from_monitor_infos_are_read_by_report_and_plot(tmp_path):
    rec = sb3_curves.Recorder(tmp_path / "Hopper-v5__sb3_td3__1__1", {"exp_name": "sb3_td3", "env_id": "Hopper-v5",
                                                                      "seed": 1, "total_timesteps": 5_000})
    assert json.loads((rec.dir / "args.json").read_text())["exp_name"] == "sb3_td3"
    episodes = {13: (9.5, 13), 2_001: (-3.25, 1_000), 3_999: (np.float64(7.0), np.int64(20))}
    for step in range(1, 4_500):  # SB3's Monitor adds {"r", "l", "t"} to the info of an episode's last step
        infos = [{"episode": {"r": episodes[step][0], "l": episodes[step][1], "t": 0.1}} if step in episodes
                 else {"TimeLimit.truncated": False}]
        rec.on_step(step, infos)
    metrics = report.read_metrics(rec.dir)  # before closing: every row is flushed
    assert [(s, v) for s, _, v in metrics["charts/episodic_return"]] == [(13, 9.5), (2_001, -3.25), (3_999, 7.0)]
    assert [(s, v) for s, _, v in metrics["charts/episodic_length"]] == [(13, 13), (2_001, 1_000), (3_999, 20)]
    assert [s for s, _, _ in metrics["charts/SPS"]] == [2_000, 4_000]
    assert set(metrics) == {"charts/episodic_return", "charts/episodic_length", "charts/SPS"}
    rec.file.close()
    with open(rec.dir / "metrics.csv", newline="") as f:
        assert next(csv.reader(f)) == ["global_step", "wall_time", "name", "value"]
    x, y = plot.read_curve(rec.dir, "charts/episodic_return")
    assert x.tolist() == [13, 2_001, 3_999] and y.tolist() == [9.5, -3.25, 7.0]
    assert plot.main([str(rec.dir), "-o", str(tmp_path / "curve.png")]).stat().st_size > 0


def test_evaluation_episodes_use_our_scripts_seeds():
    act_dim, seed, episodes = 1, 3, 4
    actor = speed.sac.Actor(3, act_dim, 8, np.array([-2.0]), np.array([2.0]))
    with torch.no_grad():
        for p in actor.parameters():
            p.zero_()  # the mean action: bias + scale * tanh(0) = 0
    logged = []
    run = type("FakeRun", (), {"log": lambda self, step, scalars: logged.append(scalars)})()
    args = speed.sac.Args(env_id="Pendulum-v1", seed=seed, eval_episodes=episodes)
    ours = speed.sac.evaluate(actor, args, torch.device("cpu"), run, 0)
    theirs = sb3_curves.evaluate(lambda obs: np.zeros(act_dim), "Pendulum-v1", seed, episodes)
    assert len(set(ours)) == episodes  # the start states differ, so the seeds are what is compared
    assert theirs == pytest.approx(ours, rel=1e-5)


def test_a_tiny_sb3_run_leaves_a_run_directory_like_ours(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    opts = sb3_curves.parse(["td3", "--env-id", "Pendulum-v1", "--total-timesteps", "1200", "--learning-starts", "256",
                             "--runs-dir", str(tmp_path)])
    run_dir = sb3_curves.train(opts)
    assert capsys.readouterr().out.splitlines()[-1] == str(run_dir)
    assert run_dir.name.startswith("Pendulum-v1__sb3_td3__1__")
    args = json.loads((run_dir / "args.json").read_text())
    assert (args["implementation"], args["sb3_class"], args["learning_starts"]) == ("stable-baselines3", "TD3", 256)
    import stable_baselines3
    assert args["sb3_version"] == stable_baselines3.__version__
    metrics = report.read_metrics(run_dir)
    assert [s for s, _, _ in metrics["charts/episodic_return"]] == [200, 400, 600, 800, 1000, 1200]  # 200-step episodes
    assert [s for s, _, _ in metrics["charts/episodic_length"]] == [200, 400, 600, 800, 1000, 1200]
    assert all(v == 200 for _, _, v in metrics["charts/episodic_length"])
    assert [s for s, _, _ in metrics["charts/SPS"]] == [1200]  # fewer than 2,000 steps: the final row only
    evals = [v for s, _, v in metrics["eval/episodic_return"] if s == 1200]
    assert len(evals) == 10 and all(math.isfinite(v) and v <= 0 for v in evals)  # Pendulum's rewards are <= 0
