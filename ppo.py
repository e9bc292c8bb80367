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
Differences from the paper: a time-limit truncation is not the end of the return — its reward is bootstrapped with
gamma * V(true final observation); the value loss is clipped (as in OpenAI baselines); advantages are normalized per
minibatch; --target-kl ends the update after an epoch whose mean approx_kl exceeds it. Defaults are CleanRL's
classic-control ones but the learning rate, 1e-3 (why: README, Results). Box observations are flattened, Discrete one-hot.

Run:  python ppo.py --env-id CartPole-v1        (evaluate a saved model: --load-model runs/.../model.pt)
"""

# ---------------------------------------------------------------- imports
import contextlib
import functools
import itertools
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro


# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "ppo"  # the name of this experiment (part of the run directory's name)
    seed: int = 1  # seed of random, numpy, torch and the environments
    torch_deterministic: bool = True  # set torch.backends.cudnn.deterministic
    cuda: bool = True  # use CUDA when it is available
    track: bool = False  # mirror the logged scalars to Weights & Biases
    wandb_project_name: str = "actor-critic"  # the wandb project name
    wandb_entity: str | None = None  # the wandb entity (team or user)
    capture_video: bool = False  # record videos of the first environment into the run directory's videos/
    save_model: bool = False  # save weights and arguments to model.pt in the run directory
    eval_episodes: int = 10  # deterministic (greedy) evaluation episodes after training; 0 skips it
    load_model: str | None = None  # path to a model.pt: evaluate it instead of training
    runs_dir: str = "runs"  # where run directories are created
    torch_threads: int = 1  # CPU threads for torch (0 keeps torch's default); one is fastest for these small networks

    env_id: str = "CartPole-v1"  # the gymnasium id of the environment (discrete actions)
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


def check_args(args: Args) -> None:
    """Refuse bad arguments, or spaces this script cannot handle, with one clear sentence before anything is built."""
    batch = args.num_envs * args.num_steps
    for bad, problem in [
        (min(args.num_envs, args.num_steps, args.update_epochs) < 1, "--num-envs, --num-steps, --update-epochs must be >= 1."),
        (args.num_minibatches < 1 or batch % args.num_minibatches, f"num_envs * num_steps = {batch} is not divisible by "
         f"--num-minibatches {args.num_minibatches}; choose a number of minibatches that divides it."),
        (args.load_model is None and args.total_timesteps < batch, f"--total-timesteps {args.total_timesteps} is smaller "
         f"than one rollout (num_envs * num_steps = {batch}); raise it or shrink the rollout."),
        (not args.learning_rate > 0, f"--learning-rate must be positive (got {args.learning_rate})."),
        (not 0 <= args.seed < 2**32 or args.eval_episodes < 0, f"--seed must be in [0, 2**32) and --eval-episodes "
         f"must be 0 or more (got {args.seed}, {args.eval_episodes})."),
        (args.load_model is not None and not os.path.isfile(args.load_model), f"--load-model {args.load_model} does "
         "not exist; pass the model.pt of a run made with --save-model."),
    ]:
        if bad:
            raise UsageError(problem)
    try:
        env = gym.make(args.env_id, disable_env_checker=True)
    except gym.error.Error as e:  # an unknown id, or a missing package (the message names the pip command)
        raise UsageError(f"cannot make environment {args.env_id!r}: {e}") from None
    obs, act = env.observation_space, env.action_space
    env.close()
    for bad, problem in [
        (not isinstance(act, gym.spaces.Discrete), f"ppo.py needs discrete actions, but {args.env_id} has {act}; "
         "use ppo_continuous.py for continuous ones."),
        (isinstance(obs, gym.spaces.Box) and obs.dtype == np.uint8 and len(obs.shape) >= 2,
         f"{args.env_id} has image observations {obs}; a2c_atari.py trains a CNN on frames."),
        (not isinstance(obs, (gym.spaces.Box, gym.spaces.Discrete)), f"ppo.py takes Box or Discrete observations, not "
         f"{obs}; flatten them with a wrapper (gym.wrappers.FlattenObservation)."),
    ]:
        if bad:
            raise UsageError(problem)


# ---------------------------------------------------------------- environments
def make_envs(env_id: str, num_envs: int, capture_video: bool = False, run_dir: str = ".") -> gym.vector.VectorEnv:
    # SAME_STEP autoreset: the observation returned with done=True already belongs to the next episode and the
    # true final observation is in infos["final_obs"], so no transition the autoreset invents is ever stored.
    def make_env(idx: int):  # no passive env checker (it stays in every step's call chain); a time limit if none
        kwargs = dict(disable_env_checker=True, max_episode_steps=gym.spec(env_id).max_episode_steps or 10_000)
        if capture_video and idx == 0:
            env = gym.wrappers.RecordVideo(gym.make(env_id, render_mode="rgb_array", **kwargs), f"{run_dir}/videos")
        else:
            env = gym.make(env_id, **kwargs)
        if not (isinstance(env.observation_space, gym.spaces.Box) and len(env.observation_space.shape) == 1):
            env = gym.wrappers.FlattenObservation(env)  # a Box of any shape to a vector, Discrete to one-hot
        return gym.wrappers.RecordEpisodeStatistics(env)
    return gym.vector.SyncVectorEnv([lambda i=i: make_env(i) for i in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


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

    def evaluate_actions(self, x: torch.Tensor, action: torch.Tensor):
        """log pi(a|s) of the given actions, the entropy of pi(.|s), and V(s)."""
        logp_all = torch.log_softmax(self.actor(x), dim=-1)
        logprob = logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        return logprob, -(logp_all.exp() * logp_all).sum(-1), self.get_value(x)


# ---------------------------------------------------------------- the algorithm's math
def compute_gae(rewards, values, dones, next_value, gamma: float, gae_lambda: float):
    """GAE over (num_steps, num_envs) tensors; a truncated step arrives bootstrapped (r += gamma V(final obs)), done."""
    not_done = 1.0 - dones
    next_values = torch.cat([values[1:], next_value[None]])
    deltas = rewards + gamma * next_values * not_done - values
    decay = gamma * gae_lambda * not_done
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        last = advantages[t] = deltas[t] + decay[t] * last
    return advantages, advantages + values


def clipped_surrogate_loss(newlogprob, oldlogprob, advantages, clip_coef: float) -> torch.Tensor:
    """-mean(min(r * A, clip(r, 1 - eps, 1 + eps) * A)), written as the max of the negated terms."""
    ratio = (newlogprob - oldlogprob).exp()
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    return torch.max(unclipped, clipped).mean()


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


# ---------------------------------------------------------------- acting in numpy
# For a 64-unit MLP on a handful of observations torch spends more time dispatching a call than computing it: acting
# in numpy makes a CartPole run 1.26x (1.12-1.39) faster (median, range; benchmarks/speed.py --against torch-acting). The
# numpy actor is read off Agent.actor at every rollout (a layer it cannot mirror is run by torch), and the log-prob of
# every action it sampled is checked against the torch Agent's: an edited network acts as the one trained, or stops.
NUMPY_ACTIVATIONS = {nn.Tanh: np.tanh, nn.ReLU: lambda x: np.maximum(x, 0.0), nn.Identity: lambda x: x}


def numpy_forward(net: nn.Sequential):
    """net as a numpy function, read off its layers (weights copied now), or through torch where it cannot be."""
    ops = []
    for layer in net if isinstance(net, nn.Sequential) else [net]:  # an edited actor may not be a Sequential
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            w, b = (p.detach().cpu().numpy().copy() for p in (layer.weight.T, layer.bias))
            ops.append(lambda x, w=w, b=b: x @ w + b)
        elif type(layer) in NUMPY_ACTIVATIONS:
            ops.append(NUMPY_ACTIVATIONS[type(layer)])
        else:  # a layer with no numpy twin yet: act through the torch module (slower, same numbers)
            return torch.inference_mode()(lambda x: net(torch.as_tensor(x, device=next(net.parameters()).device)).cpu().numpy())
    return lambda x: functools.reduce(lambda h, op: op(h), ops, x)


def sample_categorical(logits: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exact sample of Categorical(logits) by the Gumbel-max trick, and its log-probability."""
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    action = np.argmax(logp + rng.gumbel(size=logp.shape), axis=-1)
    return action, logp[np.arange(len(action)), action]


def check_acting(numpy_logprob: np.ndarray, torch_logprob: torch.Tensor, tolerance: float = 1e-3) -> None:
    """Stop if the numpy actor that sampled a rollout and the torch Agent disagree on its actions."""
    if not (gap := np.abs(numpy_logprob.reshape(-1) - torch_logprob.detach().cpu().numpy()).max()) <= tolerance:
        raise RuntimeError(f"the numpy actor and the torch Agent disagree on the rollout's log-probabilities by {gap:.3g}: "
                           + ("the weights are no longer finite (training diverged)." if np.isnan(gap) else
                              "sample_categorical mirrors the categorical of evaluate_actions; edit both alike."))


# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    check_args(args)
    torch.set_num_threads(args.torch_threads or torch.get_num_threads())
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)  # action sampling in the rollout
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    loaded = load_checkpoint(args.load_model, args.env_id, device) if args.load_model is not None else None
    run = Run(args)
    if loaded is not None:
        return run.finish(loaded, evaluate(loaded, args, device, run, global_step=0))

    envs = make_envs(args.env_id, args.num_envs, args.capture_video, run.dir)
    envs.action_space.seed(args.seed)
    obs_dim, n_actions = int(np.prod(envs.single_observation_space.shape)), int(envs.single_action_space.n)
    agent = Agent(obs_dim, n_actions).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)

    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size
    # Rollout storage, preallocated in numpy; it crosses to torch once per rollout, for one batched critic pass.
    obs = np.zeros((args.num_steps, args.num_envs, obs_dim), dtype=np.float32)
    actions = np.zeros((args.num_steps, args.num_envs), dtype=np.int64)
    logprobs, rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(3))

    global_step, start_time, interrupted = 0, time.time(), False
    next_obs, _ = envs.reset(seed=args.seed)
    try:
        for iteration in range(1, num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / num_iterations)

            # ---- rollout
            actor_np = numpy_forward(agent.actor)
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step] = next_obs
                actions[step], logprobs[step] = sample_categorical(actor_np(obs[step]), rng)
                next_obs, reward, terminated, truncated, infos = envs.step(actions[step])
                rewards[step], dones[step] = reward, terminated | truncated
                # A time limit is not a real end: bootstrap with the value of the true final observation.
                if (cut := truncated & ~terminated).any() and args.bootstrap_truncation:
                    with torch.inference_mode():
                        final_obs = torch.as_tensor(np.stack(infos["final_obs"][cut]), dtype=torch.float32, device=device)
                        rewards[step, cut] += args.gamma * agent.get_value(final_obs).cpu().numpy()
                run.log_episodes(global_step, infos)

            # ---- advantages, from one batched pass of the critic (and of the actor, which checks the acting)
            b_obs = torch.from_numpy(obs).to(device).reshape(batch_size, obs_dim)
            b_actions = torch.from_numpy(actions).to(device).reshape(-1)
            with torch.no_grad():
                b_logprobs, _, b_values = agent.evaluate_actions(b_obs, b_actions)
                check_acting(logprobs, b_logprobs)
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
            run.log(global_step, {
                "charts/learning_rate": optimizer.param_groups[0]["lr"], "charts/SPS": global_step / (time.time() - start_time),
                "losses/policy_loss": pg, "losses/value_loss": vl, "losses/entropy": ent, "losses/approx_kl": kl,
                "losses/clipfrac": cf, "losses/grad_norm": gn,
                "losses/explained_variance": explained_variance(b_values, b_returns),
                "charts/advantage_mean": b_advantages.mean(), "charts/advantage_std": b_advantages.std()})
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at step {global_step:,}", flush=True)
    finally:
        envs.close()
        if args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), agent, args, obs_dim, n_actions)
    return run.finish(agent, [] if interrupted else evaluate(agent, args, device, run, global_step))


# ---------------------------------------------------------------- run plumbing: logging, checkpoints, evaluation
class Run:
    """runs/{env_id}__{exp_name}__{seed}__{unix_time}/: args.json, metrics.csv (long format, flushed per row), wandb."""

    def __init__(self, args: Args):
        base = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}".replace("/", "_")
        os.makedirs(args.runs_dir, exist_ok=True)
        for n in itertools.count(1):  # os.mkdir is atomic: two runs started in the same second never share one
            self.dir = os.path.join(args.runs_dir, base if n == 1 else f"{base}_{n}")
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.dir)
                break
        with open(os.path.join(self.dir, "args.json"), "w") as f:
            json.dump(asdict(args), f, indent=2)
        self.file = open(os.path.join(self.dir, "metrics.csv"), "w")
        self.file.write("global_step,wall_time,name,value\n")
        if args.track:
            import wandb  # only when tracking: it takes half a second to import
        self.wandb = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args),
                                name=os.path.basename(self.dir), dir=self.dir) if args.track else None
        self.total, self.episodic_returns, self.start, self.last_print = args.total_timesteps, [], time.time(), 0.0
        print(f"run directory: {self.dir}", flush=True)

    def log(self, step: int, scalars: dict) -> None:
        """One row per scalar; when charts/SPS is among them, a progress line every two seconds."""
        scalars, wall = {name: float(value) for name, value in scalars.items()}, time.time() - self.start
        self.file.writelines(f"{step},{wall:.3f},{name},{value}\n" for name, value in scalars.items())
        self.file.flush()
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)
        if "charts/SPS" in scalars and time.time() - self.last_print > 2.0:
            self.last_print, sps = time.time(), max(scalars["charts/SPS"], 1.0)
            print(f"step {step:>9,}/{self.total:,} | {sps:>6,.0f} SPS | return (last 20) {self.recent():8.2f} | "
                  f"ETA {(self.total - step) / sps:5.0f}s", flush=True)

    def log_episodes(self, step: int, infos: dict) -> None:  # the episodes that ended in this vector step
        if "final_info" in infos and "_episode" in infos["final_info"]:
            ep = infos["final_info"]["episode"]
            for i in np.flatnonzero(infos["final_info"]["_episode"]):
                self.episodic_returns.append((step, float(ep["r"][i])))
                self.log(step, {"charts/episodic_return": ep["r"][i], "charts/episodic_length": ep["l"][i]})

    def recent(self) -> float:
        return np.mean([r for _, r in self.episodic_returns[-20:]]) if self.episodic_returns else float("nan")

    def finish(self, agent, eval_returns: list, **extra) -> dict:
        """Close the files and print a closing line; main's return value."""
        self.file.close()
        if self.wandb is not None:
            self.wandb.finish()
        evaluation = f", evaluation {np.mean(eval_returns):.2f} ({len(eval_returns)} episodes)" if eval_returns else ""
        print(f"done in {time.time() - self.start:.0f}s: return (last 20) {self.recent():.2f}{evaluation}; {self.dir}")
        return dict(run_dir=self.dir, episodic_returns=self.episodic_returns, eval_returns=eval_returns, agent=agent, **extra)


def save_checkpoint(path: str, agent: Agent, args: Args, obs_dim: int, n_actions: int) -> None:
    state = {"script": "ppo.py", "env_id": args.env_id, "obs_dim": obs_dim, "n_actions": n_actions,
             "args": asdict(args), "model": agent.state_dict()}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written model.pt


def load_checkpoint(path: str, env_id: str, device: torch.device) -> Agent:
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("script") != "ppo.py":
        raise UsageError(f"{path} was not saved by ppo.py; load it with the script that trained it.")
    if state["env_id"] != env_id:
        raise UsageError(f"{path} was trained on {state['env_id']}, not {env_id}; pass --env-id {state['env_id']}.")
    agent = Agent(state["obs_dim"], state["n_actions"]).to(device)
    agent.load_state_dict(state["model"])
    return agent


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


if __name__ == "__main__":
    try:
        main(tyro.cli(Args))
    except UsageError as e:  # one line and status 2, as argparse and tyro report a bad flag
        print(f"ppo.py: error: {e}", file=sys.stderr)
        sys.exit(2)
