"""PPO for continuous actions: Gaussian policy, clipped surrogate, GAE, observation and reward normalization.

Proximal Policy Optimization collects `num_steps` transitions from each of `num_envs` environments with a
diagonal Gaussian policy N(mu(s), exp(log_std)^2) whose log-std is a learned, state-independent vector,
estimates advantages with GAE and takes `update_epochs` passes of minibatch steps on the clipped surrogate.
Observations are normalized and rewards scaled by running statistics shared by all environments; the
statistics are saved with the weights, frozen during evaluation and restored on load.

With r_t = pi(a_t|s_t) / pi_old(a_t|s_t) and advantages A_t (normalized per minibatch with --norm-adv):

    o_t     = clip((s_t - mean_obs) / sqrt(var_obs + 1e-8), -10, 10)
    r~_t    = clip(r_t / sqrt(var(G) + 1e-8), -10, 10),     G_t = gamma * G_{t-1} + r_t (reset when done)
    delta_t = r~_t + gamma * V(o_{t+1}) * (1 - done_t) - V(o_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},      R_t = A_t + V(o_t)
    L_clip  = -mean( min(r_t * A_t, clip(r_t, 1 - eps, 1 + eps) * A_t) )
    L_V     = 0.5 * mean( max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2) )  (--clip-vloss)
    L       = L_clip - ent_coef * mean(entropy) + vf_coef * L_V

Papers: Schulman et al. 2017, "Proximal Policy Optimization Algorithms"; Schulman et al. 2016 (GAE);
Andrychowicz et al. 2021, "What Matters in On-Policy RL" (normalization, state-independent log-std).
Differences from the paper: a time-limit truncation is not treated as the end of the return — its scaled
reward is bootstrapped with gamma * V(true final observation, normalized with the current statistics); the
sampled action is clipped to the bounds only when it is sent to the environment (the log-probability is of
the unclipped sample); the value loss is clipped; approx_kl is the k3 estimator mean((r - 1) - log r).

Run:  python ppo_continuous.py --env-id HalfCheetah-v5   (evaluate a saved model: --load-model runs/.../model.pt)
"""

# ---------------------------------------------------------------- imports
import csv
import json
import math
import os
import random
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
    exp_name: str = "ppo_continuous"
    """the name of this experiment (part of the run directory's name)"""
    seed: int = 1
    """seed of random, numpy, torch and the environments"""
    torch_deterministic: bool = True
    """set torch.backends.cudnn.deterministic"""
    cuda: bool = True
    """use CUDA when it is available"""
    track: bool = False
    """mirror the logged scalars to Weights & Biases"""
    wandb_project_name: str = "actor-critic"
    """the wandb project name"""
    wandb_entity: str | None = None
    """the wandb entity (team or user)"""
    capture_video: bool = False
    """record videos of the first environment into the run directory's videos/"""
    save_model: bool = False
    """save weights, normalization statistics and arguments to model.pt in the run directory"""
    eval_episodes: int = 10
    """deterministic evaluation episodes (the mean action, frozen statistics) after training; 0 skips it"""
    load_model: str | None = None
    """path to a model.pt: evaluate it for --eval-episodes episodes instead of training"""
    runs_dir: str = "runs"
    """where run directories are created"""
    torch_threads: int = 1
    """CPU threads for torch (0 keeps torch's default); one is fastest for these small networks"""

    env_id: str = "HalfCheetah-v5"
    """the gymnasium id of the environment (continuous actions)"""
    total_timesteps: int = 1_000_000
    """total environment steps of the experiment"""
    learning_rate: float = 3e-4
    """the Adam learning rate"""
    num_envs: int = 1
    """number of parallel environments"""
    num_steps: int = 2048
    """steps per environment in each rollout"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over training"""
    gamma: float = 0.99
    """the discount factor"""
    gae_lambda: float = 0.95
    """the GAE lambda (1.0: Monte-Carlo returns, 0.0: one-step TD)"""
    num_minibatches: int = 32
    """number of minibatches per epoch"""
    update_epochs: int = 10
    """passes over the rollout per update"""
    norm_adv: bool = True
    """normalize advantages within each minibatch"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient epsilon"""
    clip_vloss: bool = True
    """clip the value loss around the old value estimates"""
    ent_coef: float = 0.0
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """maximum global gradient norm"""
    target_kl: float | None = None
    """stop the update after an epoch whose mean approx KL exceeds this"""
    norm_obs: bool = True
    """normalize observations with running statistics (saved in model.pt, frozen at evaluation)"""
    norm_reward: bool = True
    """scale rewards by the running std of the discounted return"""


def check_args(args: Args) -> None:
    """Reject bad arguments with one clear sentence, before any environment is built."""
    batch = args.num_envs * args.num_steps
    if args.num_envs < 1 or args.num_steps < 1:
        raise ValueError(f"--num-envs and --num-steps must be at least 1 (got {args.num_envs}, {args.num_steps}).")
    if args.num_minibatches < 1 or batch % args.num_minibatches != 0:
        raise ValueError(
            f"num_envs * num_steps = {batch} is not divisible by --num-minibatches {args.num_minibatches}; "
            "choose a number of minibatches that divides the batch."
        )
    if args.load_model is None and args.total_timesteps < batch:
        raise ValueError(
            f"--total-timesteps {args.total_timesteps} is smaller than one batch (num_envs * num_steps = {batch}); "
            "raise --total-timesteps or shrink the rollout."
        )
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be positive (got {args.learning_rate}).")
    if args.eval_episodes < 0:
        raise ValueError(f"--eval-episodes must be 0 or more (got {args.eval_episodes}).")
    try:
        spec = gym.spec(args.env_id)
    except gym.error.Error as e:
        raise ValueError(f"unknown environment id {args.env_id!r} ({e}); check the spelling and version.") from None
    if "mujoco" in str(spec.entry_point):
        try:
            import mujoco  # noqa: F401
        except ImportError:
            raise ValueError(f'{args.env_id} needs MuJoCo, which is not installed; run: pip install "gymnasium[mujoco]"') from None


# ---------------------------------------------------------------- environments
def make_env(env_id: str, idx: int, capture_video: bool, run_dir: str):
    def thunk():
        # The passive checker only inspects the first steps but stays in the per-step call chain.
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array", disable_env_checker=True)
            env = gym.wrappers.RecordVideo(env, os.path.join(run_dir, "videos"))
        else:
            env = gym.make(env_id, disable_env_checker=True)
        return gym.wrappers.RecordEpisodeStatistics(env)

    return thunk


def make_envs(env_id: str, num_envs: int, capture_video: bool = False, run_dir: str = ".") -> gym.vector.VectorEnv:
    # SAME_STEP autoreset: the observation returned with done=True already belongs to the next episode,
    # and the true final observation is in infos["final_obs"], so no invented transition is ever stored.
    # Normalization is not a wrapper: one set of statistics, shared by all envs, lives in the training loop.
    envs = gym.vector.SyncVectorEnv(
        [make_env(env_id, i, capture_video, run_dir) for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    if not isinstance(envs.single_action_space, gym.spaces.Box):
        envs.close()
        raise ValueError(
            f"ppo_continuous.py needs a continuous (Box) action space, but {env_id} has {envs.single_action_space}; "
            "use ppo.py for discrete actions."
        )
    if not isinstance(envs.single_observation_space, gym.spaces.Box):
        envs.close()
        raise ValueError(f"ppo_continuous.py needs a Box observation space, but {env_id} has {envs.single_observation_space}.")
    return envs


# ---------------------------------------------------------------- networks
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate actor and critic MLPs (64-64, tanh); the mean head starts near 0 (std 0.01), log-std at 0."""

    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, act_dim), std=0.01),
        )
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def get_logprob_entropy_value(self, x: torch.Tensor, action: torch.Tensor):
        mean = self.actor_mean(x)
        log_std = self.actor_logstd.expand_as(mean)
        return gaussian_log_prob(action, mean, log_std), gaussian_entropy(log_std), self.get_value(x)

    def act_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return self.actor_mean(x)

    def numpy_layers(self) -> tuple[list, list, np.ndarray]:
        """(actor, critic, log_std) as numpy for acting in the rollout. On CPU they are views of the parameters
        and follow every optimizer step; from a GPU they are a copy, refreshed per update."""
        def layers(seq):
            return [(m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()) for m in seq if isinstance(m, nn.Linear)]
        return layers(self.actor_mean), layers(self.critic), self.actor_logstd.detach().cpu().numpy()[0]


def flatten_parameters(module: nn.Module) -> nn.Parameter:
    """Move every parameter of `module`, and its gradient, into one contiguous buffer; return the buffer as a
    single Parameter whose .grad is the gradient buffer. The layers work as before — their weights and
    gradients are now views into the two buffers, and backward() accumulates into them in place — but the
    optimizer and the gradient clipping see one tensor: a handful of ops per minibatch instead of a loop over
    the thirteen small tensors of the two MLPs and the log-std, which on a CPU costs more than their
    arithmetic. Adam acts elementwise, so the step is the same as on the separate tensors."""
    tensors = list(module.parameters())
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in tensors]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in tensors:
        n = p.numel()
        p.data = flat.data[offset:offset + n].view_as(p)
        p.grad = flat.grad[offset:offset + n].view_as(p)
        offset += n
    return flat


# Acting uses numpy: for a 64-unit MLP on a handful of observations torch's per-call dispatch costs ~10x the
# arithmetic (as measured for ppo.py). The update, where gradients are needed, is plain torch.
def mlp_numpy(layers: list, x: np.ndarray) -> np.ndarray:
    """The forward pass of Agent.actor_mean / Agent.critic (Linear-Tanh-Linear-Tanh-Linear) in numpy."""
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = np.tanh(x)
    return x


# ---------------------------------------------------------------- the algorithm's math
def compute_gae(rewards, values, dones, next_value, gamma: float, gae_lambda: float):
    """GAE over a (num_steps, num_envs) rollout; dones[t] = 1 if the episode ended with transition t.
    Truncated steps arrive already bootstrapped (reward += gamma * V(final_obs)) and marked done."""
    not_done = 1.0 - dones
    next_values = torch.cat([values[1:], next_value[None]])
    deltas = rewards + gamma * next_values * not_done - values
    decay = gamma * gae_lambda * not_done
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        last = advantages[t] = deltas[t] + decay[t] * last
    return advantages, advantages + values


def gaussian_log_prob(action, mean, log_std):
    """log N(action; mean, exp(log_std)^2) of a diagonal Gaussian, summed over action dimensions."""
    return (-0.5 * ((action - mean) / log_std.exp()).square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_entropy(log_std):
    """Entropy of a diagonal Gaussian: sum_j (0.5 + 0.5 * log(2 pi) + log_std_j)."""
    return (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum(-1)


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


def approx_kl(logratio: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(pi_old || pi) from samples of pi_old: mean((r - 1) - log r), unbiased and >= 0."""
    return ((logratio.exp() - 1) - logratio).mean()


def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor) -> float:
    """1 - Var[y - y_pred] / Var[y]: 1 is a perfect critic, 0 no better than a constant; NaN if Var[y] = 0."""
    var_y = y_true.var()
    return float("nan") if var_y == 0 else float(1 - (y_true - y_pred).var() / var_y)


class RunningMeanStd:
    """Running mean and variance of a stream of batches (Chan et al.'s parallel combination), in float64."""

    def __init__(self, shape: tuple = ()):
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 1e-4

    def update(self, x: np.ndarray) -> None:
        batch_mean, batch_var, n = x.mean(0), x.var(0), x.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def normalize(self, x: np.ndarray, clip: float = 10.0) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -clip, clip).astype(np.float32)

    def state_dict(self) -> dict:
        return {"mean": torch.as_tensor(np.asarray(self.mean)), "var": torch.as_tensor(np.asarray(self.var)), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count = state["mean"].numpy(), state["var"].numpy(), state["count"]


# ---------------------------------------------------------------- run bookkeeping
class RunLogger:
    """Writes metrics.csv (long format, flushed on every call) and mirrors the scalars to wandb with --track."""

    def __init__(self, run_dir: str, args: Args, run_name: str):
        self.start = time.time()
        self.file = open(os.path.join(run_dir, "metrics.csv"), "w", newline="")
        self.writer = csv.writer(self.file)
        self.writer.writerow(["global_step", "wall_time", "name", "value"])
        self.wandb = None
        if args.track:
            import wandb

            self.wandb = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity,
                                    config=vars(args), name=run_name, dir=run_dir, save_code=True)

    def log(self, step: int, scalars: dict) -> None:
        wall = f"{time.time() - self.start:.3f}"
        self.writer.writerows([step, wall, name, float(value)] for name, value in scalars.items())
        self.file.flush()
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        self.file.close()
        if self.wandb is not None:
            self.wandb.finish()


def create_run_dir(args: Args) -> tuple[str, str]:
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}".replace("/", "_")
    os.makedirs(args.runs_dir, exist_ok=True)
    base, n = run_name, 1
    while True:
        run_dir = os.path.join(args.runs_dir, run_name)
        try:
            os.mkdir(run_dir)  # atomic: two runs started in the same second never share a directory
            break
        except FileExistsError:
            n += 1
            run_name = f"{base}_{n}"
    with open(os.path.join(run_dir, "args.json"), "w") as f:
        json.dump(asdict(args), f, indent=2)
    return run_name, run_dir


def save_checkpoint(path: str, agent: Agent, obs_rms, return_rms, args: Args, obs_dim: int, act_dim: int) -> None:
    state = {"script": "ppo_continuous.py", "env_id": args.env_id, "obs_dim": obs_dim, "act_dim": act_dim,
             "args": asdict(args), "model": agent.state_dict(),
             "obs_rms": obs_rms.state_dict() if obs_rms is not None else None,
             "return_rms": return_rms.state_dict() if return_rms is not None else None}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written model.pt


def load_checkpoint(path: str, env_id: str, device: torch.device) -> tuple[Agent, RunningMeanStd | None]:
    """The agent and the observation statistics it was trained with (None if trained without --norm-obs)."""
    if not os.path.isfile(path):
        raise ValueError(f"--load-model {path} does not exist; pass the model.pt of a run made with --save-model.")
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("script") != "ppo_continuous.py":
        raise ValueError(f"{path} was not saved by ppo_continuous.py; load it with the script that trained it.")
    if state["env_id"] != env_id:
        raise ValueError(f"{path} was trained on {state['env_id']}, not {env_id}; pass --env-id {state['env_id']}.")
    agent = Agent(state["obs_dim"], state["act_dim"]).to(device)
    agent.load_state_dict(state["model"])
    obs_rms = None
    if state["obs_rms"] is not None:
        obs_rms = RunningMeanStd()
        obs_rms.load_state_dict(state["obs_rms"])
    return agent, obs_rms


def normalize_obs(obs_rms: RunningMeanStd | None, obs: np.ndarray) -> np.ndarray:
    return obs.astype(np.float32) if obs_rms is None else obs_rms.normalize(obs)


def evaluate(agent: Agent, obs_rms, env_id: str, episodes: int, seed: int, device: torch.device) -> list[float]:
    """Returns of `episodes` episodes with the mean action, one per environment of a vector env. The observation
    statistics are frozen: evaluation reads them and never updates them."""
    envs = make_envs(env_id, episodes)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    obs, _ = envs.reset(seed=seed)
    returns = np.full(episodes, np.nan)
    while np.isnan(returns).any():
        x = torch.as_tensor(normalize_obs(obs_rms, obs.reshape(episodes, -1)), device=device)
        with torch.inference_mode():
            action = agent.act_deterministic(x).cpu().numpy()
        obs, _, _, _, infos = envs.step(np.clip(action, low, high))
        if "final_info" in infos and "_episode" in infos["final_info"]:
            first = infos["final_info"]["_episode"] & np.isnan(returns)
            returns[first] = infos["final_info"]["episode"]["r"][first]
    envs.close()
    return returns.tolist()


# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    check_args(args)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)  # action sampling in the rollout
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    run_name, run_dir = create_run_dir(args)
    logger = RunLogger(run_dir, args, run_name)
    eval_seed = args.seed + 100_000  # evaluation episodes never replay training seeds

    if args.load_model is not None:
        agent, obs_rms = load_checkpoint(args.load_model, args.env_id, device)
        eval_returns = evaluate(agent, obs_rms, args.env_id, args.eval_episodes, eval_seed, device) if args.eval_episodes else []
        for r in eval_returns:
            logger.log(0, {"eval/episodic_return": r})
        print(f"evaluated {args.load_model}: mean return {np.mean(eval_returns):.2f} over {len(eval_returns)} episodes")
        logger.close()
        return {"run_dir": run_dir, "episodic_returns": [], "eval_returns": eval_returns, "agent": agent, "obs_rms": obs_rms}

    envs = make_envs(args.env_id, args.num_envs, args.capture_video, run_dir)
    envs.action_space.seed(args.seed)
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    act_dim = int(np.prod(envs.single_action_space.shape))
    low, high = envs.single_action_space.low.reshape(-1), envs.single_action_space.high.reshape(-1)
    agent = Agent(obs_dim, act_dim).to(device)
    params = [flatten_parameters(agent)]  # one tensor for the optimizer and the clipping, see flatten_parameters
    optimizer = torch.optim.Adam(params, lr=args.learning_rate, eps=1e-5, fused=True)
    # One set of statistics for all envs; the discounted return G is tracked per env for the reward scale.
    obs_rms = RunningMeanStd((obs_dim,)) if args.norm_obs else None
    return_rms = RunningMeanStd() if args.norm_reward else None
    discounted = np.zeros(args.num_envs)

    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size
    # Rollout storage, preallocated in numpy; it crosses to torch once per rollout.
    obs = np.zeros((args.num_steps, args.num_envs, obs_dim), dtype=np.float32)
    actions = np.zeros((args.num_steps, args.num_envs, act_dim), dtype=np.float32)
    logprobs, values, rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(4))

    def observe(raw: np.ndarray) -> np.ndarray:
        raw = raw.reshape(args.num_envs, -1)
        if obs_rms is not None:
            obs_rms.update(raw)
        return normalize_obs(obs_rms, raw)

    global_step, episodic_returns, eval_returns = 0, [], []
    start_time = last_print = time.time()
    next_obs_np = observe(envs.reset(seed=args.seed)[0])
    interrupted = False
    try:
        for iteration in range(1, num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / num_iterations)

            # ---- rollout
            actor_np, critic_np, log_std_np = agent.numpy_layers()
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step] = next_obs_np
                noise = rng.standard_normal((args.num_envs, act_dim))
                actions[step] = mlp_numpy(actor_np, obs[step]) + np.exp(log_std_np) * noise
                logprobs[step] = (-0.5 * noise**2 - log_std_np - 0.5 * math.log(2 * math.pi)).sum(-1)
                values[step] = mlp_numpy(critic_np, obs[step])[:, 0]
                raw_obs, reward, terminated, truncated, infos = envs.step(np.clip(actions[step], low, high))
                done = terminated | truncated
                if return_rms is not None:
                    discounted = discounted * args.gamma + reward
                    return_rms.update(discounted)
                    reward = np.clip(reward / np.sqrt(return_rms.var + 1e-8), -10.0, 10.0)
                    discounted[done] = 0.0
                rewards[step] = reward
                dones[step] = done
                # A time limit is not a real end: bootstrap with the value of the true final observation.
                trunc_idx = np.flatnonzero(truncated & ~terminated)
                if trunc_idx.size:
                    final_obs = np.stack(infos["final_obs"][trunc_idx]).reshape(trunc_idx.size, -1)
                    rewards[step, trunc_idx] += args.gamma * mlp_numpy(critic_np, normalize_obs(obs_rms, final_obs))[:, 0]
                next_obs_np = observe(raw_obs)
                if "final_info" in infos and "_episode" in infos["final_info"]:
                    ep = infos["final_info"]["episode"]
                    for i in np.flatnonzero(infos["final_info"]["_episode"]):
                        episodic_returns.append((global_step, float(ep["r"][i])))
                        logger.log(global_step, {"charts/episodic_return": ep["r"][i],
                                                 "charts/episodic_length": ep["l"][i]})

            # ---- advantages
            next_value = mlp_numpy(critic_np, next_obs_np)[:, 0].astype(np.float32)
            t_values = torch.from_numpy(values).to(device)
            advantages, returns = compute_gae(torch.from_numpy(rewards).to(device), t_values, torch.from_numpy(dones).to(device),
                                              torch.from_numpy(next_value).to(device), args.gamma, args.gae_lambda)
            b_obs = torch.from_numpy(obs).to(device).reshape(batch_size, obs_dim)
            b_actions = torch.from_numpy(actions).to(device).reshape(batch_size, act_dim)
            # Per-sample scalars in one (batch, 4) tensor: one gather per epoch instead of four.
            b_scalars = torch.stack([torch.from_numpy(logprobs).to(device).reshape(-1), advantages.reshape(-1),
                                     returns.reshape(-1), t_values.reshape(-1)], dim=1)
            b_advantages, b_returns, b_values = b_scalars[:, 1], b_scalars[:, 2], b_scalars[:, 3]

            # ---- update
            stats = []  # per minibatch: policy loss, value loss, entropy, approx KL, clip fraction, grad norm
            for epoch in range(args.update_epochs):
                # Shuffle once per epoch; minibatches are then contiguous slices (views, no copies).
                perm = torch.randperm(batch_size, device=device)
                e_obs, e_actions, e_scalars = b_obs[perm], b_actions[perm], b_scalars[perm]
                for start in range(0, batch_size, minibatch_size):
                    mb = slice(start, start + minibatch_size)
                    mb_logprob, mb_adv, mb_return, mb_value = e_scalars[mb].unbind(1)
                    newlogprob, entropy, newvalue = agent.get_logprob_entropy_value(e_obs[mb], e_actions[mb])
                    if args.norm_adv:
                        mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                    pg_loss = clipped_surrogate_loss(newlogprob, mb_logprob, mb_adv, args.clip_coef)
                    v_loss = value_loss(newvalue, mb_value, mb_return, args.clip_coef if args.clip_vloss else None)
                    entropy_mean = entropy.mean()
                    loss = pg_loss - args.ent_coef * entropy_mean + args.vf_coef * v_loss

                    params[0].grad.zero_()  # not set_to_none: the modules' gradients are views into this buffer
                    loss.backward()
                    grad_norm = nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                    optimizer.step()
                    with torch.no_grad():
                        logratio = newlogprob - mb_logprob
                        clipfrac = ((logratio.exp() - 1.0).abs() > args.clip_coef).float().mean()
                        stats.append(torch.stack([pg_loss, v_loss, entropy_mean, approx_kl(logratio), clipfrac, grad_norm]))
                if args.target_kl is not None:
                    epoch_kl = torch.stack(stats[-args.num_minibatches:])[:, 3].mean()
                    if epoch_kl > args.target_kl:
                        break

            # ---- logging (means over every minibatch of the update)
            pg, vl, ent, kl, cf, gn = torch.stack(stats).mean(0).tolist()
            sps = int(global_step / (time.time() - start_time))
            logger.log(global_step, {
                "charts/learning_rate": optimizer.param_groups[0]["lr"], "charts/SPS": sps,
                "losses/policy_loss": pg, "losses/value_loss": vl, "losses/entropy": ent,
                "losses/approx_kl": kl, "losses/clipfrac": cf, "losses/grad_norm": gn,
                "losses/explained_variance": explained_variance(b_values, b_returns),
                "charts/advantage_mean": b_advantages.mean().item(), "charts/advantage_std": b_advantages.std().item(),
            })
            if time.time() - last_print > 2.0 or iteration == num_iterations:
                last_print = time.time()
                recent = np.mean([r for _, r in episodic_returns[-20:]]) if episodic_returns else float("nan")
                eta = (args.total_timesteps - global_step) / max(sps, 1)
                print(f"step {global_step:>9,}/{args.total_timesteps:,} | {sps:>6,} SPS | "
                      f"return (last 20) {recent:8.2f} | ETA {eta:5.0f}s", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at step {global_step:,}: metrics so far are in {run_dir}", flush=True)
    finally:
        envs.close()
        if args.save_model:
            save_checkpoint(os.path.join(run_dir, "model.pt"), agent, obs_rms, return_rms, args, obs_dim, act_dim)
        if interrupted or not args.eval_episodes:
            logger.close()
    if not interrupted and args.eval_episodes:
        eval_returns = evaluate(agent, obs_rms, args.env_id, args.eval_episodes, eval_seed, device)
        for r in eval_returns:
            logger.log(global_step, {"eval/episodic_return": r})
        print(f"evaluation: mean return {np.mean(eval_returns):.2f} over {len(eval_returns)} deterministic episodes")
        logger.close()
    return {"run_dir": run_dir, "episodic_returns": episodic_returns, "eval_returns": eval_returns, "agent": agent,
            "obs_rms": obs_rms, "return_rms": return_rms}


if __name__ == "__main__":
    main(tyro.cli(Args))
