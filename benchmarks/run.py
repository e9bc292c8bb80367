"""Run a benchmark suite: scripts x environments x seeds, each run a subprocess, several at a time.

    python benchmarks/run.py quick --jobs 2          # every script on a small budget, 3 seeds
    python benchmarks/run.py classic --jobs 2        # a2c / ppo on CartPole, Acrobot (and a2c on Pendulum), 5 seeds
    python benchmarks/run.py mujoco                  # ppo_continuous at 1M steps, sac / td3 at 200k, on MuJoCo (hours)
    python benchmarks/run.py atari                   # a2c_atari on Pong and Breakout at 10M frames, 1 seed
    python benchmarks/run.py toys                    # grpo_toy, dpo_toy, 3 seeds
    python benchmarks/run.py lm_variants             # grpo_toy / dpo_toy variants (critic, GSPO, KTO, ORPO...), 3 seeds
    python benchmarks/run.py ablations --jobs 2      # a2c / ppo hyperparameter ablations on CartPole, 3 seeds
    python benchmarks/run.py a2c_pendulum --jobs 2   # a2c.py --norm-reward on Pendulum-v1, 1M steps, 5 seeds
    python benchmarks/run.py quick --list            # print the commands without running them

Every run writes its usual run directory under benchmarks/runs/SUITE/ (not committed). A run that exits
cleanly leaves a `.done` file naming its run directory; a run whose `.done` exists is skipped, and a run
that was stopped (Ctrl-C, SIGTERM, a killed session) continues from its checkpoint.pt with `--resume`, so an
interrupted suite goes on where it stopped. `python benchmarks/report.py SUITE` turns the finished runs
into tables and plots.
"""
import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "runs"


@dataclass(frozen=True)
class Job:
    script: str                 # e.g. "ppo.py"
    label: str                  # environment id or toy task, as it appears in run directory names
    args: tuple = ()            # arguments besides --seed, --exp-name, --runs-dir
    seeds: tuple = (1, 2, 3)
    metric: str = "charts/episodic_return"  # the learning curve's scalar
    threshold: float | None = None          # for "steps / seconds to threshold" in the report
    window: int = field(default=100)        # episodes averaged for the final return and the threshold
    variant: str = ""                       # names one setting of an ablation (part of the run's name)
    groups: tuple = ()                      # the ablation plots this job appears in (see ABLATIONS)
    procs: int = 1                          # processes (torchrun --nproc_per_node) for a2c_atari.py
    columns: tuple = ()                     # metrics the report also shows at the run's start and end


def rl(script, env_id, steps, threshold=None, seeds=(1, 2, 3), window=100, *extra):
    return Job(script, env_id, ("--env-id", env_id, "--total-timesteps", str(steps), *extra), tuple(seeds),
               threshold=threshold, window=window)


def ablation(script: str, variant: str, groups: tuple, *extra: str) -> Job:
    """One setting of an ablation on CartPole-v1: 500k steps, 3 seeds, threshold 475 (as in `classic`)."""
    return replace(rl(script, "CartPole-v1", 500_000, 475, (1, 2, 3), 100, *extra), variant=variant, groups=groups)


A2C_GROUPS = ("a2c_gae_lambda", "a2c_num_steps", "a2c_ent_coef", "a2c_learning_rate", "a2c_vs_ppo")
PPO_GROUPS = ("ppo_norm_adv", "ppo_clip_vloss", "ppo_bootstrap_truncation", "a2c_vs_ppo")
# ablation plot -> its title; the report draws every job of the group on one figure
ABLATIONS = {
    "a2c_gae_lambda": "a2c.py on CartPole-v1: GAE lambda (default 0.95; 1 = n-step returns, 0 = one-step TD)",
    "a2c_num_steps": "a2c.py on CartPole-v1: rollout length n (default 5), 8 envs",
    "a2c_ent_coef": "a2c.py on CartPole-v1: entropy coefficient (default 0.01)",
    "a2c_learning_rate": "a2c.py on CartPole-v1: RMSprop learning rate (default 7e-4)",
    "ppo_norm_adv": "ppo.py on CartPole-v1: advantage normalization (default on)",
    "ppo_clip_vloss": "ppo.py on CartPole-v1: value-loss clipping (default on)",
    "ppo_bootstrap_truncation": "ppo.py on CartPole-v1: bootstrapping time-limit truncations (default on)",
    "a2c_vs_ppo": "a2c.py vs ppo.py on CartPole-v1, defaults: sample efficiency",
    "grpo_variants": "grpo_toy.py on sum: group baseline vs critic, token vs sequence ratio (GSPO), TRL's defaults",
    "dpo_variants": "dpo_toy.py on sort: sigmoid (DPO), IPO summed / averaged, KTO, ORPO",
}

FIVE = (1, 2, 3, 4, 5)
GRPO_VARIANTS = [("grpo", ()), ("critic", ("--advantage", "critic")), ("grpo-mu2", ("--num-iterations", "2")),
                 ("gspo-mu2", ("--importance-sampling-level", "sequence", "--num-iterations", "2")),
                 ("gspo-mu2-clip4e-4", ("--importance-sampling-level", "sequence", "--num-iterations", "2", "--epsilon", "3e-4",
                                        "--epsilon-high", "4e-4")),
                 ("trl-defaults", ("--loss-type", "dapo", "--beta", "0")), ("dapo", ("--loss-type", "dapo")),
                 ("beta0", ("--beta", "0")), ("kl-corrected", ("--use-bias-correction-kl",))]
DPO_VARIANTS = [("sigmoid", ()), ("ipo", ("--loss-type", "ipo")), ("ipo-averaged", ("--loss-type", "ipo", "--average-logprobs")),
                ("kto", ("--loss-type", "kto")), ("orpo", ("--loss-type", "orpo"))]
GRPO_COLUMNS = ("eval/greedy_accuracy", "eval/sampled_accuracy", "charts/reward")
DPO_COLUMNS = ("eval/greedy_accuracy", "eval/sampled_accuracy", "rewards/accuracies", "rewards/margins", "logps/chosen")
SUITES = {
    # about 30 minutes on a 2-core machine, all of it
    "quick": [
        rl("ppo.py", "CartPole-v1", 100_000, 475),
        rl("a2c.py", "CartPole-v1", 100_000, 475),
        rl("ppo_continuous.py", "Pendulum-v1", 100_000, -400, (1, 2, 3), 20,
           "--num-envs", "4", "--num-steps", "1024", "--gamma", "0.9", "--learning-rate", "1e-3"),
        rl("sac.py", "Pendulum-v1", 10_000, -200, (1, 2, 3), 10, "--learning-starts", "1000"),
        rl("td3.py", "Pendulum-v1", 10_000, -200, (1, 2, 3), 10, "--learning-starts", "1000"),
        rl("ppo_continuous.py", "Hopper-v5", 50_000, None, (1, 2, 3), 20),
        Job("grpo_toy.py", "sum", (), metric="eval/greedy_accuracy", threshold=0.9, window=1),
        Job("dpo_toy.py", "sort", (), metric="eval/sampled_accuracy", window=1),
    ],
    "classic": [
        rl("ppo.py", "CartPole-v1", 500_000, 475, FIVE),
        rl("a2c.py", "CartPole-v1", 500_000, 475, FIVE),
        rl("ppo.py", "Acrobot-v1", 500_000, -100, FIVE),
        rl("a2c.py", "Acrobot-v1", 500_000, -100, FIVE),
        rl("a2c.py", "Pendulum-v1", 1_000_000, -200, FIVE),
    ],
    # the standard budgets: ppo_continuous at 1M steps, 3 seeds; sac / td3 at 200k steps, 2 seeds (hours on a CPU)
    "mujoco": [rl("ppo_continuous.py", e, 1_000_000) for e in ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5")]
    + [rl(s, e, 200_000, None, (1, 2)) for e in ("Hopper-v5", "HalfCheetah-v5") for s in ("sac.py", "td3.py")],
    "atari": [replace(rl("a2c_atari.py", e, 2_500_000, None, (1,), 100), procs=2)  # 10M frames = 2.5M agent steps
              for e in ("PongNoFrameskip-v4", "BreakoutNoFrameskip-v4")],
    # a2c.py's continuous exercise with reward scaling (RL Zoo-like settings): the mean of the last 100 episodes >= -250
    "a2c_pendulum": [rl("a2c.py", "Pendulum-v1", 1_000_000, -250, FIVE, 100, "--gamma", "0.9", "--gae-lambda", "0.9",
                        "--num-steps", "8", "--ent-coef", "0", "--anneal-lr", "--norm-reward")],
    "ablations": [
        ablation("a2c.py", "default", A2C_GROUPS),
        *(ablation("a2c.py", f"gae-lambda={v}", ("a2c_gae_lambda",), "--gae-lambda", v) for v in ("0", "0.5", "1")),
        *(ablation("a2c.py", f"num-steps={v}", ("a2c_num_steps",), "--num-steps", v) for v in ("1", "20")),
        *(ablation("a2c.py", f"ent-coef={v}", ("a2c_ent_coef",), "--ent-coef", v) for v in ("0", "0.1")),
        *(ablation("a2c.py", f"lr={v}", ("a2c_learning_rate",), "--learning-rate", v)
          for v in ("1e-2", "1e-3", "1e-4", "1e-5")),
        ablation("ppo.py", "default", PPO_GROUPS),
        ablation("ppo.py", "no-norm-adv", ("ppo_norm_adv",), "--no-norm-adv"),
        ablation("ppo.py", "no-clip-vloss", ("ppo_clip_vloss",), "--no-clip-vloss"),
        ablation("ppo.py", "no-bootstrap-truncation", ("ppo_bootstrap_truncation",), "--no-bootstrap-truncation"),
    ],
    "toys": [Job("grpo_toy.py", "sum", (), metric="eval/greedy_accuracy", threshold=0.9, window=1),
             Job("dpo_toy.py", "sort", (), metric="eval/sampled_accuracy", window=1)],
    # the language-model variants on the toys' default tasks, the same number of sampled completions per step
    "lm_variants": [*(Job("grpo_toy.py", "sum", a, metric="eval/greedy_accuracy", threshold=0.9, window=1, variant=v,
                          groups=("grpo_variants",), columns=GRPO_COLUMNS) for v, a in GRPO_VARIANTS),
                    *(Job("dpo_toy.py", "sort", a, metric="eval/sampled_accuracy", window=1, variant=v,
                          groups=("dpo_variants",), columns=DPO_COLUMNS) for v, a in DPO_VARIANTS)],
}


def exp_name(suite: str, job: Job) -> str:
    return f"{suite}_{job_name(job)}"


def job_name(job: Job) -> str:
    """The script's stem, and the variant when there is one: 'ppo', 'a2c_gae-lambda=0'."""
    return Path(job.script).stem + (f"_{job.variant}" if job.variant else "")


def done_file(suite: str, job: Job, seed: int) -> Path:
    return RUNS / suite / f"{job_name(job)}__{job.label.replace('/', '_')}__{seed}.done"


def command(suite: str, job: Job, seed: int, resume: Path | None = None) -> list[str]:
    python = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={job.procs}"] \
        if job.procs > 1 else [sys.executable]
    if resume is not None:  # the run's own arguments come from its checkpoint
        return [*python, str(ROOT / job.script), "--resume", str(resume)]
    return [*python, str(ROOT / job.script), *job.args, "--seed", str(seed),
            "--exp-name", exp_name(suite, job), "--runs-dir", str(RUNS / suite)]


def run_prefix(suite: str, job: Job, seed: int) -> str:
    """How the names of this job's run directories for this seed begin (the script adds the unix time)."""
    return f"{job.label.replace('/', '_')}__{exp_name(suite, job)}__{seed}__"


def stopped_run(suite: str, job: Job, seed: int) -> Path | None:
    """The latest run directory of this job and seed that holds a checkpoint.pt (a run stopped before its end)."""
    runs = sorted((p.parent for p in (RUNS / suite).glob(run_prefix(suite, job, seed) + "*/checkpoint.pt")),
                  key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None


def run_one(suite: str, job: Job, seed: int) -> str:
    """Run one seed unless it already finished; returns a one-line status."""
    marker = done_file(suite, job, seed)
    if marker.exists():
        return f"skip  {marker.stem} (done: {marker.read_text().strip()})"
    prefix = run_prefix(suite, job, seed)
    before, resume = {p.name for p in (RUNS / suite).glob(prefix + "*")}, stopped_run(suite, job, seed)
    start = time.time()
    log = RUNS / suite / f"{marker.stem}.log"
    with open(log, "a") as out:  # a resumed run's output follows its first part's
        result = subprocess.run(command(suite, job, seed, resume), stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    new = [resume] if resume else sorted(p for p in (RUNS / suite).glob(prefix + "*") if p.name not in before and p.is_dir())
    if result.returncode != 0 or not new:
        return f"FAIL  {marker.stem} (exit {result.returncode}, log {log})"
    marker.write_text(str(new[-1].relative_to(RUNS / suite)) + "\n")
    return f"{'resumed' if resume else 'done'}  {marker.stem} in {time.time() - start:.0f}s -> {new[-1].name}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    opts = parser.parse_args(argv)
    # seed by seed: a first seed of every job before the second seed of any (a stopped suite has covered more)
    tasks = [(job, seed) for job in SUITES[opts.suite] for seed in job.seeds]
    tasks.sort(key=lambda task: task[0].seeds.index(task[1]))
    if opts.list:
        for job, seed in tasks:
            print(" ".join(command(opts.suite, job, seed)[1:]))
        return 0
    (RUNS / opts.suite).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        statuses = list(pool.map(lambda t: run_one(opts.suite, *t), tasks))
    print("\n".join(statuses))
    return 1 if any(s.startswith("FAIL") for s in statuses) else 0


if __name__ == "__main__":
    sys.exit(main())
