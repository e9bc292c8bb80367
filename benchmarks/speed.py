"""Steps per second of this repository's ppo.py, a2c.py, ppo_continuous.py, sac.py and td3.py next to
Stable-Baselines3's PPO, A2C, PPO, SAC and TD3 at identical hyperparameters and network sizes.

Stable-Baselines3 is not a dependency of this repository. Install it in a separate virtual environment that
reuses the pinned packages (check that `pip list` there still shows the same torch), and run this file with it:

    python -m venv --system-site-packages /tmp/sb3venv && /tmp/sb3venv/bin/pip install stable-baselines3
    /tmp/sb3venv/bin/python benchmarks/speed.py                         # all five, 5 reps, 1 thread: ~15-20 min on 2 cores
    /tmp/sb3venv/bin/python benchmarks/speed.py --algos sac td3 --reps 3 --threads 2
    /tmp/sb3venv/bin/python benchmarks/speed.py --check-updates        # count both sides' optimizer steps, no timing

Method. Each repetition runs, for each algorithm, ours and SB3's one after the other (the order alternates
between repetitions), so each per-repetition ratio compares two runs made under the same machine load; the table
reports the medians of the SPS and the median of the per-repetition ratios. SPS is environment steps over the
wall time of building the environments and the agent and training (no evaluation; ours runs in-process through
`module.main(module.Args(...))` with `eval_episodes=0` and a temporary runs_dir, its progress lines discarded);
"steps/CPU-s" divides by the process's CPU time instead, which is less sensitive to other users of the machine.
One run of each implementation comes first and is not timed (first calls import torch._dynamo and the like).
OMP_NUM_THREADS is set to --threads before numpy and torch are imported, and torch.set_num_threads(--threads)
holds for both sides. The table goes to stdout and, as markdown with the command, the machine and the date, to
--out (benchmarks/results/speed.md).

Settings (SETTINGS below, in the scripts' Args vocabulary; our runs take them as Args, `sb3_config` translates
them for SB3; tests/test_speed.py checks that the two agree, and that they are the scripts' defaults except
where noted). Optimizer steps are counted with --check-updates (torch's optimizer-step hook), default steps:

ppo (ppo.py vs PPO), CartPole-v1, 76,800 steps: 4 envs x 128 steps (rollout 512), 4 epochs x 4 minibatches of
    128 = 16 Adam steps per rollout on both sides (2,400 in all); Adam eps 1e-5, lr 1e-3 annealed linearly to 0
    (SB3's schedule is shifted by one rollout so both use lr * (1 - (k - 1) / K) in update k of K); gamma 0.99,
    GAE 0.95, clip 0.2, value clipping 0.2, entropy 0.01, value coefficient 0.5, max grad norm 0.5, advantages
    normalized per minibatch, truncations bootstrapped with gamma * V(final observation) on both sides (as in
    every on-policy row); separate actor and critic MLPs 64-64 tanh, orthogonal init (gain sqrt(2), policy
    head 0.01, value head 1), 9,155 parameters on both sides.
a2c (a2c.py vs A2C), CartPole-v1, 75,000 steps: 8 envs x 5 steps (rollout 40), one RMSprop step per rollout
    (1,875 in all); RMSprop lr 7e-4 constant, alpha 0.99, eps 1e-5; gamma 0.99, GAE 0.95, entropy 0.01, value
    coefficient 0.5, max grad norm 0.5, no advantage normalization; the same 64-64 tanh networks and init.
ppo_continuous (ppo_continuous.py vs PPO + VecNormalize), Hopper-v5, 20,480 steps: 1 env x 2048 steps, 10 epochs
    x 32 minibatches of 64 = 320 Adam steps per rollout (3,200 in all); lr 3e-4 annealed as for ppo; gamma 0.99,
    GAE 0.95, clip 0.2, value clipping 0.2, entropy 0, value coefficient 0.5, max grad norm 0.5, advantages
    normalized per minibatch; observations normalized by running statistics and clipped to +-10, rewards divided
    by the running std of the discounted return and clipped to +-10 (SB3: VecNormalize(clip_obs=10,
    clip_reward=10, gamma=0.99, epsilon=1e-8)); Gaussian policy with a state-independent log-std starting at 0;
    64-64 tanh networks, orthogonal init. Hopper-v5 is the benchmark's choice (the script defaults to HalfCheetah).
sac (sac.py vs SAC), Pendulum-v1, 1,256 steps, learning from step 256 (uniform random actions before; the first
    batch of 256 needs as many transitions): one gradient step per environment step (1,000 in all), batch 256,
    buffer = all steps, actor and twin critics MLP 256-256 ReLU, Adam lr 3e-4 for actor, critics and alpha, gamma
    0.99, tau 0.005 every step, actor and alpha updated every step, alpha learned from 0.2 toward entropy -dim(A).
    Not the script's defaults: the actor every step (the script: twice every 2nd) and the critics' lr 3e-4 (the
    script: 1e-3), as SB3 has no such options. Optimizer steps: 1,000 each of critic, actor and alpha on both sides.
td3 (td3.py vs TD3), Pendulum-v1, 1,256 steps, learning from 256: one critic step per environment step (1,000),
    actor and both targets every 2nd (500); batch 256, buffer = all steps, MLPs 256-256 ReLU, Adam lr 3e-4,
    gamma 0.99, tau 0.005, target smoothing noise 0.2 clipped at 0.5 and exploration noise 0.1 (all in units
    of the action half-range; SB3 adds its action noise in the [-1, 1]-scaled space, so its std is 0.1 there).

Differences that remain (the implementations, which is what is measured): our on-policy scripts act through the
torch actor at every step and run the critic once per rollout, batched, where SB3's policy evaluates the value at
every step too; ours uses fused Adam and syncs with the host every 100 updates off-policy. Environments: both
sides build gymnasium envs with the passive env checker off and record episode statistics (ours
RecordEpisodeStatistics in a SyncVectorEnv, SB3 Monitor in a DummyVecEnv). Not speed-relevant but different
(same coefficients, different loss definitions): SB3's value loss is mean((R - V)^2) for A2C and
mean((R - V_clipped)^2) for PPO, ours 0.5 * mean((R - V)^2) and 0.5 * mean of the larger of the plain and clipped
squared errors, so at vf_coef 0.5 SB3's value gradient is about twice ours; SB3's SAC bounds the log-std by
clamping to [-20, 2], ours squashes it into [-5, 2] with tanh.

--profile prints where our scripts spend their time (torch profiler, self CPU time per op) for every algorithm.
"""
import argparse
import os
import sys

# The thread pools of numpy's BLAS and torch read OMP_NUM_THREADS once, when they are imported.
THREADS_PARSER = argparse.ArgumentParser(add_help=False)
THREADS_PARSER.add_argument("--threads", type=int, default=1,
                            help="OMP_NUM_THREADS and torch threads, the same for both implementations")
if __name__ == "__main__":
    os.environ["OMP_NUM_THREADS"] = str(THREADS_PARSER.parse_known_args()[0].threads)

import contextlib  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.optim.optimizer import register_optimizer_step_post_hook  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import a2c  # noqa: E402
import ppo  # noqa: E402
import ppo_continuous  # noqa: E402
import sac  # noqa: E402
import td3  # noqa: E402

# ---------------------------------------------------------------- the settings both sides are built from
SETTINGS = {
    "ppo": dict(env_id="CartPole-v1", num_envs=4, num_steps=128, num_minibatches=4, update_epochs=4,
                learning_rate=1e-3, anneal_lr=True, gamma=0.99, gae_lambda=0.95, norm_adv=True, clip_coef=0.2,
                clip_vloss=True, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, target_kl=None,
                bootstrap_truncation=True),
    "a2c": dict(env_id="CartPole-v1", num_envs=8, num_steps=5, learning_rate=7e-4, optimizer="rmsprop",
                rmsprop_alpha=0.99, optimizer_eps=1e-5, anneal_lr=False, gamma=0.99, gae_lambda=0.95,
                norm_adv=False, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, norm_reward=False),
    "ppo_continuous": dict(env_id="Hopper-v5", num_envs=1, num_steps=2048, num_minibatches=32, update_epochs=10,
                           learning_rate=3e-4, anneal_lr=True, gamma=0.99, gae_lambda=0.95, norm_adv=True,
                           clip_coef=0.2, clip_vloss=True, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                           target_kl=None),
    "sac": dict(env_id="Pendulum-v1", num_envs=1, batch_size=256, hidden_size=256, gamma=0.99, tau=0.005,
                policy_lr=3e-4, q_lr=3e-4, policy_frequency=1, target_network_frequency=1, alpha=0.2, autotune=True),
    "td3": dict(env_id="Pendulum-v1", num_envs=1, batch_size=256, hidden_size=256, gamma=0.99, tau=0.005,
                learning_rate=3e-4, policy_noise=0.2, noise_clip=0.5, exploration_noise=0.1, policy_frequency=2),
}
MODULES = {"ppo": ppo, "a2c": a2c, "ppo_continuous": ppo_continuous, "sac": sac, "td3": td3}
ALGOS = list(SETTINGS)
ON_POLICY = ("ppo", "a2c", "ppo_continuous")
# Chosen so that the default run (5 reps) takes 15-20 minutes on a 2-core machine; on-policy: whole rollouts.
DEFAULT_STEPS = {"ppo": 76_800, "a2c": 75_000, "ppo_continuous": 20_480, "sac": 1_256, "td3": 1_256}
LEARNING_STARTS = 256  # no fewer transitions than a batch (sac.py and td3.py refuse a first batch larger than that)
OBS_CLIP = REWARD_CLIP = 10.0  # ppo_continuous.py's clipping of normalized observations and scaled rewards
SEED = 1
DEVICE = "cpu"  # --device: where both sides put their networks (cuda: benchmarks/gpu.sh)


def rollout_size(algo: str) -> int:
    """Environment steps per update cycle: the rollout for on-policy algorithms, 1 for the off-policy ones."""
    s = SETTINGS[algo]
    return s["num_envs"] * s["num_steps"] if algo in ON_POLICY else s["num_envs"]


def check_steps(algo: str, steps: int, learning_starts: int) -> None:
    if algo in ON_POLICY and (steps < rollout_size(algo) or steps % rollout_size(algo)):
        raise SystemExit(f"{algo}: steps {steps} must be a positive multiple of the rollout, "
                         f"{rollout_size(algo)} steps, so both implementations run the same number of updates.")
    if algo not in ON_POLICY and not 0 < learning_starts < steps:
        raise SystemExit(f"{algo}: --learning-starts {learning_starts} must be between 1 and the steps ({steps}).")


# ---------------------------------------------------------------- this repository's side
def ours_args(algo: str, steps: int, learning_starts: int, threads: int, runs_dir: str):
    """The Args of our script for a timed run: SETTINGS plus the run's length, no evaluation, CPU."""
    run = dict(total_timesteps=steps, eval_episodes=0, cuda=DEVICE == "cuda", torch_threads=threads, runs_dir=runs_dir,
               seed=SEED)
    if algo not in ON_POLICY:
        run.update(learning_starts=learning_starts, buffer_size=steps)
    return MODULES[algo].Args(**SETTINGS[algo], **run)


def ours_train(algo: str, steps: int, learning_starts: int, threads: int) -> list[float]:
    """Build and train our agent in-process; the episodic returns."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        result = MODULES[algo].main(ours_args(algo, steps, learning_starts, threads, tmp))
    return [r for _, r in result["episodic_returns"]]


# ---------------------------------------------------------------- Stable-Baselines3's side
@dataclass
class SB3Config:
    algo_class: str  # the stable_baselines3 class
    env_id: str
    n_envs: int
    kwargs: dict  # for the class, besides the policy, env, seed, device and verbose
    vec_normalize: dict | None = None  # VecNormalize's arguments where our script normalizes
    action_noise_std: float | None = None  # NormalActionNoise std, in SB3's [-1, 1]-scaled action space


def shifted_linear_schedule(lr: float, rollout_fraction: float):
    """SB3 calls the schedule after collecting rollout k of K with progress_remaining = 1 - k / K; our scripts use
    lr * (1 - (k - 1) / K) for update k, i.e. lr * (progress_remaining + 1 / K)."""
    return lambda progress_remaining: lr * min(1.0, progress_remaining + rollout_fraction)


def sb3_config(algo: str, steps: int, learning_starts: int) -> SB3Config:
    """SETTINGS translated into SB3's arguments; imports nothing from SB3, so tests can read it."""
    s = SETTINGS[algo]
    if algo in ON_POLICY:
        if not s.get("bootstrap_truncation", True):
            raise ValueError(f"SB3's on-policy algorithms always bootstrap time-limit truncations: {algo} must too.")
        lr = shifted_linear_schedule(s["learning_rate"], rollout_size(algo) / steps) if s["anneal_lr"] else s["learning_rate"]
        if s.get("optimizer") == "rmsprop":
            optim = dict(optimizer_class=torch.optim.RMSprop,
                         optimizer_kwargs=dict(alpha=s["rmsprop_alpha"], eps=s["optimizer_eps"], weight_decay=0))
        else:  # ppo.py and ppo_continuous.py use Adam with eps 1e-5 (also SB3's default for these policies)
            optim = dict(optimizer_class=torch.optim.Adam, optimizer_kwargs=dict(eps=s.get("optimizer_eps", 1e-5)))
        kwargs = dict(n_steps=s["num_steps"], learning_rate=lr, gamma=s["gamma"], gae_lambda=s["gae_lambda"],
                      ent_coef=s["ent_coef"], vf_coef=s["vf_coef"], max_grad_norm=s["max_grad_norm"],
                      normalize_advantage=s["norm_adv"],
                      policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=nn.Tanh, ortho_init=True,
                                         **optim))
        if algo == "a2c":
            return SB3Config("A2C", s["env_id"], s["num_envs"], kwargs)
        kwargs.update(batch_size=rollout_size(algo) // s["num_minibatches"], n_epochs=s["update_epochs"],
                      clip_range=s["clip_coef"], clip_range_vf=s["clip_coef"] if s["clip_vloss"] else None,
                      target_kl=s["target_kl"])
        if algo == "ppo":
            return SB3Config("PPO", s["env_id"], s["num_envs"], kwargs)
        kwargs["policy_kwargs"]["log_std_init"] = 0.0
        vec_normalize = dict(norm_obs=True, norm_reward=True, clip_obs=OBS_CLIP,  # ppo_continuous.py always normalizes
                             clip_reward=REWARD_CLIP, gamma=s["gamma"], epsilon=1e-8)
        return SB3Config("PPO", s["env_id"], s["num_envs"], kwargs, vec_normalize=vec_normalize)

    kwargs = dict(batch_size=s["batch_size"], buffer_size=steps, learning_starts=learning_starts, gamma=s["gamma"],
                  tau=s["tau"], train_freq=1, gradient_steps=s["num_envs"],
                  policy_kwargs=dict(net_arch=[s["hidden_size"]] * 2, activation_fn=nn.ReLU))
    if algo == "sac":
        if s["policy_lr"] != s["q_lr"]:
            raise ValueError("SB3's SAC has one learning rate: SETTINGS['sac'] needs policy_lr == q_lr.")
        if s["policy_frequency"] != 1:
            raise ValueError("SB3's SAC updates the actor every gradient step: SETTINGS['sac'] needs policy_frequency 1.")
        kwargs.update(learning_rate=s["policy_lr"], target_update_interval=s["target_network_frequency"],
                      ent_coef=f"auto_{s['alpha']}" if s["autotune"] else s["alpha"], target_entropy="auto")
        return SB3Config("SAC", s["env_id"], s["num_envs"], kwargs)
    kwargs.update(learning_rate=s["learning_rate"], policy_delay=s["policy_frequency"],
                  target_policy_noise=s["policy_noise"], target_noise_clip=s["noise_clip"])
    return SB3Config("TD3", s["env_id"], s["num_envs"], kwargs, action_noise_std=s["exploration_noise"])


def sb3_train(algo: str, steps: int, learning_starts: int, threads: int) -> list[float]:
    """Build and train SB3's agent; the episodic returns of its last (up to 100) episodes."""
    import stable_baselines3
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    torch.set_num_threads(threads)
    cfg = sb3_config(algo, steps, learning_starts)
    env = DummyVecEnv([lambda: Monitor(gym.make(cfg.env_id, disable_env_checker=True))] * cfg.n_envs)
    if cfg.vec_normalize is not None:
        env = VecNormalize(env, **cfg.vec_normalize)
    kwargs = dict(cfg.kwargs)
    if cfg.action_noise_std is not None:
        dim = env.action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(dim), np.full(dim, cfg.action_noise_std))
    model = getattr(stable_baselines3, cfg.algo_class)("MlpPolicy", env, seed=SEED, device=DEVICE, verbose=0, **kwargs)
    model.learn(steps)
    env.close()
    return [ep["r"] for ep in model.ep_info_buffer]


# ---------------------------------------------------------------- measuring
IMPLEMENTATIONS = {"ours": ours_train, "sb3": sb3_train}


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of fn(*args)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def warmup_steps(algo: str, learning_starts: int) -> int:
    """A short run: whole rollouts, about 2,000 steps, on-policy; 100 updates off-policy."""
    return rollout_size(algo) * max(1, 2048 // rollout_size(algo)) if algo in ON_POLICY else learning_starts + 100


def summarize(reps: list[tuple[float, float, float, float]]) -> dict:
    """Per repetition (ours wall SPS, ours CPU SPS, SB3 wall SPS, SB3 CPU SPS) -> medians of each, and the median,
    min and max of the per-repetition ratios ours / SB3 (each ratio from two runs under the same load; the median
    ratio is not the ratio of the medians)."""
    ow, oc, sw, sc = (np.array(col, dtype=float) for col in zip(*reps))
    med = statistics.median
    wall, cpu = ow / sw, oc / sc
    return dict(ours_sps=med(ow), sb3_sps=med(sw), ratio=med(wall), ratio_min=wall.min(), ratio_max=wall.max(),
                ours_cpu_sps=med(oc), sb3_cpu_sps=med(sc), cpu_ratio=med(cpu), cpu_ratio_min=cpu.min(),
                cpu_ratio_max=cpu.max())


NAMES = {"ppo": ("ppo.py", "PPO"), "a2c": ("a2c.py", "A2C"), "ppo_continuous": ("ppo_continuous.py", "PPO + VecNormalize"),
         "sac": ("sac.py", "SAC"), "td3": ("td3.py", "TD3")}


def markdown_table(summaries: dict, steps: dict) -> str:
    rows = ["| ours / SB3 | env | steps | ours SPS | SB3 SPS | ratio (min-max) | ours steps/CPU-s | SB3 steps/CPU-s | "
            "ratio (min-max) |", "|---|---|---|---|---|---|---|---|---|"]
    for algo, s in summaries.items():
        ours, theirs = NAMES[algo]
        rows.append(f"| `{ours}` / {theirs} | {SETTINGS[algo]['env_id']} | {steps[algo]:,} | {s['ours_sps']:,.1f} | "
                    f"{s['sb3_sps']:,.1f} | {s['ratio']:.2f} ({s['ratio_min']:.2f}-{s['ratio_max']:.2f}) | "
                    f"{s['ours_cpu_sps']:,.1f} | {s['sb3_cpu_sps']:,.1f} | "
                    f"{s['cpu_ratio']:.2f} ({s['cpu_ratio_min']:.2f}-{s['cpu_ratio_max']:.2f}) |")
    return "\n".join(rows)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    return f"{len(os.sched_getaffinity(0))} CPUs (nproc), {model}"


def report(opts, summaries: dict, steps: dict, load_before: float, sb3_version: str | None) -> str:
    return "\n".join([
        "# Speed: this repository against Stable-Baselines3",
        "",
        f"`{shlex.join([sys.executable] + sys.argv)}`",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='minutes')}",
        f"- machine: {machine()}; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after",
        f"- threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch {torch.get_num_threads()} "
        f"(--threads {opts.threads}), for both implementations; device {DEVICE}"
        + (f" ({torch.cuda.get_device_name()})" if DEVICE == "cuda" else ""),
        f"- versions: torch {torch.__version__}, gymnasium {gym.__version__}"
        + (f", stable-baselines3 {sb3_version}" if sb3_version else ""),
        f"- {opts.reps} repetitions, ours and SB3 alternating within each; medians of the SPS, median (min-max) of "
        "the per-repetition ratios ours / SB3 (above 1: ours is faster)",
        f"- off-policy learning starts after {opts.learning_starts} steps; settings: benchmarks/speed.py",
        "- SPS: environment steps / wall seconds of building the agent and training (no evaluation); "
        "steps/CPU-s: per second of the process's CPU time",
        "",
        markdown_table(summaries, steps),
        "",
    ])


def count_optimizer_steps(fn, *args):
    """(fn(*args), sorted [optimizer class, parameter count, steps] of every optimizer that stepped during the call)."""
    counts = {}

    def hook(optimizer, _args, _kwargs):
        if id(optimizer) not in counts:
            params = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
            counts[id(optimizer)] = [type(optimizer).__name__, params, 0]
        counts[id(optimizer)][2] += 1

    handle = register_optimizer_step_post_hook(hook)
    try:
        result = fn(*args)
    finally:
        handle.remove()
    return result, sorted(counts.values())


def check_updates(algo: str, steps: int, learning_starts: int, threads: int) -> None:
    """Print both sides' optimizer steps (and their parameter counts) and mean return of the last 10 episodes."""
    for impl in ("ours", "sb3"):
        returns, counts = count_optimizer_steps(IMPLEMENTATIONS[impl], algo, steps, learning_starts, threads)
        optims = ", ".join(f"{name} of {n:,} params x {k:,} steps" for name, n, k in counts)
        recent = f"{np.mean(returns[-10:]):.1f}" if returns else "-"
        print(f"{algo:>14} {impl:>4}: {optims} | mean return of the last 10 episodes {recent}", flush=True)


def profile_ours(algo: str, steps: int, learning_starts: int, threads: int) -> None:
    from torch.profiler import profile

    with profile() as prof:
        wall, _ = timed(ours_train, algo, steps, learning_starts, threads)
    print(f"\n{NAMES[algo][0]}: {steps} steps in {wall:.1f} s; self CPU time by op:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[THREADS_PARSER])
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=ALGOS)
    parser.add_argument("--reps", type=int, default=5, help="repetitions; medians are reported")
    for algo in ALGOS:
        parser.add_argument(f"--{algo.replace('_', '-')}-steps", type=int, default=DEFAULT_STEPS[algo],
                            help=f"environment steps of each {algo} run")
    parser.add_argument("--learning-starts", type=int, default=LEARNING_STARTS, help="sac/td3: random steps before learning")
    parser.add_argument("--out", help="the markdown report (default: benchmarks/results/speed.md)")
    parser.add_argument("--check-updates", action="store_true",
                        help="instead of timing, count both sides' optimizer steps and parameters for each algorithm")
    parser.add_argument("--profile", action="store_true", help="also profile one run of each of ours")
    parser.add_argument("--against", choices=["sb3"], default="sb3", help="the other side: Stable-Baselines3")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both sides train")
    opts = parser.parse_args(argv)
    global DEVICE
    DEVICE = opts.device
    if opts.reps < 1 or opts.threads < 1:
        raise SystemExit(f"--reps and --threads must be at least 1 (got {opts.reps}, {opts.threads}).")
    steps = {algo: getattr(opts, f"{algo}_steps") for algo in opts.algos}
    for algo in opts.algos:
        check_steps(algo, steps[algo], opts.learning_starts)
    torch.set_num_threads(opts.threads)
    if opts.check_updates:
        for algo in opts.algos:
            check_updates(algo, steps[algo], opts.learning_starts, opts.threads)
        return

    load_before = os.getloadavg()[0]
    for algo in opts.algos:  # warm-up: the first run of a process pays one-off imports and allocator growth
        for impl in ("ours", opts.against):
            IMPLEMENTATIONS[impl](algo, warmup_steps(algo, opts.learning_starts), opts.learning_starts, opts.threads)
    reps = {algo: [] for algo in opts.algos}  # per rep: ours wall SPS, ours CPU SPS, SB3 wall SPS, SB3 CPU SPS
    for rep in range(opts.reps):
        for algo in opts.algos:
            order = ("ours", opts.against) if rep % 2 == 0 else (opts.against, "ours")
            sps = {}
            for impl in order:
                wall, cpu = timed(IMPLEMENTATIONS[impl], algo, steps[algo], opts.learning_starts, opts.threads)
                sps[impl] = (steps[algo] / wall, steps[algo] / cpu)
            reps[algo].append(sps["ours"] + sps[opts.against])
            (ow, oc), (sw, sc) = sps["ours"], sps[opts.against]
            print(f"rep {rep} {algo:>14}: ours {ow:8.1f} SPS ({oc:8.1f} per CPU s) | {opts.against} {sw:8.1f} SPS "
                  f"({sc:8.1f} per CPU s) | ratio {ow / sw:.2f} ({oc / sc:.2f})", flush=True)
    import stable_baselines3

    text = report(opts, {algo: summarize(r) for algo, r in reps.items()}, steps, load_before, stable_baselines3.__version__)
    print("\n" + text)
    opts.out = opts.out or str(ROOT / "benchmarks" / "results" / "speed.md")
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(text)
    print(f"written to {opts.out}")
    if opts.profile:
        for algo in opts.algos:
            profile_ours(algo, steps[algo], opts.learning_starts, opts.threads)


if __name__ == "__main__":
    main()
