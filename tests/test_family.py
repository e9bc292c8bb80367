"""The contract every script keeps, proven once for all eight (CONVENTIONS §3, §6).

- bad input (benchmarks/bad_inputs.py's table): refused before anything is built, no run directory; from the shell,
  one line `X.py: error: ...` and exit status 2, no traceback;
- `--help` lists every flag;
- SIGINT and SIGTERM in each phase: model.pt saved (with --save-model) and loadable, metrics.csv whole, one line,
  exit status 130 / 143;
- a run whose weights turn non-finite stops with one line naming the quantity and the step, exit status 1, and
  writes no non-finite weights;
- a checkpoint knows its run: `--load-model PATH` alone evaluates on the run's environment (task) and seeds and
  scores what the run's own evaluation scored;
- W&B (a stand-in module, no network) receives every value metrics.csv has; TensorBoard's event files hold every one;
- the six RL scripts resume: the state a resumed run restores equals, tensor for tensor, the state the run had when it
  stopped (weights, optimizers, random number generators, counters, normalization statistics, replay buffer), and a
  run stopped by SIGTERM and resumed logs every update once, as an uninterrupted run does.

Phases are reached deterministically: a small launcher runs the script as `__main__` with a profile hook that sends
the signal (or poisons the weights) when a named function is called for the n-th time.
"""
import copy
import csv
import importlib
import math
import os
import random
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

import pytest
import torch
import tyro

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bad_inputs import CASES, SCRIPTS, TINY, command_line, make_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# Runs `script` as __main__; on the n-th call of the script's function `name` (`torch:name`: torch's), it sends `action` to its own process group
# (SIGINT, SIGTERM: what a terminal or a scheduler sends) or, with `action` = nan, fills the optimizer's parameters
# with NaN (what a diverging run does to itself).
LAUNCHER = """
import math, os, runpy, signal, sys
script, name, n, action = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
calls = 0
def hook(frame, event, arg):
    global calls
    if event == "call" and frame.f_code.co_name == name.split(":")[-1] and (":" in name or frame.f_code.co_filename == script):
        calls += 1
        if calls == n:
            sys.setprofile(None)
            if action == "nan":
                for group in frame.f_locals["self"].param_groups:
                    for p in group["params"]:
                        p.data.fill_(math.nan)
            else:
                os.killpg(0, getattr(signal, action))
sys.argv = [script, *sys.argv[5:]]
sys.setprofile(hook)
runpy.run_path(script, run_name="__main__")
"""


def launch(tmp_path, script, flags, name=None, n=1, action="SIGTERM"):
    hooked = [sys.executable, "-c", LAUNCHER, str(ROOT / script), name, str(n), action] if name else None
    cmd = hooked or [sys.executable, str(ROOT / script)]
    return subprocess.run([*cmd, *flags], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV,
                          start_new_session=True)  # its own process group: the signal reaches only the run


def run_dir_of(done) -> Path:
    return Path(next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("run directory: ")))


def metrics_rows(run_dir: Path) -> list[dict]:
    text = (run_dir / "metrics.csv").read_text()
    assert text.startswith("global_step,wall_time,name,value\n")
    assert text.endswith("\n"), "the last row of metrics.csv is cut"
    rows = list(csv.DictReader(text.splitlines()))
    assert all(len(r) == 4 and None not in r.values() and r["value"] != "" for r in rows)
    return rows


def tiny(script) -> list[str]:
    return [*TINY[script].split(), "--no-cuda"]


def module(script):
    return importlib.import_module(script.removesuffix(".py"))


RESUMABLE = ["ppo.py", "a2c.py", "ppo_continuous.py", "sac.py", "td3.py", "a2c_atari.py"]
UPDATE_SCALAR = "charts/SPS"  # logged at fixed steps by every script: one row per (logged) update


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("script,flags,fragment", CASES, ids=[f"{s}:{f}" for s, f, _ in CASES])
def test_bad_input_is_refused_before_anything_is_built(script, flags, fragment, tmp_path):
    mod, files = module(script), make_files(tmp_path, script)
    with pytest.raises(mod.UsageError) as refused:  # the script's own refusal, never tyro's parse error
        mod.main(tyro.cli(mod.Args, args=["--runs-dir", str(tmp_path / "runs"), *command_line(script, flags, files)]))
    assert fragment in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "runs").exists()


# from the shell, one case per script (a different kind each): the line, the status, no traceback
SHELL_CASES = [[case for case in CASES if case[0] == script][k] for k, script in enumerate(SCRIPTS)]


@pytest.mark.parametrize("script,flags,fragment", SHELL_CASES)
def test_from_the_shell_a_user_error_is_one_line_and_exit_status_2(script, flags, fragment, tmp_path):
    done = launch(tmp_path, script, command_line(script, flags, make_files(tmp_path, script)))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and fragment in lines[0], lines
    assert "Traceback" not in done.stdout + done.stderr and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_every_flag(script, capsys):
    mod = module(script)
    with pytest.raises(SystemExit) as done:
        tyro.cli(mod.Args, args=["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    missing = [f for f in mod.Args.__dataclass_fields__ if f"--{f.replace('_', '-')}" not in out]
    assert not missing, missing


# ---------------------------------------------------------------- signals
# (function called once per step of the phase, which call): the rollout or interaction, the update, the warm-up of the
# toys, the evaluation after training.
PHASES = {
    "ppo.py": {"rollout": ("log_episodes", 100), "update": ("ppo_loss", 3), "evaluation": ("evaluate", 1)},
    "a2c.py": {"rollout": ("log_episodes", 30), "update": ("a2c_loss", 3), "evaluation": ("evaluate", 1)},
    "ppo_continuous.py": {"rollout": ("log_episodes", 300), "update": ("ppo_loss", 3), "evaluation": ("evaluate", 1)},
    "sac.py": {"rollout": ("log_episodes", 250), "update": ("critic_loss", 120), "evaluation": ("evaluate", 1)},
    "td3.py": {"rollout": ("log_episodes", 250), "update": ("critic_loss", 120), "evaluation": ("evaluate", 1)},
    "a2c_atari.py": {"rollout": ("log_episodes", 30), "update": ("a2c_loss", 12), "evaluation": ("evaluate", 1)},
    "grpo_toy.py": {"warm-up": ("torch:zero_grad", 2), "update": ("grpo_loss", 1), "evaluation": ("evaluate", 2)},
    "dpo_toy.py": {"warm-up": ("torch:zero_grad", 2), "update": ("dpo_loss", 1), "evaluation": ("evaluate", 2)},
}
# By default one cell per script, together every phase and both signals; `-m slow` runs the whole matrix.
DEFAULT = {("ppo.py", "update", "SIGTERM"), ("a2c.py", "evaluation", "SIGINT"), ("ppo_continuous.py", "rollout", "SIGINT"),
           ("sac.py", "update", "SIGTERM"), ("td3.py", "evaluation", "SIGINT"), ("a2c_atari.py", "update", "SIGTERM"),
           ("grpo_toy.py", "warm-up", "SIGINT"), ("dpo_toy.py", "update", "SIGTERM")}
MATRIX = [pytest.param(s, phase, sig, marks=[] if (s, phase, sig) in DEFAULT else [pytest.mark.slow])
          for s in SCRIPTS for phase in PHASES[s] for sig in ("SIGINT", "SIGTERM")]


def interrupted(tmp_path, script, phase, sig, extra=()):
    name, n = PHASES[script][phase]
    return launch(tmp_path, script, [*tiny(script), "--save-model", *extra], name, n, sig)


@pytest.mark.parametrize("script,phase,sig", MATRIX)
def test_a_signal_in_any_phase_keeps_model_and_metrics(script, phase, sig, tmp_path):
    done = interrupted(tmp_path, script, phase, sig)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 128 + {"SIGINT": 2, "SIGTERM": 15}[sig], done.stderr[-3000:]
    assert "Traceback" not in done.stderr and lines[-1].startswith(f"{script}: stopped by {sig}"), lines
    run_dir = run_dir_of(done)
    metrics_rows(run_dir)  # whole rows, the last one ends its line (in the toys' warm-up: the header alone)
    assert not [p for p in Path(tmp_path).rglob("*") if p.name.endswith(".tmp") or p.name == "MUJOCO_LOG.TXT"]
    mod, quick = module(script), [] if "toy" in script else ["--eval-episodes", "1"]
    reloaded = mod.main(tyro.cli(mod.Args, args=["--load-model", str(run_dir / "model.pt"), *quick, "--no-cuda"]))
    assert reloaded["eval_returns"]  # the saved model loads into the script's network and evaluates
    if script in RESUMABLE:  # a checkpoint to resume from, written at the stop or, stopped in evaluation, after training
        assert (run_dir / "checkpoint.pt").exists(), lines[-1]
        assert (f"--resume {run_dir}" in lines[-1]) == (phase != "evaluation"), lines[-1]


# SIGKILL: in the update of a later iteration (step), after checkpoints at every boundary; the rows it logged after the
# last checkpoint must go
KILL_AT = {"ppo.py": ("ppo_loss", 20), "a2c.py": ("a2c_loss", 5), "ppo_continuous.py": ("ppo_loss", 6),
           "sac.py": ("critic_loss", 150), "td3.py": ("critic_loss", 150), "a2c_atari.py": ("a2c_loss", 20)}


# by default every script by SIGTERM, and SIGKILL for one script of each kind of loop (iterations, steps)
STOPPED = [pytest.param(s, sig, marks=[] if sig == "SIGTERM" or s in ("ppo.py", "sac.py") else [pytest.mark.slow])
           for s in RESUMABLE for sig in ("SIGTERM", "SIGKILL")]


@pytest.mark.parametrize("script,sig", STOPPED)
def test_a_run_stopped_and_resumed_logs_every_update_once(script, sig, trained, tmp_path):
    if sig == "SIGTERM":
        done = interrupted(tmp_path, script, "update", sig)
    else:
        done = launch(tmp_path, script, [*tiny(script), "--checkpoint-interval", "1e-9"], *KILL_AT[script], sig)
    assert done.returncode in (143, -9), done.stderr[-3000:]
    run_dir, mod = run_dir_of(done), module(script)
    stopped_at = torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"]
    out = mod.main(tyro.cli(mod.Args, args=["--resume", str(run_dir)]))
    assert not (run_dir / "checkpoint.pt").exists()  # finished: nothing left to resume
    logged = [(int(r["global_step"]), float(r["value"])) for r in metrics_rows(run_dir) if r["name"] == "charts/episodic_return"]
    assert out["episodic_returns"] == logged  # every return, those from before the stop too
    assert logged[0][0] <= stopped_at or script == "a2c_atari.py"  # (tiny Breakout ends no game before the stop)
    updates = [int(r["global_step"]) for r in metrics_rows(run_dir) if r["name"] == UPDATE_SCALAR]
    whole = [int(r["global_step"]) for r in metrics_rows(trained(script)[0]) if r["name"] == UPDATE_SCALAR]
    assert updates == whole  # the same updates as a run never stopped: none twice, none missing
    logged = [(r["global_step"], r["name"]) for r in metrics_rows(run_dir) if r["name"].startswith("losses/")]
    assert logged and len(logged) == len(set(logged))  # (several episodes may end at one step; an update may not)
    assert_tensorboard_holds_metrics(run_dir)  # its events after the checkpoint are purged too


def assert_tensorboard_holds_metrics(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    kept = sorted((int(r["global_step"]), r["name"], float(r["value"])) for r in metrics_rows(run_dir))
    shown = sorted((e.step, name, e.value) for name in events.Tags()["scalars"] for e in events.Scalars(name))
    assert [a[:2] for a in shown] == [b[:2] for b in kept]
    assert all(a[2] == pytest.approx(b[2], rel=1e-6) or math.isnan(b[2]) for a, b in zip(shown, kept))


# beyond networks, optimizers, the buffer and statistics: a2c.py logs the mean of several updates (those not logged yet
# go on), SAC and TD3 draw their first actions from the action space's generator
CARRIED = {"a2c.py": ("stats",), "sac.py": ("action_space",), "td3.py": ("action_space",)}


def snapshot(main_locals: dict, carried=()) -> dict:
    """Copies of what a run carries from one iteration to the next: every network's and optimizer's state, free
    parameters (SAC's log alpha), the step counter, the replay buffer, normalization statistics, the updates a2c.py has
    not logged yet, and every random number generator (global ones, the action space's, TD3's noise)."""
    out = {}
    for name, value in main_locals.items():
        if isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
            out[name] = copy.deepcopy(value.state_dict())
        elif isinstance(value, torch.Tensor) and value.is_leaf and value.requires_grad or name in ("global_step", *carried):
            out[name] = copy.deepcopy(value)
        elif isinstance(value, np.random.Generator):
            out[name] = copy.deepcopy(value.bit_generator.state)
        elif name in ("rb", "obs_rms", "return_rms"):
            out[name] = {k: copy.deepcopy(v) for k, v in vars(value).items() if not k.startswith("_")}
        elif name == "envs" and "action_space" in carried:
            out["action_space_rng"] = copy.deepcopy(value.action_space.np_random.bit_generator.state)
    out["rng"] = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    return out


def assert_same(a, b, where="state"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    else:
        assert a == b, where


def main_frame_locals(tb) -> dict:
    while tb is not None and tb.tb_frame.f_code.co_name != "main":
        tb = tb.tb_next
    return tb.tb_frame.f_locals


@pytest.mark.parametrize("script", RESUMABLE)
def test_a_resumed_run_restores_the_state_the_run_had_when_it_stopped(script, tmp_path, monkeypatch):
    mod, runs = module(script), str(tmp_path / "runs")
    real_log = mod.Run.log

    def stop_after_the_first_update(self, step, scalars):
        real_log(self, step, scalars)
        if UPDATE_SCALAR in scalars:
            mod.Stop.signum = signal.SIGTERM  # what the handler notes: the loop stops at the end of this iteration
    monkeypatch.setattr(mod.Run, "log", stop_after_the_first_update)
    with pytest.raises(KeyboardInterrupt) as stopped:
        mod.main(tyro.cli(mod.Args, args=[*tiny(script), "--runs-dir", runs]))
    stopped_locals = main_frame_locals(stopped.tb)
    at_stop, run_dir = snapshot(stopped_locals, CARRIED.get(script, ())), Path(stopped_locals["run"].dir)
    metrics_at_stop = (run_dir / "metrics.csv").read_text()
    monkeypatch.setattr(mod.Run, "log", real_log)

    real_restore, restored = mod.restore, {}

    def restore_and_look(*a, **k):
        counters = real_restore(*a, **k)
        restored.update(snapshot(sys._getframe(1).f_locals, CARRIED.get(script, ())), counters=counters)
        raise KeyboardInterrupt(signal.SIGTERM)
    monkeypatch.setattr(mod, "restore", restore_and_look)
    with pytest.raises(KeyboardInterrupt):
        mod.main(tyro.cli(mod.Args, args=["--resume", str(run_dir)]))
    (next_iteration, global_step) = restored.pop("counters")
    if "global_step" in at_stop:  # main assigns it from what restore returns
        restored["global_step"] = global_step
    if "iteration" in stopped_locals:  # on-policy: it stopped after an iteration and resumes with the next one
        assert next_iteration == stopped_locals["iteration"] + 1
    assert restored.keys() == at_stop.keys()
    assert any(isinstance(v, dict) and v.get("state") for v in at_stop.values())  # an optimizer that has taken steps
    assert_same(at_stop, restored)
    assert (run_dir / "metrics.csv").read_text() == metrics_at_stop  # nothing after the checkpoint was logged
    with pytest.raises(mod.UsageError, match="leave --gamma out"):  # the run's own arguments, or none
        mod.main(tyro.cli(mod.Args, args=["--resume", str(run_dir), "--gamma", "0.5"]))


@pytest.mark.parametrize("sig", ["SIGINT", pytest.param("SIGTERM", marks=pytest.mark.slow)])
def test_async_environments_stopped_by_the_terminal_keep_the_model(tmp_path, sig):
    """A signal to the whole process group (Ctrl-C in a terminal) reaches the subprocess workers too; the run still
    saves its model and says one line."""
    done = interrupted(tmp_path, "a2c_atari.py", "update", sig, extra=["--vector-env", "async"])
    assert done.returncode == 128 + {"SIGINT": 2, "SIGTERM": 15}[sig], done.stderr[-3000:]
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith(f"a2c_atari.py: stopped by {sig}")
    assert torch.load(run_dir_of(done) / "model.pt", weights_only=True)["script"] == "a2c_atari.py"


# ---------------------------------------------------------------- divergence
# the optimizer step (zero_grad call) whose weights turn NaN: after some metrics were logged, past the toys' warm-up
POISON_AT = {**{s: 3 for s in SCRIPTS}, "sac.py": 300, "td3.py": 300, "a2c_atari.py": 12, "grpo_toy.py": 5, "dpo_toy.py": 23}


@pytest.mark.parametrize("script", SCRIPTS)
def test_weights_that_turn_non_finite_stop_the_run_with_one_line_and_save_nothing_non_finite(script, tmp_path):
    done = launch(tmp_path, script, [*tiny(script), "--save-model"], "torch:zero_grad", POISON_AT[script], "nan")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in done.stderr, lines
    assert lines[0].startswith(f"{script}: error: the ") and " is not finite at step " in lines[0], lines
    run_dir = run_dir_of(done)
    assert metrics_rows(run_dir)
    # no non-finite weights on disk (SAC's NaN may sit in a critic or log alpha, which model.pt does not hold)
    saved = torch.load(run_dir / "model.pt", weights_only=True)["model"] if (run_dir / "model.pt").exists() else {}
    assert all(v.isfinite().all() for v in saved.values() if v.is_floating_point())


# ---------------------------------------------------------------- a trained run: W&B, checkpoints, --load-model alone
class StandInWandb(types.ModuleType):
    """Records what a script sends to W&B."""

    def __init__(self):
        super().__init__("wandb")
        self.calls, self.step_metric = [], None

    def init(self, **kwargs):
        return self

    def define_metric(self, name, step_metric=None, **kwargs):
        self.step_metric = step_metric

    def log(self, data, step=None, commit=None):
        assert step is None, "step= makes W&B merge the calls logged at one step"
        self.calls.append(dict(data))

    def finish(self):
        pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run per script, in-process, with --save-model and --track (to the stand-in); RL scripts evaluate 2
    episodes (the toys evaluate their prompts)."""
    runs = {}

    def train(script):
        if script not in runs:
            wandb, mp = StandInWandb(), pytest.MonkeyPatch()
            mp.setitem(sys.modules, "wandb", wandb)
            mod, runs_dir = module(script), tmp_path_factory.mktemp(script.removesuffix(".py")) / "runs"
            two_episodes = [] if "toy" in script else ["--eval-episodes", "2"]
            try:
                out = mod.main(tyro.cli(mod.Args, args=[*tiny(script), *two_episodes, "--save-model", "--track",
                                                        "--runs-dir", str(runs_dir)]))
            finally:
                mp.undo()
            runs[script] = (Path(out["run_dir"]), wandb)
        return runs[script]
    return train


@pytest.mark.parametrize("script", SCRIPTS)
def test_wandb_receives_every_value_metrics_csv_has(script, trained):
    run_dir, wandb = trained(script)
    sent = sorted((int(c["global_step"]), name, float(v)) for c in wandb.calls for name, v in c.items() if name != "global_step")
    kept = sorted((int(r["global_step"]), r["name"], float(r["value"])) for r in metrics_rows(run_dir))
    assert wandb.step_metric == "global_step"
    assert len(sent) == len(kept) and all(a[:2] == b[:2] and (a[2] == b[2] or math.isnan(a[2]) and math.isnan(b[2]))
                                          for a, b in zip(sent, kept))


@pytest.mark.parametrize("script", SCRIPTS)
def test_tensorboard_events_hold_every_value_metrics_csv_has(script, trained):
    assert_tensorboard_holds_metrics(trained(script)[0])


@pytest.mark.parametrize("script", SCRIPTS)
def test_load_model_alone_evaluates_the_run_as_its_own_evaluation_did(script, trained):
    run_dir, _ = trained(script)
    mod = module(script)  # the command line `X.py --load-model PATH`, parsed by tyro as from the shell, in-process
    loaded = mod.main(tyro.cli(mod.Args, args=["--load-model", str(run_dir / "model.pt"), "--no-cuda"]))
    own, again = ([r for r in metrics_rows(Path(d)) if r["name"].startswith("eval/")] for d in (run_dir, loaded["run_dir"]))
    last = [(r["name"], float(r["value"])) for r in own if r["global_step"] == own[-1]["global_step"]]  # the final one
    again = [(r["name"], float(r["value"])) for r in again]
    # RL scripts evaluate 10 episodes by default where the run evaluated 2: those 2 episodes come first. Continuous
    # actions round differently in a batch of 10 observations than in one of 2 (another matmul kernel): rel 1e-6.
    n = min(len(last), len(again))
    assert n and [name for name, _ in last[:n]] == [name for name, _ in again[:n]], (last, again)
    assert [value for _, value in again[:n]] == pytest.approx([value for _, value in last[:n]], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("script", SCRIPTS)
def test_load_model_refuses_another_environment_given_explicitly(script, trained):
    run_dir, _ = trained(script)
    mod = module(script)
    other = ["--task", "sort"] if "toy" in script else \
        ["--env-id", "Acrobot-v1" if script in ("ppo.py", "a2c.py") else "ALE/Pong-v5" if "atari" in script else "Hopper-v5"]
    with pytest.raises(mod.UsageError, match="leave --(env-id|task) out"):
        mod.main(tyro.cli(mod.Args, args=["--load-model", str(run_dir / "model.pt"), *other, "--no-cuda"]))


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_truncated_copy_of_a_real_checkpoint_is_one_sentence(script, trained, tmp_path):
    run_dir, _ = trained(script)
    data = (run_dir / "model.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[:len(data) // 2])
    mod = module(script)
    with pytest.raises(mod.UsageError, match="cannot be read"):
        mod.main(tyro.cli(mod.Args, args=["--load-model", str(tmp_path / "half.pt"), "--no-cuda"]))
