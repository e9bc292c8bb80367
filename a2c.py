"""A2C: synchronous advantage actor-critic on vector environments, discrete and continuous actions.

Every `num_steps` steps of `num_envs` parallel environments, A2C takes one gradient step on the whole rollout: the
policy follows the advantage-weighted log-likelihood gradient, the critic regresses onto the n-step / GAE returns, and
an entropy bonus keeps the policy from collapsing early. Each line below is the function on its right:

    r~_t    = clip(r_t / sqrt(var(G) + 1e-8), -10, 10),   G_t = gamma G_{t-1} + r_t (0 at a done)     scale_reward
    delta_t = r~_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)     (r~_t = r_t without --norm-reward)   compute_gae
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   R_t = A_t + V(s_t)                   compute_gae
    L       = -mean(A_t log pi(a_t|s_t)) + vf_coef 0.5 mean((R_t - V(s_t))^2) - ent_coef mean(H[pi(.|s_t)])   a2c_loss

With --gae-lambda 1.0 the advantage is the paper's n-step return minus V (bootstrapped at the rollout's end); 0.0 gives
one-step TD. Discrete actions follow a categorical policy, Box ones a Gaussian with a learned state-independent log-std,
whose samples are clipped to the bounds only when stepping the environment (the loss uses the unclipped sample).

Paper: Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning" (A3C; A2C is its synchronous variant,
as in OpenAI baselines); GAE from Schulman et al. 2016.
Differences from the paper: synchronous workers instead of asynchronous ones; GAE(lambda) with default lambda 0.95
instead of pure n-step returns; a time-limit truncation is bootstrapped with gamma * V(true final observation) instead
of ending the return; the MLP policy of the classic-control setup instead of the Atari CNN (see a2c_atari.py). Box
observations of any shape are flattened and Discrete ones one-hot encoded, as in Stable-Baselines3.

Run:  python a2c.py --env-id Pendulum-v1    (evaluate: --load-model runs/RUN/model.pt; continue a stopped run: --resume runs/RUN)
"""

# ---------------------------------------------------------------- imports
import contextlib
import functools
import itertools
import json
import math
import os
import random
import shutil
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from gymnasium.wrappers.utils import RunningMeanStd  # Chan et al.'s parallel mean / variance, in float64
from torch.distributions import Categorical, Independent, Normal
from torch.utils.tensorboard import SummaryWriter

# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "a2c"  # the name of this experiment (part of the run directory's name)
    seed: int | None = None  # seed of random, numpy, torch and the environments (1; with --load-model the run's)
    torch_deterministic: bool = True  # set torch.backends.cudnn.deterministic
    cuda: bool = True  # use CUDA when it is available
    track: bool = False  # mirror the logged scalars to Weights & Biases
    wandb_project_name: str = "actor-critic"  # the wandb project name
    wandb_entity: str | None = None  # the wandb entity (team or user)
    capture_video: bool = False  # record videos of the first environment into the run directory's videos/
    save_model: bool = False  # save weights and arguments to model.pt in the run directory
    eval_episodes: int = 10  # deterministic evaluation episodes after training (argmax / mean action); 0 skips it
    load_model: str | None = None  # path to a model.pt: evaluate it instead of training
    resume: str | None = None  # a stopped run's directory: continue it from its checkpoint.pt, with its own arguments
    checkpoint_interval: float = 300.0  # seconds between writes of the resumable checkpoint.pt (also written when stopped)
    runs_dir: str = "runs"  # where run directories are created
    torch_threads: int = 1  # CPU threads for torch (0 keeps torch's default); one is fastest for these small networks
    log_interval: int = 25  # log the training scalars, averaged, every this many updates

    env_id: str | None = None  # gymnasium id, Discrete or Box actions (CartPole-v1; with --load-model the run's own)
    total_timesteps: int = 500_000  # total environment steps of the experiment
    learning_rate: float = 7e-4  # the optimizer's learning rate
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"  # RMSprop as in the A2C paper, or Adam
    rmsprop_alpha: float = 0.99  # RMSprop's smoothing constant
    optimizer_eps: float = 1e-5  # epsilon of RMSprop / Adam
    num_envs: int = 8  # number of parallel environments
    num_steps: int = 5  # steps per environment in each rollout (the n of n-step returns)
    anneal_lr: bool = False  # anneal the learning rate linearly to 0 over training
    gamma: float = 0.99  # the discount factor
    gae_lambda: float = 0.95  # the GAE lambda (1.0: n-step returns, 0.0: one-step TD)
    norm_adv: bool = False  # normalize advantages over the rollout
    ent_coef: float = 0.01  # coefficient of the entropy bonus
    vf_coef: float = 0.5  # coefficient of the value loss
    max_grad_norm: float = 0.5  # maximum global gradient norm
    norm_reward: bool = False  # scale rewards by the running std of the discounted return (as ppo_continuous.py; helps Pendulum)

class UsageError(ValueError):
    """A bad argument, environment or checkpoint: `python a2c.py` reports it in one line and exits with status 2."""

def check_args(args: Args) -> dict | None:  # bad arguments, checkpoints, spaces: one sentence before anything is built
    state = None if args.load_model is None and args.resume is None else load_checkpoint(args)  # fills in --env-id, --seed
    args.env_id, args.seed = args.env_id or "CartPole-v1", 1 if args.seed is None else args.seed
    os.environ.setdefault("MUJOCO_GL", "egl" if sys.platform == "linux" else "glfw")  # Linux: video without a display
    with contextlib.suppress(ImportError):  # MuJoCo's warnings as Python's, each once, not lines in ./MUJOCO_LOG.TXT
        import mujoco  # (after MUJOCO_GL, which it reads at import)
        mujoco.set_mju_user_warning(functools.cache(lambda message: warnings.warn(message, RuntimeWarning)))
    try:
        env = gym.make(args.env_id, disable_env_checker=True)
    except gym.error.Error as e:  # an unknown id, or a missing package (the message names the pip command)
        raise UsageError(f"cannot make environment {args.env_id!r}: {e}") from None
    obs, act, batch = env.observation_space, env.action_space, args.num_envs * args.num_steps
    env.close()
    for bad, problem in [  # every comparison with NaN is False: NaN fails every range
        (min(args.num_envs, args.num_steps, args.log_interval) < 1, "--num-envs, --num-steps, --log-interval must be >= 1."),
        (args.load_model is None and args.total_timesteps < batch, f"--total-timesteps {args.total_timesteps} is smaller "
         f"than one rollout (num_envs * num_steps = {batch}); raise it or shrink the rollout."),
        (not (0 < args.learning_rate < math.inf and 0 < args.optimizer_eps < math.inf and 0 < args.max_grad_norm),
         f"--learning-rate, --optimizer-eps, --max-grad-norm must be > 0, the first two finite (got {args.learning_rate}, "
         f"{args.optimizer_eps}, {args.max_grad_norm})."),
        (not 0 <= args.rmsprop_alpha < 1, f"--rmsprop-alpha must lie in [0, 1) (got {args.rmsprop_alpha})."),
        (not (0 <= args.gamma <= 1 and 0 <= args.gae_lambda <= 1 and 0 <= args.ent_coef < math.inf and 0 <= args.vf_coef
              < math.inf), f"--gamma and --gae-lambda must lie in [0, 1], --ent-coef and --vf-coef be finite and >= 0 (got "
         f"{args.gamma}, {args.gae_lambda}, {args.ent_coef}, {args.vf_coef})."),
        (not 0 <= args.seed < 2**32 or min(args.eval_episodes, args.torch_threads) < 0, f"--seed must be in [0, 2**32), "
         f"--eval-episodes and --torch-threads 0 or more (got {args.seed}, {args.eval_episodes}, {args.torch_threads})."),
        (not args.checkpoint_interval > 0, f"--checkpoint-interval must be positive (got {args.checkpoint_interval})."),
        (not isinstance(act, (gym.spaces.Discrete, gym.spaces.Box)),
         f"a2c.py handles Discrete and Box action spaces, but {args.env_id} has {act}."),
        (getattr(act, "start", 0) != 0, f"a2c.py numbers discrete actions from 0, but {args.env_id} has {act}; shift "
         "them with a gym.ActionWrapper."),
        (isinstance(act, gym.spaces.Box) and (len(act.shape) != 1 or not np.isfinite([act.low, act.high]).all()),
         f"a2c.py needs a bounded one-dimensional Box action space, but {args.env_id} has {act}."),
        (not isinstance(obs, (gym.spaces.Box, gym.spaces.Discrete)) or obs.dtype == np.uint8 and len(obs.shape) >= 2,
         f"a2c.py takes Box or Discrete observations, not {obs} ({args.env_id}); for image observations a2c_atari.py "
         "trains a CNN, other spaces flatten with gym.wrappers.FlattenObservation."),
    ]:
        if bad:
            raise UsageError(problem)
    return state

# ---------------------------------------------------------------- environments
def make_envs(env_id: str, num_envs: int, capture_video: bool = False, run_dir: str = ".") -> gym.vector.VectorEnv:
    # SameStep autoreset: the true final observation of a done step is in infos["final_obs"]; no invented transition is stored.
    def make_env(idx: int):  # no passive env checker (it stays in every step's call chain); a time limit if none
        kwargs = dict(disable_env_checker=True, max_episode_steps=gym.spec(env_id).max_episode_steps or 10_000)
        env = (gym.wrappers.RecordVideo(gym.make(env_id, render_mode="rgb_array", **kwargs), f"{run_dir}/videos")
               if capture_video and idx == 0 else gym.make(env_id, **kwargs))
        if not (isinstance(env.observation_space, gym.spaces.Box) and len(env.observation_space.shape) == 1):
            env = gym.wrappers.FlattenObservation(env)  # a Box of any shape to a vector, Discrete to one-hot
        return gym.wrappers.RecordEpisodeStatistics(env)
    return gym.vector.SyncVectorEnv([lambda i=i: make_env(i) for i in range(num_envs)], autoreset_mode="SameStep")

# ---------------------------------------------------------------- networks
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer

def mlp(in_dim: int, out_dim: int, out_std: float) -> nn.Sequential:
    return nn.Sequential(layer_init(nn.Linear(in_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
                         layer_init(nn.Linear(64, out_dim), std=out_std))

class Agent(nn.Module):  # separate actor and critic MLPs (64-64, tanh): logits, or a Gaussian's mean and state-free log-std
    def __init__(self, obs_dim: int, act_dim: int, continuous: bool):
        super().__init__()
        self.continuous, self.critic, self.actor = continuous, mlp(obs_dim, 1, out_std=1.0), mlp(obs_dim, act_dim, out_std=0.01)
        self.actor_logstd = nn.Parameter(torch.zeros(act_dim)) if continuous else None

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def policy(self, x: torch.Tensor) -> Categorical | Independent:  # the Gaussian's log-prob, entropy: sums over dimensions
        if self.continuous:  # no argument checks in the hot path
            return Independent(Normal(self.actor(x), self.actor_logstd.exp(), validate_args=False), 1, validate_args=False)
        return Categorical(logits=self.actor(x), validate_args=False)

    def evaluate_actions(self, x: torch.Tensor, action: torch.Tensor):  # log pi(a|s), the entropy of pi(.|s), V(s)
        pi = self.policy(x)
        return pi.log_prob(action), pi.entropy(), self.get_value(x)

    def act_deterministic(self, x: torch.Tensor) -> torch.Tensor:  # the Gaussian's mean, or the most probable action
        return self.actor(x) if self.continuous else self.actor(x).argmax(-1)

# ---------------------------------------------------------------- the algorithm's math
def scale_reward(reward, discounted, done, return_rms, gamma: float):  # (r~_t, G_t) from r_t and each env's G_{t-1}
    discounted = discounted * gamma + reward
    return_rms.update(discounted)  # the statistics of G first
    return np.clip(reward / np.sqrt(return_rms.var + 1e-8), -10.0, 10.0), np.where(done, 0.0, discounted)

def compute_gae(rewards, values, dones, next_value, gamma: float, gae_lambda: float):
    """GAE over (num_steps, num_envs) tensors; a truncated step arrives bootstrapped (r += gamma V(final obs)), done."""
    not_done = 1.0 - dones
    next_values = torch.cat([values[1:], next_value[None]])
    deltas = rewards + gamma * next_values * not_done - values
    decay = gamma * gae_lambda * not_done
    advantages, last = torch.zeros_like(rewards), torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        last = advantages[t] = deltas[t] + decay[t] * last
    return advantages, advantages + values

def a2c_loss(logprob, entropy, values, advantages, returns, ent_coef: float, vf_coef: float):
    """The A2C objective; advantages and returns are constants (no gradient flows into the targets)."""
    policy_loss = -(advantages.detach() * logprob).mean()
    value_loss = 0.5 * ((returns.detach() - values) ** 2).mean()
    entropy_mean = entropy.mean()
    return policy_loss + vf_coef * value_loss - ent_coef * entropy_mean, (policy_loss, value_loss, entropy_mean)

def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    """1 - Var[y - y_pred] / Var[y]: 1 is a perfect critic, 0 no better than a constant; NaN if Var[y] = 0."""
    return torch.where(y_true.var() > 0, 1 - (y_true - y_pred).var() / y_true.var(), torch.nan)

# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    state, Stop.signum = check_args(args), 0
    torch.set_num_threads(args.torch_threads or torch.get_num_threads())
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    run = Run(args, state)
    envs = make_envs(args.env_id, args.num_envs, args.capture_video, run.dir)
    envs.action_space.seed(args.seed)
    space, obs_dim = envs.single_action_space, int(np.prod(envs.single_observation_space.shape))
    act_dim = int(space.shape[0]) if (continuous := isinstance(space, gym.spaces.Box)) else int(space.n)
    agent = Agent(obs_dim, act_dim, continuous).to(device)
    if state is not None:  # --load-model: evaluate the saved agent, no training; --resume: continue its training
        agent.load_state_dict(state["model"])
    optimizer = (functools.partial(torch.optim.RMSprop, alpha=args.rmsprop_alpha) if args.optimizer == "rmsprop"
                 else torch.optim.Adam)(agent.parameters(), lr=args.learning_rate, eps=args.optimizer_eps)
    stats, return_rms = [], RunningMeanStd(shape=())  # checkpoint.pt keeps both: the unlogged updates' scalars, G's statistics
    first_iteration, global_step = restore(state, optimizer, stats, return_rms) if args.resume else (1, 0)

    batch_size = args.num_envs * args.num_steps
    num_iterations = 0 if args.load_model is not None else args.total_timesteps // batch_size
    if args.total_timesteps % batch_size and num_iterations:
        print(f"--total-timesteps {args.total_timesteps:,} runs as {num_iterations} rollouts of {batch_size}.", flush=True)
    obs = np.zeros((args.num_steps, args.num_envs, obs_dim), dtype=np.float32)  # no values: the update computes V(obs)
    actions = np.zeros((args.num_steps, args.num_envs, *space.shape), dtype=np.float32 if continuous else np.int64)
    rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(2))

    # resuming: new episodes, on seeds of their own, so each env's discounted return G (scale_reward) restarts at 0 too
    next_obs, _ = envs.reset(seed=args.seed + global_step)
    discounted, next_checkpoint, Stop.training = np.zeros(args.num_envs), time.time() + args.checkpoint_interval, True
    start_step, start_time = global_step, time.time()  # charts/SPS: this process's steps over its training time
    try:
        for iteration in range(first_iteration, num_iterations + 1):
            optimizer.param_groups[0]["lr"] = args.learning_rate * (1 - (iteration - 1) / num_iterations if args.anneal_lr else 1)

            # ---- rollout (acting builds no autograd graph)
            with torch.inference_mode():
                for step in range(args.num_steps):
                    global_step += args.num_envs
                    obs[step] = next_obs
                    actions[step] = agent.policy(torch.from_numpy(obs[step]).to(device)).sample().cpu().numpy()
                    env_action = np.clip(actions[step], space.low, space.high) if continuous else actions[step]
                    next_obs, reward, terminated, truncated, infos = envs.step(env_action)
                    check_finite(global_step, observation=next_obs, reward=reward)  # before the policy samples from it
                    rewards[step], dones[step] = reward, terminated | truncated
                    if args.norm_reward:  # scaled before the bootstrap below adds gamma V: V is learned in scaled units
                        rewards[step], discounted = scale_reward(reward, discounted, dones[step], return_rms, args.gamma)
                    if (cut := truncated & ~terminated).any():  # a time limit is no real end: bootstrap with V(true final obs)
                        final_obs = torch.as_tensor(np.stack(infos["final_obs"][cut]), dtype=torch.float32, device=device)
                        rewards[step, cut] += args.gamma * agent.get_value(final_obs).cpu().numpy()
                    run.log_episodes(global_step, infos)

            # ---- update: one gradient step on the whole rollout
            b_obs, b_actions = (torch.from_numpy(x).to(device).flatten(0, 1) for x in (obs, actions))  # (steps * envs, ...)
            logprob, entropy, b_values = agent.evaluate_actions(b_obs, b_actions)
            with torch.no_grad():
                next_value = agent.get_value(torch.as_tensor(next_obs, dtype=torch.float32, device=device))
                advantages, returns = compute_gae(torch.from_numpy(rewards).to(device), b_values.view(args.num_steps, -1),
                                                  torch.from_numpy(dones).to(device), next_value, args.gamma, args.gae_lambda)
                advantages, returns = advantages.reshape(-1), returns.reshape(-1)
                pg_adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8) if args.norm_adv else advantages
            loss, (pg_loss, v_loss, entropy_mean) = a2c_loss(logprob, entropy, b_values, pg_adv, returns,
                                                             args.ent_coef, args.vf_coef)
            optimizer.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()
            with torch.no_grad():  # one host sync per update: the next rollout must not act on NaN
                stats.append(torch.stack([pg_loss, v_loss, grad_norm, entropy_mean, advantages.mean(), advantages.std(),
                                          explained_variance(b_values, returns)]).tolist())
            check_finite(global_step, policy_loss=stats[-1][0], value_loss=stats[-1][1], gradient_norm=stats[-1][2])

            # ---- logging (means over the last log_interval updates)
            if iteration % args.log_interval == 0 or iteration == num_iterations:
                pg, vl, gn, ent, adv_mean, adv_std, ev = np.mean(stats, axis=0)
                stats.clear()
                run.log(global_step, {"charts/SPS": (global_step - start_step) / (time.time() - start_time),
                    "charts/learning_rate": optimizer.param_groups[0]["lr"], "losses/policy_loss": pg, "losses/value_loss": vl,
                    "losses/entropy": ent, "losses/grad_norm": gn, "losses/explained_variance": ev,
                    "charts/advantage_mean": adv_mean, "charts/advantage_std": adv_std}
                    | ({"charts/action_std": agent.actor_logstd.detach().exp().mean()} if continuous else {})
                    | ({"charts/reward_scale": np.sqrt(return_rms.var)} if args.norm_reward else {}))

            if Stop.signum or time.time() > next_checkpoint or iteration == num_iterations:  # the state --resume restores
                save_checkpoint(run.checkpoint, agent, args, optimizer, return_rms, iteration=iteration + 1,
                                global_step=global_step, **run.progress, stats=stats)
                if Stop.signum:
                    raise KeyboardInterrupt(Stop.signum, run.dir)
                next_checkpoint = time.time() + args.checkpoint_interval
    finally:  # also when stopped by SIGINT / SIGTERM or a non-finite number: the model first, then the environments
        Stop.training = False
        if args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), agent, args)
        envs.close()
        run.tb.flush()
    return run.finish(agent, evaluate(agent, args, device, run, global_step))

# ---------------------------------------------------------------- run plumbing: logging, checkpoints, evaluation
class Run:
    """runs/{env_id}__{exp_name}__{seed}__{unix_time}/: args.json, metrics.csv (flushed per row), TensorBoard, wandb."""

    def __init__(self, args: Args, state: dict | None):
        base = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}".replace("/", "_")
        try:
            for n in itertools.count(1):  # atomic: two runs started in the same second never share one
                self.dir = os.path.normpath(args.resume or os.path.join(args.runs_dir, base if n == 1 else f"{base}_{n}"))
                with contextlib.suppress(FileExistsError):
                    os.makedirs(self.dir, exist_ok=bool(args.resume))
                    break
        except OSError as e:
            raise UsageError(f"cannot create a run directory in --runs-dir {args.runs_dir!r} ({e.strerror}).") from None
        self.wandb, self.checkpoint, name = None, os.path.join(self.dir, "checkpoint.pt"), os.path.basename(self.dir)
        if args.track:  # wandb is imported only when tracking: it takes half a second
            import wandb
            try:  # a resumed run continues its W&B run
                self.wandb = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args),
                                        name=name, id=name, resume="allow", dir=self.dir)
            except Exception as e:  # no login, no network: one line, and nothing of a new run left behind
                if not args.resume:
                    shutil.rmtree(self.dir)
                raise UsageError(f"--track: wandb did not start ({type(e).__name__}); try `wandb login`.") from None
            self.wandb.define_metric("*", step_metric="global_step")  # a row per call: one step's values never merge
        with open(os.path.join(self.dir, "args.json"), "w") as f:
            json.dump(asdict(args), f, indent=2)
        step, metrics = state["global_step"] if args.resume else -1, os.path.join(self.dir, "metrics.csv")
        if args.resume:  # the rows logged after the checkpoint go, in one truncate, as the run logs them again
            os.truncate(metrics, state["csv_bytes"])
        self.file = open(metrics, "a" if args.resume else "w", buffering=1)  # line-buffered: each row on disk at once
        self.file.write("" if args.resume else "global_step,wall_time,name,value\n")
        self.tb = SummaryWriter(self.dir, purge_step=step + 1 if args.resume else None)  # TensorBoard hides the later events
        self.total, self.last_print, self.episodic_returns = args.total_timesteps, 0.0, state["returns"] if args.resume else []
        self.start = time.time() - (state["elapsed"] if args.resume else 0.0)  # wall_time goes on from the checkpoint
        print(f"run directory: {self.dir}" + (f" (resumed at step {step:,}, new episodes)" if args.resume else ""), flush=True)

    def log(self, step: int, scalars: dict) -> None:  # one row per scalar; with charts/SPS, a progress line every 2 s
        scalars, wall = {name: float(value) for name, value in scalars.items()}, time.time() - self.start
        self.file.writelines(f"{step},{wall:.3f},{name},{value}\n" for name, value in scalars.items())
        for name, value in scalars.items():
            self.tb.add_scalar(name, value, step)
        if self.wandb is not None:
            self.wandb.log({**scalars, "global_step": step})
        if "charts/SPS" in scalars and time.time() - self.last_print > 2.0:
            self.last_print, sps = time.time(), max(scalars["charts/SPS"], 1.0)
            print(f"step {step:>9,}/{self.total:,} | {sps:>6,.0f} SPS | return (last 20) {self.recent:8.2f} | "
                  f"ETA {(self.total - step) / sps:5.0f}s", flush=True)

    def log_episodes(self, step: int, infos: dict) -> None:  # the episodes that ended in this vector step
        for i in np.flatnonzero(infos.get("final_info", {}).get("_episode", [])):
            self.episodic_returns.append((step, float(infos["final_info"]["episode"]["r"][i])))
            self.log(step, {"charts/episodic_return": self.episodic_returns[-1][1],
                            "charts/episodic_length": infos["final_info"]["episode"]["l"][i]})

    recent = property(lambda run: np.mean([r for _, r in run.episodic_returns[-20:]] or [np.nan]))
    progress = property(lambda run: dict(elapsed=time.time() - run.start, returns=run.episodic_returns, csv_bytes=run.file.tell()))

    def finish(self, agent, eval_returns: list, **extra) -> dict:  # close the files, print a closing line; main's result
        with contextlib.suppress(FileNotFoundError):  # trained and evaluated: nothing left to resume
            os.remove(self.checkpoint)
        self.file.close()
        self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
        evaluation = f", evaluation {np.mean(eval_returns):.2f} ({len(eval_returns)} episodes)" if eval_returns else ""
        print(f"done in {time.time() - self.start:.0f}s: return (last 20) {self.recent:.2f}{evaluation}; {self.dir}")
        return dict(run_dir=self.dir, episodic_returns=self.episodic_returns, eval_returns=eval_returns, agent=agent, **extra)

def check_finite(step: int, **quantities) -> None:  # stop at the first non-finite loss, gradient norm, observation, reward
    for name, value in quantities.items():
        if not np.isfinite(value).all():
            raise FloatingPointError(f"the {name.replace('_', ' ')} is not finite at step {step:,}: training stopped.")

def save_checkpoint(path: str, agent: Agent, args: Args, optimizer=None, return_rms=None, **counters) -> None:
    """model.pt: weights, arguments; checkpoint.pt also optimizer, return_rms, counters, unlogged stats, RNGs. Atomic, finite."""
    if all(p.isfinite().all() for p in agent.parameters()):
        kind, key, *rest = np.random.get_state()  # its key as a list: torch.load(weights_only=True) refuses numpy arrays
        training = {} if optimizer is None else dict(optimizer=optimizer.state_dict(), **counters, rng=[random.getstate(),
                        (kind, key.tolist(), *rest), torch.get_rng_state(), torch.cuda.get_rng_state_all()],  # mean, var, count:
                        return_rms={k: torch.as_tensor(v, dtype=torch.float64) for k, v in vars(return_rms).items()})
        torch.save(dict(script="a2c.py", env_id=args.env_id, args=asdict(args), model=agent.state_dict(), **training),
                   path + ".tmp")
        os.replace(path + ".tmp", path)

def restore(state: dict, optimizer: torch.optim.Optimizer, stats: list, return_rms) -> tuple[int, int]:  # checkpoint.pt's state
    optimizer.load_state_dict(state["optimizer"])
    stats.extend(state["stats"])  # the updates since the last log: the next log averages them too
    vars(return_rms).update({k: v.numpy() for k, v in state["return_rms"].items()})  # the rewards keep their scale
    for put, rng in zip([random.setstate, np.random.set_state, torch.set_rng_state, torch.cuda.set_rng_state_all], state["rng"]):
        put(rng)
    return state["iteration"], state["global_step"]

def load_checkpoint(args: Args) -> dict:  # --load-model's file (it fills in --env-id, --seed), or --resume's checkpoint.pt
    flag, path = ("--load-model", args.load_model) if args.resume is None else ("--resume", f"{args.resume}/checkpoint.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, empty, truncated, not a checkpoint at all
        why = f"{type(e).__name__}: {e}".splitlines()[0].rstrip(": ")
        raise UsageError(f"{flag} {path} cannot be read ({why}); pass a run's model.pt (--resume: a stopped run).") from None
    if not isinstance(state, dict) or state.get("script") != "a2c.py" or args.resume and "csv_bytes" not in state:
        raise UsageError(f"{path} was not saved by a2c.py, or by an older one: use the script that trained it.")
    if args.env_id not in (None, state["env_id"]):
        raise UsageError(f"{path} was trained on {state['env_id']}, not {args.env_id}; leave --env-id out.")
    args.env_id, args.seed = state["env_id"], state["args"]["seed"] if args.seed is None else args.seed
    given = [k for k, v in vars(args).items() if args.resume and k != "resume" and v not in (getattr(Args(), k), state["args"][k])]
    if given:  # a resumed run is the same run: its own arguments, every one
        raise UsageError(f"--resume continues {args.resume} with its own arguments: leave --{given[0].replace('_', '-')} out.")
    vars(args).update({k: v for k, v in state["args"].items() if args.resume and k != "resume"})
    return state

def evaluate(agent: Agent, args: Args, device: torch.device, run: Run, global_step: int) -> list[float]:
    """Returns of --eval-episodes episodes, one per env, acting deterministically, on seeds training never used."""
    if not args.eval_episodes:
        return []
    envs = make_envs(args.env_id, args.eval_episodes)
    (obs, _), space = envs.reset(seed=args.seed + 100_000), envs.single_action_space
    while not all(env.episode_count for env in envs.envs):  # each env's RecordEpisodeStatistics
        with torch.inference_mode():
            action = agent.act_deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device)).cpu().numpy()
        obs = envs.step(np.clip(action, space.low, space.high) if agent.continuous else action)[0]
    envs.close()
    returns = [float(env.return_queue[0]) for env in envs.envs]
    for r in returns:
        run.log(global_step, {"eval/episodic_return": r})
    return returns

class Stop:  # SIGINT, SIGTERM: training ends its iteration, writes checkpoint.pt and stops; a second one, evaluation: at once
    signum, training = 0, False
    @staticmethod
    def handler(signum: int, frame) -> None:
        if Stop.signum or not Stop.training:
            raise KeyboardInterrupt(signum)  # carries the signal's number, for the exit status
        Stop.signum = signum

if __name__ == "__main__":
    signal.signal(signal.SIGINT, Stop.handler)
    signal.signal(signal.SIGTERM, Stop.handler)
    try:
        main(tyro.cli(Args))
    except (UsageError, FloatingPointError) as e:  # one line; status 2 for a bad flag, environment or checkpoint
        print(f"a2c.py: error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt as e:  # exit status 128 + the signal's number, as a shell reports it
        print(f"a2c.py: stopped by {signal.Signals(e.args[0]).name}; metrics.csv is kept, model.pt with --save-model" +
              (f"; continue with --resume {e.args[1]}" if len(e.args) > 1 else "") + ".", file=sys.stderr)
        sys.exit(128 + e.args[0])
