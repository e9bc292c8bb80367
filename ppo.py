"""PPO for discrete actions: clipped surrogate, GAE, value clipping, entropy bonus.

Proximal Policy Optimization collects `num_steps` transitions from each of `num_envs` environments with the current
policy, estimates advantages with GAE, then takes `update_epochs` passes of minibatch steps on a clipped surrogate that
keeps the policy near the one that sampled. With rho_t = pi(a_t|s_t) / pi_old(a_t|s_t), each line names its function:

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)                           compute_gae
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   R_t = A_t + V(s_t)      compute_gae
    L_clip  = -mean( min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) )                   clipped_surrogate_loss
    L_V     = 0.5 * mean( max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2) )     value_loss
    L       = L_clip - ent_coef * mean(H[pi(.|s_t)]) + vf_coef * L_V                        ppo_loss
    KL(pi_old || pi) ~ mean( (rho_t - 1) - log rho_t )              (the k3 estimator)       approx_kl

Papers: Schulman et al. 2017, "Proximal Policy Optimization Algorithms"; Schulman et al. 2016 (GAE); the
implementation details follow Engstrom et al. 2020 and Huang et al. 2022 ("The 37 Implementation Details of PPO").
Differences from the paper: a time-limit truncation's reward is bootstrapped with gamma * V(true final observation);
the value loss is clipped (as in OpenAI baselines); advantages are normalized per minibatch; --target-kl ends the update
after an epoch whose mean approx_kl exceeds it. Defaults: CleanRL's for classic control but the learning rate, 1e-3.

Run:  python ppo.py --env-id CartPole-v1    (evaluate: --load-model runs/RUN/model.pt; continue a stopped run: --resume runs/RUN)
"""

# ---------------------------------------------------------------- imports
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from torch.utils.tensorboard import SummaryWriter

# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "ppo"  # the name of this experiment (part of the run directory's name)
    seed: int | None = None  # seed of random, numpy, torch and the environments (1; with --load-model the run's)
    torch_deterministic: bool = True  # set torch.backends.cudnn.deterministic
    cuda: bool = True  # use CUDA when it is available
    track: bool = False  # mirror the logged scalars to Weights & Biases
    wandb_project_name: str = "actor-critic"  # the wandb project name
    wandb_entity: str | None = None  # the wandb entity (team or user)
    capture_video: bool = False  # record videos of the first environment into the run directory's videos/
    save_model: bool = False  # save weights and arguments to model.pt in the run directory
    eval_episodes: int = 10  # deterministic (greedy) evaluation episodes after training; 0 skips it
    load_model: str | None = None  # path to a model.pt: evaluate it instead of training
    resume: str | None = None  # a stopped run's directory: continue it from its checkpoint.pt, with its own arguments
    checkpoint_interval: float = 300.0  # seconds between writes of the resumable checkpoint.pt (also written when stopped)
    runs_dir: str = "runs"  # where run directories are created
    torch_threads: int = 1  # CPU threads for torch (0 keeps torch's default); one is fastest for these small networks

    env_id: str | None = None  # gymnasium id, discrete actions (CartPole-v1; with --load-model the run's own)
    total_timesteps: int = 500_000  # total environment steps of the experiment
    learning_rate: float = 1e-3  # the Adam learning rate (annealed to 0 with --anneal-lr)
    num_envs: int = 4  # number of parallel environments
    num_steps: int = 128  # steps per environment in each rollout
    anneal_lr: bool = True  # anneal the learning rate linearly to 0 over training
    gamma: float = 0.99  # the discount factor
    gae_lambda: float = 0.95  # the GAE lambda (1.0: Monte-Carlo returns, 0.0: one-step TD)
    num_minibatches: int = 4  # number of minibatches per epoch
    update_epochs: int = 4  # passes over the rollout per update
    norm_adv: bool = True  # normalize advantages within each minibatch
    clip_coef: float = 0.2  # the surrogate clipping coefficient epsilon
    clip_vloss: bool = True  # clip the value loss around the old value estimates
    ent_coef: float = 0.01  # coefficient of the entropy bonus
    vf_coef: float = 0.5  # coefficient of the value loss
    max_grad_norm: float = 0.5  # maximum global gradient norm
    target_kl: float | None = None  # stop the update after an epoch whose mean approx KL exceeds this
    bootstrap_truncation: bool = True  # bootstrap a time limit with gamma * V(final obs), or end the return there (off)

class UsageError(ValueError):
    """A bad argument, environment or checkpoint: `python ppo.py` reports it in one line and exits with status 2."""

def check_args(args: Args) -> dict | None:  # bad arguments, checkpoints, spaces: one sentence before anything is built
    state = None if args.load_model is None and args.resume is None else load_checkpoint(args)  # fills in --env-id, --seed
    args.env_id, args.seed = args.env_id or "CartPole-v1", 1 if args.seed is None else args.seed
    try:
        env = gym.make(args.env_id, disable_env_checker=True)
    except gym.error.Error as e:  # an unknown id, or a missing package (the message names the pip command)
        raise UsageError(f"cannot make environment {args.env_id!r}: {e}") from None
    obs, act, batch = env.observation_space, env.action_space, args.num_envs * args.num_steps
    env.close()
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
        (not isinstance(act, gym.spaces.Discrete) or act.start != 0, f"ppo.py needs discrete actions and numbers its actions "
         f"from 0, but {args.env_id} has {act}: ppo_continuous.py trains continuous ones, a gym.ActionWrapper shifts them."),
        (not isinstance(obs, (gym.spaces.Box, gym.spaces.Discrete)) or obs.dtype == np.uint8 and len(obs.shape) >= 2,
         f"ppo.py takes Box or Discrete observations, not {obs} ({args.env_id}); for image observations a2c_atari.py "
         "trains a CNN, other spaces flatten with gym.wrappers.FlattenObservation."),
    ]:
        if bad:
            raise UsageError(problem)
    return state

# ---------------------------------------------------------------- environments
def make_envs(env_id: str, num_envs: int, capture_video: bool = False, run_dir: str = ".") -> gym.vector.VectorEnv:
    # SameStep autoreset: an observation returned with done=True starts the next episode, the true final one is in
    # infos["final_obs"]: no transition the autoreset invents is stored. No passive env checker (it sits in every step).
    def make_env(idx: int):  # a time limit if the environment has none
        kwargs = dict(disable_env_checker=True, max_episode_steps=gym.spec(env_id).max_episode_steps or 10_000)
        if capture_video and idx == 0:
            env = gym.wrappers.RecordVideo(gym.make(env_id, render_mode="rgb_array", **kwargs), f"{run_dir}/videos")
        else:
            env = gym.make(env_id, **kwargs)
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

class Agent(nn.Module):
    """Separate actor and critic MLPs (64-64, tanh); the policy head starts near uniform (std 0.01)."""

    def __init__(self, obs_dim: int, n_actions: int):
        super().__init__()
        self.critic = mlp(obs_dim, 1, out_std=1.0)
        self.actor = mlp(obs_dim, n_actions, out_std=0.01)

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def policy(self, x: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.actor(x), validate_args=False)  # no checks in the hot path

    def evaluate_actions(self, x: torch.Tensor, action: torch.Tensor):  # log pi(a|s), the entropy of pi(.|s), V(s)
        pi = self.policy(x)
        return pi.log_prob(action), pi.entropy(), self.get_value(x)

# ---------------------------------------------------------------- the algorithm's math
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
    """The one objective of the shared optimizer: L_clip - ent_coef * mean(entropy) + vf_coef * L_V."""
    return pg_loss - ent_coef * entropy_mean + vf_coef * v_loss

def approx_kl(logratio: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(pi_old || pi) from samples of pi_old: mean((r - 1) - log r), unbiased and >= 0."""
    return ((logratio.exp() - 1) - logratio).mean()

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
    obs_dim, n_actions = int(np.prod(envs.single_observation_space.shape)), int(envs.single_action_space.n)
    agent = Agent(obs_dim, n_actions).to(device)
    if state is not None:  # --load-model: evaluate the saved agent, no training; --resume: continue its training
        agent.load_state_dict(state["model"])
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)
    first_iteration, global_step = restore(state, optimizer) if args.resume else (1, 0)

    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = 0 if args.load_model is not None else args.total_timesteps // batch_size
    if args.total_timesteps % batch_size and num_iterations:
        print(f"--total-timesteps {args.total_timesteps:,} runs as {num_iterations} rollouts of {batch_size}.", flush=True)
    obs = np.zeros((args.num_steps, args.num_envs, obs_dim), dtype=np.float32)
    actions = np.zeros((args.num_steps, args.num_envs), dtype=np.int64)
    rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(2))

    next_obs, _ = envs.reset(seed=args.seed + global_step)  # resuming: new episodes, on seeds of their own
    next_checkpoint, Stop.training = time.time() + args.checkpoint_interval, True
    start_step, start_time = global_step, time.time()  # charts/SPS: this process's steps over its training time
    try:
        for iteration in range(first_iteration, num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / num_iterations)

            # ---- rollout
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step] = next_obs
                with torch.inference_mode():
                    actions[step] = agent.policy(torch.from_numpy(obs[step]).to(device)).sample().cpu().numpy()
                next_obs, reward, terminated, truncated, infos = envs.step(actions[step])
                check_finite(global_step, observation=next_obs, reward=reward)  # before the policy samples from it
                rewards[step], dones[step] = reward, terminated | truncated
                if (cut := truncated & ~terminated).any() and args.bootstrap_truncation:  # a time limit is no real end:
                    with torch.inference_mode():  # bootstrap with the value of the true final observation
                        final_obs = torch.as_tensor(np.stack(infos["final_obs"][cut]), dtype=torch.float32, device=device)
                        rewards[step, cut] += args.gamma * agent.get_value(final_obs).cpu().numpy()
                run.log_episodes(global_step, infos)

            # ---- advantages, from one batched pass that also gives pi_old's log-probabilities
            b_obs = torch.from_numpy(obs).to(device).reshape(batch_size, obs_dim)
            b_actions = torch.from_numpy(actions).to(device).reshape(-1)
            with torch.no_grad():
                b_logprobs, _, b_values = agent.evaluate_actions(b_obs, b_actions)
                next_value = agent.get_value(torch.as_tensor(next_obs, dtype=torch.float32, device=device))
                advantages, returns = compute_gae(torch.from_numpy(rewards).to(device), b_values.view(args.num_steps, -1),
                                                  torch.from_numpy(dones).to(device), next_value, args.gamma, args.gae_lambda)
                b_advantages, b_returns = advantages.reshape(-1), returns.reshape(-1)

            # ---- update
            stats = []  # per minibatch: policy loss, value loss, entropy, approx KL, clip fraction, grad norm
            for epoch in range(args.update_epochs):
                b_inds = torch.randperm(batch_size, device=device)
                for start in range(0, batch_size, minibatch_size):
                    mb = b_inds[start:start + minibatch_size]
                    newlogprob, entropy, newvalue = agent.evaluate_actions(b_obs[mb], b_actions[mb])
                    mb_logprob, mb_adv = b_logprobs[mb], b_advantages[mb]
                    if args.norm_adv:
                        mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                    pg_loss = clipped_surrogate_loss(newlogprob, mb_logprob, mb_adv, args.clip_coef)
                    v_loss = value_loss(newvalue, b_values[mb], b_returns[mb], args.clip_coef if args.clip_vloss else None)
                    entropy_mean = entropy.mean()
                    loss = ppo_loss(pg_loss, v_loss, entropy_mean, args.ent_coef, args.vf_coef)
                    optimizer.zero_grad()
                    loss.backward()
                    grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()
                    with torch.no_grad():
                        logratio = newlogprob - mb_logprob
                        clipfrac = ((logratio.exp() - 1.0).abs() > args.clip_coef).float().mean()
                        stats.append(torch.stack([pg_loss, v_loss, entropy_mean, approx_kl(logratio), clipfrac, grad_norm]))
                if args.target_kl is not None and torch.stack(stats[-args.num_minibatches:])[:, 3].mean() > args.target_kl:
                    break

            # ---- logging (means over every minibatch of the update)
            pg, vl, ent, kl, cf, gn = torch.stack(stats).mean(0).tolist()
            check_finite(global_step, policy_loss=pg, value_loss=vl, gradient_norm=gn)
            run.log(global_step, {"charts/SPS": (global_step - start_step) / (time.time() - start_time),
                "charts/learning_rate": optimizer.param_groups[0]["lr"], "losses/policy_loss": pg, "losses/value_loss": vl,
                "losses/entropy": ent, "losses/approx_kl": kl, "losses/clipfrac": cf, "losses/grad_norm": gn,
                "losses/explained_variance": explained_variance(b_values, b_returns),
                "charts/advantage_mean": b_advantages.mean(), "charts/advantage_std": b_advantages.std()})

            if Stop.signum or time.time() > next_checkpoint or iteration == num_iterations:  # the state --resume restores
                save_checkpoint(run.checkpoint, agent, args, optimizer, iteration=iteration + 1, global_step=global_step,
                                **run.progress)
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

def save_checkpoint(path: str, agent: Agent, args: Args, optimizer=None, **counters) -> None:
    """model.pt: weights, arguments; checkpoint.pt also the optimizer, counters, RNGs. Atomic, never non-finite."""
    if all(p.isfinite().all() for p in agent.parameters()):
        kind, key, *rest = np.random.get_state()  # its key as a list: torch.load(weights_only=True) refuses numpy arrays
        training = dict(optimizer=optimizer.state_dict(), **counters, rng=[random.getstate(), (kind, key.tolist(), *rest),
                        torch.get_rng_state(), torch.cuda.get_rng_state_all()]) if optimizer else {}
        torch.save(dict(script="ppo.py", env_id=args.env_id, args=asdict(args), model=agent.state_dict(), **training),
                   path + ".tmp")
        os.replace(path + ".tmp", path)

def restore(state: dict, optimizer: torch.optim.Optimizer) -> tuple[int, int]:  # checkpoint.pt's training state, back
    optimizer.load_state_dict(state["optimizer"])
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
    if not isinstance(state, dict) or state.get("script") != "ppo.py" or args.resume and "csv_bytes" not in state:
        raise UsageError(f"{path} was not saved by ppo.py, or by an older one: use the script that trained it.")
    if args.env_id not in (None, state["env_id"]):
        raise UsageError(f"{path} was trained on {state['env_id']}, not {args.env_id}; leave --env-id out.")
    args.env_id, args.seed = state["env_id"], state["args"]["seed"] if args.seed is None else args.seed
    given = [k for k, v in vars(args).items() if args.resume and k != "resume" and v not in (getattr(Args(), k), state["args"][k])]
    if given:  # a resumed run is the same run: its own arguments, every one
        raise UsageError(f"--resume continues {args.resume} with its own arguments: leave --{given[0].replace('_', '-')} out.")
    vars(args).update({k: v for k, v in state["args"].items() if args.resume and k != "resume"})
    return state

def evaluate(agent: Agent, args: Args, device: torch.device, run: Run, global_step: int) -> list[float]:
    """Greedy returns of --eval-episodes episodes, one per env, on seeds training never used (eval/episodic_return)."""
    if not args.eval_episodes:
        return []
    envs = make_envs(args.env_id, args.eval_episodes)
    obs, _ = envs.reset(seed=args.seed + 100_000)
    while not all(env.episode_count for env in envs.envs):  # each env's RecordEpisodeStatistics
        with torch.inference_mode():
            action = agent.actor(torch.as_tensor(obs, dtype=torch.float32, device=device)).argmax(-1)
        obs = envs.step(action.cpu().numpy())[0]
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
        print(f"ppo.py: error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt as e:  # exit status 128 + the signal's number, as a shell reports it
        print(f"ppo.py: stopped by {signal.Signals(e.args[0]).name}; metrics.csv is kept, model.pt with --save-model" +
              (f"; continue with --resume {e.args[1]}" if len(e.args) > 1 else "") + ".", file=sys.stderr)
        sys.exit(128 + e.args[0])
