"""PPO for continuous actions: Gaussian policy, clipped surrogate, GAE, observation and reward normalization.

ppo.py with a diagonal Gaussian policy N(mu(s), exp(log_std)^2) (state-independent log-std) and observations and rewards
normalized by running statistics shared by all envs, saved, frozen at evaluation; rho_t = pi(a_t|s_t) / pi_old(a_t|s_t):

    o_t     = clip((s_t - mean_obs) / sqrt(var_obs + 1e-8), -10, 10)                        normalize_obs
    r~_t    = clip(r_t / sqrt(var(G) + 1e-8), -10, 10),   G_t = gamma G_{t-1} + r_t (0 at a done)   scale_reward
    delta_t = r~_t + gamma * V(o_{t+1}) * (1 - done_t) - V(o_t)                              compute_gae
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   R_t = A_t + V(o_t)          compute_gae
    L_clip  = -mean( min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) )                       clipped_surrogate_loss
    L_V     = 0.5 * mean( max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2) )         value_loss
    L       = L_clip - ent_coef * mean(H[pi(.|s_t)]) + vf_coef * L_V                            ppo_loss
    KL(pi_old || pi) ~ mean( (rho_t - 1) - log rho_t )              (the k3 estimator)           approx_kl

Papers: Schulman et al. 2017 (PPO), 2016 (GAE); Andrychowicz et al. 2021 (normalization, state-independent log-std).
Differences from the paper: a truncation's scaled reward is bootstrapped with gamma * V(normalized true final obs); the
loss sees the unclipped action (clipped only in the environment); value-loss clipping; per-minibatch advantage normalization.
Run:  python ppo_continuous.py --env-id HalfCheetah-v5  (evaluate: --load-model runs/RUN/model.pt; continue: --resume runs/RUN)
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

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from gymnasium.wrappers.utils import RunningMeanStd  # Chan et al.'s parallel mean / variance, in float64
from torch.utils.tensorboard import SummaryWriter

# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "ppo_continuous"  # the name of this experiment (part of the run directory's name)
    seed: int | None = None  # seed of random, numpy, torch and the environments (1; with --load-model the run's)
    torch_deterministic: bool = True  # set torch.backends.cudnn.deterministic
    cuda: bool = True  # use CUDA when it is available
    track: bool = False  # mirror the logged scalars to Weights & Biases
    wandb_project_name: str = "actor-critic"  # the wandb project name
    wandb_entity: str | None = None  # the wandb entity (team or user)
    capture_video: bool = False  # record videos of the first environment into the run directory's videos/
    save_model: bool = False  # save weights, normalization statistics and arguments to model.pt in the run directory
    eval_episodes: int = 10  # deterministic evaluation episodes (the mean action, frozen statistics); 0 skips it
    load_model: str | None = None  # path to a model.pt: evaluate it instead of training
    resume: str | None = None  # a stopped run's directory: continue it from its checkpoint.pt, with its own arguments
    checkpoint_interval: float = 300.0  # seconds between writes of the resumable checkpoint.pt (also written when stopped)
    runs_dir: str = "runs"  # where run directories are created
    torch_threads: int = 1  # CPU threads for torch (0 keeps torch's default); one is fastest for these small networks
    env_id: str | None = None  # gymnasium id, continuous actions (HalfCheetah-v5; with --load-model the run's own)
    total_timesteps: int = 1_000_000  # total environment steps of the experiment
    learning_rate: float = 3e-4  # the Adam learning rate
    num_envs: int = 1  # number of parallel environments
    num_steps: int = 2048  # steps per environment in each rollout
    anneal_lr: bool = True  # anneal the learning rate linearly to 0 over training
    gamma: float = 0.99  # the discount factor
    gae_lambda: float = 0.95  # the GAE lambda (1.0: Monte-Carlo returns, 0.0: one-step TD)
    num_minibatches: int = 32  # number of minibatches per epoch
    update_epochs: int = 10  # passes over the rollout per update
    norm_adv: bool = True  # normalize advantages within each minibatch
    clip_coef: float = 0.2  # the surrogate clipping coefficient epsilon
    clip_vloss: bool = True  # clip the value loss around the old value estimates
    ent_coef: float = 0.0  # coefficient of the entropy bonus
    vf_coef: float = 0.5  # coefficient of the value loss
    max_grad_norm: float = 0.5  # maximum global gradient norm
    target_kl: float | None = None  # stop the update after an epoch whose mean approx KL exceeds this

class UsageError(ValueError):
    """A bad argument, environment or checkpoint: `python ppo_continuous.py` reports it in one line and exits with status 2."""

def check_args(args: Args) -> dict | None:  # bad arguments, checkpoints, spaces: one sentence before anything is built
    state = None if args.load_model is None and args.resume is None else load_checkpoint(args)  # fills in --env-id, --seed
    args.env_id, args.seed = args.env_id or "HalfCheetah-v5", 1 if args.seed is None else args.seed
    batch = args.num_envs * args.num_steps
    for bad, problem in [  # every comparison with NaN is False: NaN fails every range
        (min(args.num_envs, args.num_steps, args.update_epochs) < 1, "--num-envs, --num-steps, --update-epochs must be >= 1."),
        (args.num_minibatches < 1 or batch % args.num_minibatches, f"--num-minibatches must divide the rollout, {batch}."),
        (args.load_model is None and args.total_timesteps < batch, f"--total-timesteps must cover one rollout ({batch} steps)."),
        (not (0 < args.learning_rate < math.inf and 0 < args.clip_coef < math.inf), "--learning-rate and --clip-coef must be "
         f"positive and finite (got {args.learning_rate}, {args.clip_coef})."),
        (not args.max_grad_norm > 0, f"--max-grad-norm must be positive (inf: no clipping; got {args.max_grad_norm})."),
        (not (0 <= args.gamma <= 1 and 0 <= args.gae_lambda <= 1), f"--gamma and --gae-lambda must lie in [0, 1] (got "
         f"{args.gamma}, {args.gae_lambda})."),
        (not (0 <= args.ent_coef < math.inf and 0 <= args.vf_coef < math.inf), "--ent-coef and --vf-coef must be finite and "
         f">= 0 (got {args.ent_coef}, {args.vf_coef})."),
        (not (args.target_kl is None or args.target_kl >= 0), f"--target-kl must be >= 0 (got {args.target_kl})."),
        (not 0 <= args.seed < 2**32, f"--seed must be in [0, 2**32) (got {args.seed})."),
        (min(args.eval_episodes, args.torch_threads) < 0, "--eval-episodes and --torch-threads must be >= 0."),
        (not args.checkpoint_interval > 0, f"--checkpoint-interval must be positive (got {args.checkpoint_interval})."),
    ]:
        if bad:
            raise UsageError(problem)
    os.environ.setdefault("MUJOCO_GL", "egl" if sys.platform == "linux" else "glfw")  # Linux: video without a display
    with contextlib.suppress(ImportError):  # MuJoCo's warnings as Python's, each once, not lines in ./MUJOCO_LOG.TXT
        import mujoco  # (after MUJOCO_GL, which it reads at import)
        mujoco.set_mju_user_warning(functools.cache(lambda message: warnings.warn(message, RuntimeWarning)))
    try:  # (after the ranges: making a MuJoCo environment may warn, and a refusal is one line)
        env = gym.make(args.env_id, disable_env_checker=True)
    except gym.error.Error as e:  # an unknown id, or a missing package (the message names the pip command)
        raise UsageError(f"cannot make environment {args.env_id!r}: {e}") from None
    obs, act = env.observation_space, env.action_space
    env.close()
    if not isinstance(act, gym.spaces.Box) or len(act.shape) != 1:
        raise UsageError(f"ppo_continuous.py needs a one-dimensional continuous (Box) action space, but {args.env_id} has "
                         f"{act}; use ppo.py for discrete actions.")
    if not isinstance(obs, (gym.spaces.Box, gym.spaces.Discrete)) or obs.dtype == np.uint8 and len(obs.shape) >= 2:
        raise UsageError(f"ppo_continuous.py takes Box or Discrete observations, not {obs} ({args.env_id}); for image "
                         "observations a2c_atari.py trains a CNN, other spaces flatten with gym.wrappers.FlattenObservation.")
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
        return gym.wrappers.RecordEpisodeStatistics(gym.wrappers.ClipAction(env))  # the loss sees the unclipped action
    return gym.vector.SyncVectorEnv([lambda i=i: make_env(i) for i in range(num_envs)], autoreset_mode="SameStep")

# ---------------------------------------------------------------- networks
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer

def mlp(in_dim: int, out_dim: int, out_std: float) -> nn.Sequential:
    return nn.Sequential(layer_init(nn.Linear(in_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
                         layer_init(nn.Linear(64, out_dim), std=out_std))

class Agent(nn.Module):  # separate actor and critic MLPs (64-64, tanh); the mean head starts near 0 (std 0.01), log-std 0
    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.critic, self.actor_mean = mlp(obs_dim, 1, out_std=1.0), mlp(obs_dim, act_dim, out_std=0.01)
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def policy(self, x: torch.Tensor) -> torch.distributions.Distribution:  # N(mu(s), exp(log_std)^2) over the action vector
        normal = torch.distributions.Normal(self.actor_mean(x), self.actor_logstd.exp(), validate_args=False)
        return torch.distributions.Independent(normal, 1, validate_args=False)  # log-prob and entropy: sums over dimensions

    def evaluate_actions(self, x: torch.Tensor, action: torch.Tensor):  # log pi(a|s), the entropy of pi(.|s), V(s)
        pi = self.policy(x)
        return pi.log_prob(action), pi.entropy(), self.get_value(x)

# ---------------------------------------------------------------- the algorithm's math
def normalize_obs(obs_rms: RunningMeanStd, obs: np.ndarray, update: bool = False) -> np.ndarray:
    """o_t, with the statistics updated by this batch first when `update`; one set of statistics serves all envs."""
    if update:
        obs_rms.update(obs)
    return np.clip((obs - obs_rms.mean) / np.sqrt(obs_rms.var + 1e-8), -10.0, 10.0).astype(np.float32)

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

def clipped_surrogate_loss(newlogprob, oldlogprob, advantages, clip_coef: float) -> torch.Tensor:
    """-mean(min(r * A, clip(r, 1 - eps, 1 + eps) * A)), written as the max of the negated terms."""
    ratio = (newlogprob - oldlogprob).exp()
    return torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)).mean()

def value_loss(newvalue, oldvalue, returns, clip_coef: float | None) -> torch.Tensor:
    """0.5 * mean squared error; with clip_coef, the max of the plain and the clipped-around-old errors."""
    unclipped = (newvalue - returns) ** 2
    if clip_coef is None:
        return 0.5 * unclipped.mean()
    v_clipped = oldvalue + torch.clamp(newvalue - oldvalue, -clip_coef, clip_coef)
    return 0.5 * torch.max(unclipped, (v_clipped - returns) ** 2).mean()

def ppo_loss(pg_loss, v_loss, entropy_mean, ent_coef: float, vf_coef: float) -> torch.Tensor:
    return pg_loss - ent_coef * entropy_mean + vf_coef * v_loss  # one objective: actor and critic share the optimizer

def approx_kl(logratio: torch.Tensor) -> torch.Tensor:
    return ((logratio.exp() - 1) - logratio).mean()  # k3: unbiased for KL(pi_old || pi) on pi_old's samples, and >= 0

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
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    agent = Agent(obs_dim, act_dim).to(device)
    obs_rms, return_rms = RunningMeanStd(shape=(obs_dim,)), RunningMeanStd(shape=())  # observation and return statistics
    if state is not None:  # --load-model: evaluate the saved agent with the statistics it was trained with, no training;
        agent.load_state_dict(state["model"])  # --resume: continue its training
        vars(obs_rms).update({k: v.numpy() for k, v in state["obs_rms"].items()})
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)
    first_iteration, global_step = restore(state, optimizer, return_rms) if args.resume else (1, 0)
    batch_size = args.num_envs * args.num_steps
    num_iterations = 0 if args.load_model is not None else args.total_timesteps // batch_size
    if args.total_timesteps % batch_size and num_iterations:
        print(f"--total-timesteps {args.total_timesteps:,} runs as {num_iterations} rollouts of {batch_size}.", flush=True)
    obs, actions = (np.zeros((args.num_steps, args.num_envs, dim), dtype=np.float32) for dim in (obs_dim, act_dim))
    rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(2))
    # resuming: new episodes, on seeds of their own, so each env's discounted return G (scale_reward) restarts at 0 too
    next_obs = normalize_obs(obs_rms, envs.reset(seed=args.seed + global_step)[0], update=args.load_model is None)
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
                    actions[step] = agent.policy(torch.from_numpy(next_obs).to(device)).sample().cpu().numpy()
                    raw_obs, reward, terminated, truncated, infos = envs.step(actions[step])
                    check_finite(global_step, observation=raw_obs, reward=reward)  # before they reach the statistics
                    dones[step] = done = terminated | truncated
                    rewards[step], discounted = scale_reward(reward, discounted, done, return_rms, args.gamma)
                    if (cut := truncated & ~terminated).any():  # a time limit is no real end: bootstrap with V(true final obs)
                        final_obs = normalize_obs(obs_rms, np.stack(infos["final_obs"][cut]))
                        rewards[step, cut] += args.gamma * agent.get_value(torch.from_numpy(final_obs).to(device)).cpu().numpy()
                    next_obs = normalize_obs(obs_rms, raw_obs, update=True)
                    run.log_episodes(global_step, infos)

            # ---- advantages: the rollout crosses to torch once, for one batched pass that also gives pi_old's log-probabilities
            b_obs, b_actions = (torch.from_numpy(x).to(device).flatten(0, 1) for x in (obs, actions))  # (steps * envs, dim)
            with torch.no_grad():
                b_logprobs, _, b_values = agent.evaluate_actions(b_obs, b_actions)
                next_value = agent.get_value(torch.from_numpy(next_obs).to(device))
                advantages, returns = compute_gae(torch.from_numpy(rewards).to(device), b_values.view(args.num_steps, -1),
                                                  torch.from_numpy(dones).to(device), next_value, args.gamma, args.gae_lambda)
                b_advantages, b_returns = advantages.reshape(-1), returns.reshape(-1)

            # ---- update
            stats = []  # per minibatch: policy loss, value loss, entropy, approx KL, clip fraction, grad norm
            for epoch in range(args.update_epochs):
                for mb in torch.randperm(batch_size, device=device).chunk(args.num_minibatches):
                    newlogprob, entropy, newvalue = agent.evaluate_actions(b_obs[mb], b_actions[mb])
                    mb_logprob, mb_adv = b_logprobs[mb], b_advantages[mb]
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8) if args.norm_adv else mb_adv
                    pg_loss = clipped_surrogate_loss(newlogprob, mb_logprob, mb_adv, args.clip_coef)
                    v_loss = value_loss(newvalue, b_values[mb], b_returns[mb], args.clip_coef if args.clip_vloss else None)
                    loss = ppo_loss(pg_loss, v_loss, entropy_mean := entropy.mean(), args.ent_coef, args.vf_coef)
                    optimizer.zero_grad()
                    loss.backward()
                    grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()
                    logratio = (newlogprob - mb_logprob).detach()
                    clipfrac = ((logratio.exp() - 1.0).abs() > args.clip_coef).float().mean()
                    stats.append(torch.stack([pg_loss, v_loss, entropy_mean, approx_kl(logratio), clipfrac, grad_norm]).detach())
                if args.target_kl is not None and torch.stack(stats[-args.num_minibatches:])[:, 3].mean() > args.target_kl:
                    break

            # ---- logging (means over every minibatch of the update)
            pg, vl, ent, kl, cf, gn = torch.stack(stats).mean(0).tolist()
            check_finite(global_step, policy_loss=pg, value_loss=vl, gradient_norm=gn)
            run.log(global_step, {"charts/learning_rate": optimizer.param_groups[0]["lr"],
                                  "charts/SPS": (global_step - start_step) / (time.time() - start_time), "losses/policy_loss": pg,
                                  "losses/value_loss": vl, "losses/entropy": ent, "losses/approx_kl": kl, "losses/clipfrac": cf,
                                  "losses/grad_norm": gn, "losses/explained_variance": explained_variance(b_values, b_returns),
                                  "charts/advantage_mean": b_advantages.mean(), "charts/advantage_std": b_advantages.std()})
            if Stop.signum or time.time() > next_checkpoint or iteration == num_iterations:  # the state --resume restores
                save_checkpoint(run.checkpoint, agent, obs_rms, args, optimizer, return_rms, iteration=iteration + 1,
                                global_step=global_step, **run.progress)
                if Stop.signum:
                    raise KeyboardInterrupt(Stop.signum, run.dir)
                next_checkpoint = time.time() + args.checkpoint_interval
    finally:  # also when stopped by SIGINT / SIGTERM or a non-finite number: the model first, then the environments
        Stop.training = False
        if args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), agent, obs_rms, args)
        envs.close()
        run.tb.flush()
    return run.finish(agent, evaluate(agent, obs_rms, args, device, run, global_step), obs_rms=obs_rms, return_rms=return_rms)

# ---------------------------------------------------------------- run plumbing: logging, checkpoints, evaluation
class Run:  # runs/{env_id}__{exp_name}__{seed}__{unix_time}/: args.json, metrics.csv (flushed per row), TensorBoard, wandb
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

def save_checkpoint(path: str, agent: Agent, obs_rms, args: Args, optimizer=None, return_rms=None, **counters) -> None:
    """model.pt: weights, obs statistics, arguments; checkpoint.pt also optimizer, return statistics, counters, RNGs. Atomic."""
    if all(p.isfinite().all() for p in agent.parameters()):
        stats = lambda rms: {k: torch.as_tensor(v, dtype=torch.float64) for k, v in vars(rms).items()}  # mean, var, count
        kind, key, *rest = np.random.get_state()  # its key as a list: torch.load(weights_only=True) refuses numpy arrays
        training = dict(optimizer=optimizer.state_dict(), return_rms=stats(return_rms), **counters, rng=[random.getstate(),
                        (kind, key.tolist(), *rest), torch.get_rng_state(), torch.cuda.get_rng_state_all()]) if optimizer else {}
        torch.save(dict(script="ppo_continuous.py", env_id=args.env_id, args=asdict(args), model=agent.state_dict(),
                        obs_rms=stats(obs_rms), **training), path + ".tmp")
        os.replace(path + ".tmp", path)

def restore(state: dict, optimizer: torch.optim.Optimizer, return_rms) -> tuple[int, int]:  # checkpoint.pt's training state
    optimizer.load_state_dict(state["optimizer"])  # (the observation statistics came back with the weights, in main)
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
    if not isinstance(state, dict) or state.get("script") != "ppo_continuous.py" or args.resume and "csv_bytes" not in state:
        raise UsageError(f"{path} was not saved by ppo_continuous.py, or by an older one: use the script that trained it.")
    if args.env_id not in (None, state["env_id"]):
        raise UsageError(f"{path} was trained on {state['env_id']}, not {args.env_id}; leave --env-id out.")
    args.env_id, args.seed = state["env_id"], state["args"]["seed"] if args.seed is None else args.seed
    given = [k for k, v in vars(args).items() if args.resume and k != "resume" and v not in (getattr(Args(), k), state["args"][k])]
    if given:  # a resumed run is the same run: its own arguments, every one
        raise UsageError(f"--resume continues {args.resume} with its own arguments: leave --{given[0].replace('_', '-')} out.")
    vars(args).update({k: v for k, v in state["args"].items() if args.resume and k != "resume"})
    return state

def evaluate(agent: Agent, obs_rms, args: Args, device: torch.device, run: Run, global_step: int) -> list[float]:
    """Mean-action returns of --eval-episodes episodes, one per env, on unseen seeds; the statistics stay frozen."""
    if not args.eval_episodes:
        return []
    envs = make_envs(args.env_id, args.eval_episodes)
    obs, _ = envs.reset(seed=args.seed + 100_000)
    while not all(env.episode_count for env in envs.envs):  # each env's RecordEpisodeStatistics
        with torch.inference_mode():  # the mean action, on observations normalized with the frozen statistics
            obs = envs.step(agent.actor_mean(torch.as_tensor(normalize_obs(obs_rms, obs), device=device)).cpu().numpy())[0]
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
        print(f"ppo_continuous.py: error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt as e:  # exit status 128 + the signal's number, as a shell reports it
        print(f"ppo_continuous.py: stopped by {signal.Signals(e.args[0]).name}; metrics.csv is kept, model.pt with "
              "--save-model" + (f"; continue with --resume {e.args[1]}" if len(e.args) > 1 else "") + ".", file=sys.stderr)
        sys.exit(128 + e.args[0])
