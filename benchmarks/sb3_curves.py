"""Learning curves of Stable-Baselines3's SAC / TD3 at speed.py's settings, as run directories like ours (CONVENTIONS.md
§3) for benchmarks/plot.py to draw beside our sac.py / td3.py. Run it with speed.py's venv (SB3 is no dependency);
--print-ours (no SB3 needed) prints the command of our script at the same settings:

    /tmp/sb3venv/bin/python benchmarks/sb3_curves.py sac --env-id Hopper-v5 --total-timesteps 200000 --seed 1
    python benchmarks/sb3_curves.py sac --env-id Hopper-v5 --total-timesteps 200000 --seed 1 --print-ours

It writes RUNS_DIR/{env_id}__sb3_{algo}__{seed}__{unix_time}/: args.json (our Args' names, SB3's class, arguments,
version) and metrics.csv, flushed per row: raw charts/episodic_return and charts/episodic_length (Monitor's) at each
episode's end, charts/SPS every 2,000 steps and at the end, and eval/episodic_return of 10 deterministic episodes on
seeds seed + 100_000 + i, as ours.
Identical settings: SETTINGS[algo] as speed.sb3_config translates them (tests/test_speed.py), with this run's env,
steps, learning_starts (default: our script's), a buffer of every step; both sides act at random for learning_starts
steps, then take one gradient step per step (speed.py --check-updates counts them). Not sac.py's defaults: SB3's SAC
has one learning rate and updates the actor every step (ours: --q-lr 3e-4 --policy-frequency 1). Cannot match: random
draws (weights, noise, batches) though seeds are equal; SB3's SAC trains alpha through log(alpha) (gradient alpha times
ours) before the critics (ours after the actor), clamps the log-std to [-20, 2] (ours squashes into [-5, 2]); SB3's TD3
also noises the random warm-up actions. No --resume.
"""
import argparse
import itertools
import json
import os
import shlex
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # numpy's and torch's thread pools read it once, at import
import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import MODULES, SETTINGS, check_steps, sb3_config  # noqa: E402

SPS_EVERY, EVAL_EPISODES = 2_000, 10  # environment steps between charts/SPS rows; deterministic evaluation episodes

def ours_args(o: argparse.Namespace) -> dict:
    """Our script's Args fields at SB3's settings: SETTINGS[algo] with this run's env, length, seed and buffer."""
    run = dict(env_id=o.env_id, total_timesteps=o.total_timesteps, buffer_size=o.total_timesteps, seed=o.seed,
               learning_starts=o.learning_starts, exp_name=f"{o.algo}_sb3_settings", runs_dir=o.runs_dir)
    return {**SETTINGS[o.algo], **run}

def ours_command(o: argparse.Namespace) -> list[str]:
    """`python sac.py --flag value ...` for ours_args (booleans as --flag / --no-flag, as tyro spells them)."""
    flags = []
    for key, value in ours_args(o).items():
        flag = key.replace("_", "-")
        flags += [f"--{'' if value else 'no-'}{flag}"] if isinstance(value, bool) else [f"--{flag}", str(value)]
    return ["python", f"{o.algo}.py", *flags]

def run_dir_name(env_id: str, algo: str, seed: int, unix_time: int) -> str:
    return f"{env_id}__sb3_{algo}__{seed}__{unix_time}".replace("/", "_")

class Recorder:  # the run directory: args.json, and metrics.csv in long format, flushed per row
    def __init__(self, base: Path, args: dict):
        names = (base.name + (f"_{n}" if n > 1 else "") for n in itertools.count(1))  # base, base_2, ... as ours
        self.dir = next(d for d in map(base.with_name, names) if not d.exists())
        self.dir.mkdir(parents=True)
        (self.dir / "args.json").write_text(json.dumps(args, indent=2, default=str))
        self.file = open(self.dir / "metrics.csv", "w")  # header, then one row per scalar
        self.file.write("global_step,wall_time,name,value\n")
        self.start = self.train_start = time.time()  # wall_time from here; SPS from train_start
        self.total, self.returns, self.sps_step = args["total_timesteps"], [], 0
        print(f"run directory: {self.dir}", flush=True)

    def log(self, step: int, scalars: dict) -> None:
        wall = time.time() - self.start
        self.file.writelines(f"{step},{wall:.3f},{name},{float(value)}\n" for name, value in scalars.items())
        self.file.flush()

    def on_step(self, step: int, infos) -> None:  # SB3's Monitor puts {"r", "l", "t"} in info["episode"] at its end
        for episode in (info["episode"] for info in infos if "episode" in info):
            self.returns.append(float(episode["r"]))
            self.log(step, {"charts/episodic_return": episode["r"], "charts/episodic_length": episode["l"]})
        if step >= self.sps_step + SPS_EVERY:
            self.log_sps(step)

    def log_sps(self, step: int) -> None:  # over the training so far, and a progress line
        sps, self.sps_step = int(step / max(time.time() - self.train_start, 1e-9)), step
        self.log(step, {"charts/SPS": sps})
        recent = np.mean(self.returns[-20:]) if self.returns else float("nan")
        print(f"step {step:>9,}/{self.total:,} | {sps:>5,} SPS | return (last 20) {recent:8.2f}", flush=True)

def evaluate(act, env_id: str, seed: int, episodes: int = EVAL_EPISODES) -> list[float]:
    """Returns of act(obs) -> action in `episodes` episodes, episode i on seed seed + 100_000 + i (as our scripts)."""
    returns = [0.0] * episodes
    for i in range(episodes):
        env, done = gym.make(env_id, disable_env_checker=True), False
        obs = env.reset(seed=seed + 100_000 + i)[0]
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            returns[i], done = returns[i] + float(reward), terminated or truncated
    return returns

def train(o: argparse.Namespace) -> Path:
    import stable_baselines3
    from stable_baselines3.common import callbacks, monitor, noise, vec_env
    torch.set_num_threads(1)  # as our scripts' default --torch-threads
    cfg = sb3_config(o.algo, o.total_timesteps, o.learning_starts)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # as our scripts' default --cuda
    rec = Recorder(Path(o.runs_dir) / run_dir_name(o.env_id, o.algo, o.seed, int(time.time())), {
        **ours_args(o), "exp_name": f"sb3_{o.algo}", "eval_episodes": EVAL_EPISODES, "torch_threads": 1,
        "device": device, "implementation": "stable-baselines3", "sb3_version": stable_baselines3.__version__,
        "sb3_class": cfg.algo_class, "sb3_kwargs": cfg.kwargs, "sb3_action_noise_std": cfg.action_noise_std})
    env = vec_env.DummyVecEnv([lambda: monitor.Monitor(gym.make(o.env_id, disable_env_checker=True))])
    kwargs = dict(cfg.kwargs)
    if cfg.action_noise_std is not None:
        dim = env.action_space.shape[0]
        kwargs["action_noise"] = noise.NormalActionNoise(np.zeros(dim), np.full(dim, cfg.action_noise_std))
    model = getattr(stable_baselines3, cfg.algo_class)("MlpPolicy", env, seed=o.seed, device=device, **kwargs)

    class Callback(callbacks.BaseCallback):  # after each environment step, num_timesteps counting it
        def _on_step(self) -> bool:
            rec.on_step(self.num_timesteps, self.locals["infos"])
            return True

    rec.train_start = time.time()  # SPS: training only, not building the agent (as ours)
    model.learn(o.total_timesteps, callback=Callback())
    if rec.sps_step != model.num_timesteps:  # the last SPS row is the whole run's
        rec.log_sps(model.num_timesteps)
    returns = evaluate(lambda obs: model.predict(obs, deterministic=True)[0], o.env_id, o.seed)
    for r in returns:
        rec.log(model.num_timesteps, {"eval/episodic_return": r})
    rec.file.close()
    print(f"done in {time.time() - rec.start:.0f}s: evaluation {np.mean(returns):.2f}\n{rec.dir}")
    return rec.dir

def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("algo", choices=("sac", "td3"))
    parser.add_argument("--env-id", default="Hopper-v5")
    parser.add_argument("--total-timesteps", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--learning-starts", type=int, help="random steps before learning (default: our script's)")
    parser.add_argument("--runs-dir", default="benchmarks/runs/mujoco_sb3")
    parser.add_argument("--print-ours", action="store_true", help="print our script's command at these settings, exit")
    o = parser.parse_args(argv)
    o.learning_starts = o.learning_starts or MODULES[o.algo].Args().learning_starts
    check_steps(o.algo, o.total_timesteps, o.learning_starts)
    if o.learning_starts < SETTINGS[o.algo]["batch_size"]:  # our scripts refuse a first batch larger than that
        parser.error(f"--learning-starts must be at least the batch size, {SETTINGS[o.algo]['batch_size']}")
    return o

if __name__ == "__main__":
    opts = parse()
    print(shlex.join(ours_command(opts))) if opts.print_ours else train(opts)
