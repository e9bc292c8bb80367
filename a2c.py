"""A2C: synchronous advantage actor-critic on vector environments, discrete and continuous actions.

Every `num_steps` steps of `num_envs` parallel environments, A2C takes one gradient step on the whole
rollout: the policy follows the advantage-weighted log-likelihood gradient, the critic regresses onto the
n-step / GAE returns, and an entropy bonus keeps the policy from collapsing early.

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   R_t = A_t + V(s_t)
    L       = -mean(A_t * log pi(a_t|s_t)) + vf_coef * 0.5 * mean((R_t - V(s_t))^2) - ent_coef * mean(H[pi(.|s_t)])

With --gae-lambda 1.0 the advantage is the paper's n-step return minus V (bootstrapped at the rollout's
end); 0.0 gives one-step TD. Discrete action spaces use a categorical policy; Box action spaces a Gaussian
with a learned state-independent log-std, whose samples are clipped to the bounds only when stepping
the environment (the loss uses the unclipped sample).

Paper: Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning" (A3C; A2C is its
synchronous variant, as in OpenAI baselines); GAE from Schulman et al. 2016.
Differences from the paper: synchronous workers instead of asynchronous ones; GAE(lambda) with default
lambda 0.95 instead of pure n-step returns; a time-limit truncation is bootstrapped with
gamma * V(true final observation) instead of ending the return; the MLP policy of the classic-control
setup instead of the Atari CNN (see a2c_atari.py).

Run:  python a2c.py --env-id CartPole-v1        python a2c.py --env-id Pendulum-v1
      (evaluate a saved model: --load-model runs/.../model.pt)
"""

# ---------------------------------------------------------------- imports
import csv
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from torch.distributions import Categorical, Normal


# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "a2c"
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
    """save weights and arguments to model.pt in the run directory"""
    eval_episodes: int = 10
    """deterministic evaluation episodes after training (argmax / mean action); 0 skips it"""
    load_model: str | None = None
    """path to a model.pt: evaluate it for --eval-episodes episodes instead of training"""
    runs_dir: str = "runs"
    """where run directories are created"""
    torch_threads: int = 1
    """CPU threads for torch (0 keeps torch's default); one is fastest for these small networks"""
    log_interval: int = 25
    """log the training scalars, averaged, every this many updates"""

    env_id: str = "CartPole-v1"
    """the gymnasium id of the environment (Discrete or Box actions)"""
    total_timesteps: int = 500_000
    """total environment steps of the experiment"""
    learning_rate: float = 7e-4
    """the optimizer's learning rate"""
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    """RMSprop as in the A2C paper, or Adam"""
    rmsprop_alpha: float = 0.99
    """RMSprop's smoothing constant"""
    optimizer_eps: float = 1e-5
    """epsilon of RMSprop / Adam"""
    num_envs: int = 8
    """number of parallel environments"""
    num_steps: int = 5
    """steps per environment in each rollout (the n of n-step returns)"""
    anneal_lr: bool = False
    """anneal the learning rate linearly to 0 over training"""
    gamma: float = 0.99
    """the discount factor"""
    gae_lambda: float = 0.95
    """the GAE lambda (1.0: n-step returns, 0.0: one-step TD)"""
    norm_adv: bool = False
    """normalize advantages over the rollout"""
    ent_coef: float = 0.01
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """maximum global gradient norm"""


def check_args(args: Args) -> None:
    """Reject bad arguments with one clear sentence, before any environment is built."""
    batch = args.num_envs * args.num_steps
    if args.num_envs < 1 or args.num_steps < 1:
        raise ValueError(f"--num-envs and --num-steps must be at least 1 (got {args.num_envs}, {args.num_steps}).")
    if args.load_model is None and args.total_timesteps < batch:
        raise ValueError(
            f"--total-timesteps {args.total_timesteps} is smaller than one batch (num_envs * num_steps = {batch}); "
            "raise --total-timesteps or shrink the rollout."
        )
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be positive (got {args.learning_rate}).")
    if args.eval_episodes < 0 or args.log_interval < 1:
        raise ValueError(f"--eval-episodes must be >= 0 and --log-interval >= 1 (got {args.eval_episodes}, {args.log_interval}).")
    try:
        gym.spec(args.env_id)
    except gym.error.Error as e:
        raise ValueError(f"unknown environment id {args.env_id!r} ({e}); check the spelling and version.") from None


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
    envs = gym.vector.SyncVectorEnv(
        [make_env(env_id, i, capture_video, run_dir) for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    space = envs.single_action_space
    problem = None
    if not isinstance(space, (gym.spaces.Discrete, gym.spaces.Box)):
        problem = f"a2c.py handles Discrete and Box action spaces, but {env_id} has {space}."
    elif isinstance(space, gym.spaces.Box) and (len(space.shape) != 1 or not np.all(np.isfinite(space.low))
                                                  or not np.all(np.isfinite(space.high))):
        problem = f"a2c.py needs a bounded one-dimensional Box action space, but {env_id} has {space}."
    elif not isinstance(envs.single_observation_space, gym.spaces.Box):
        problem = f"a2c.py needs a Box observation space, but {env_id} has {envs.single_observation_space}."
    if problem:
        envs.close()
        raise ValueError(problem)
    return envs


# ---------------------------------------------------------------- networks
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


def mlp(in_dim: int, out_dim: int, out_std: float) -> nn.Sequential:
    return nn.Sequential(
        layer_init(nn.Linear(in_dim, 64)), nn.Tanh(),
        layer_init(nn.Linear(64, 64)), nn.Tanh(),
        layer_init(nn.Linear(64, out_dim), std=out_std),
    )


class Agent(nn.Module):
    """Separate actor and critic MLPs (64-64, tanh). The actor outputs categorical logits (`continuous=False`)
    or the mean of a Gaussian whose log-std is a learned parameter independent of the state."""

    def __init__(self, obs_dim: int, act_dim: int, continuous: bool):
        super().__init__()
        self.continuous = continuous
        self.critic = mlp(obs_dim, 1, 1.0)
        self.actor = mlp(obs_dim, act_dim, 0.01)
        self.actor_logstd = nn.Parameter(torch.zeros(act_dim)) if continuous else None

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def distribution(self, x: torch.Tensor):
        if self.continuous:
            return Normal(self.actor(x), self.actor_logstd.exp(), validate_args=False)
        return Categorical(logits=self.actor(x), validate_args=False)

    def evaluate_actions(self, x: torch.Tensor, action: torch.Tensor):
        """log pi(a|s), entropy and V(s), summed over action dimensions for the Gaussian."""
        dist = self.distribution(x)
        logprob, entropy = dist.log_prob(action), dist.entropy()
        if self.continuous:
            logprob, entropy = logprob.sum(-1), entropy.sum(-1)
        return logprob, entropy, self.get_value(x)

    def act_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        out = self.actor(x)
        return out if self.continuous else out.argmax(-1)

    def numpy_layers(self) -> tuple[list, list, np.ndarray | None]:
        """(actor, critic) weights as lists of numpy (W, b) pairs — views of the parameters on CPU, a copy from a
        GPU, fetched once per rollout — and the log-std (None for a categorical policy)."""
        def layers(seq):
            return [(m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()) for m in seq if isinstance(m, nn.Linear)]
        return layers(self.actor), layers(self.critic), self.actor_logstd.detach().cpu().numpy() if self.continuous else None


def flatten_parameters(module: nn.Module) -> nn.Parameter:
    """Move every parameter of `module`, and its gradient, into one contiguous buffer; return the buffer as a
    single Parameter whose .grad is the gradient buffer. The layers work as before — their weights and
    gradients are now views into the two buffers, and backward() accumulates into them in place — but the
    optimizer and the gradient clipping see one tensor: a handful of ops per update instead of a loop over
    the twelve small tensors of the two MLPs (thirteen with the log-std), which on a CPU costs more than
    their arithmetic. RMSprop and Adam act elementwise, so the step is the same as on the separate tensors."""
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


# Acting uses numpy: for a 64-unit MLP on a handful of observations torch's per-call dispatch costs more
# than the arithmetic (see benchmarks/ppo_speed.py). The update, where gradients are needed, is plain torch.
def mlp_numpy(layers: list, x: np.ndarray) -> np.ndarray:
    """The forward pass of `mlp` (Linear-Tanh-Linear-Tanh-Linear) in numpy."""
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = np.tanh(x)
    return x


def sample_action(actor_out: np.ndarray, logstd: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """A sample of the policy: Gumbel-max for categorical logits, mean + std * noise for the Gaussian."""
    if logstd is None:
        return np.argmax(actor_out + rng.gumbel(size=actor_out.shape), axis=-1)
    return (actor_out + np.exp(logstd) * rng.standard_normal(actor_out.shape)).astype(np.float32)


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


def a2c_loss(logprob, entropy, values, advantages, returns, ent_coef: float, vf_coef: float):
    """The A2C objective; advantages and returns are constants (no gradient flows into the targets)."""
    policy_loss = -(advantages.detach() * logprob).mean()
    value_loss = 0.5 * ((returns.detach() - values) ** 2).mean()
    entropy_mean = entropy.mean()
    return policy_loss + vf_coef * value_loss - ent_coef * entropy_mean, (policy_loss, value_loss, entropy_mean)


def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    """1 - Var[y - y_pred] / Var[y]: 1 is a perfect critic, 0 no better than a constant; NaN if Var[y] = 0."""
    return 1 - (y_true - y_pred).var() / y_true.var()


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


def save_checkpoint(path: str, agent: Agent, args: Args, obs_dim: int, act_dim: int) -> None:
    state = {"script": "a2c.py", "env_id": args.env_id, "obs_dim": obs_dim, "act_dim": act_dim,
             "continuous": agent.continuous, "args": asdict(args), "model": agent.state_dict()}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written model.pt


def load_checkpoint(path: str, env_id: str, device: torch.device) -> Agent:
    if not os.path.isfile(path):
        raise ValueError(f"--load-model {path} does not exist; pass the model.pt of a run made with --save-model.")
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("script") != "a2c.py":
        raise ValueError(f"{path} was not saved by a2c.py; load it with the script that trained it.")
    if state["env_id"] != env_id:
        raise ValueError(f"{path} was trained on {state['env_id']}, not {env_id}; pass --env-id {state['env_id']}.")
    agent = Agent(state["obs_dim"], state["act_dim"], state["continuous"]).to(device)
    agent.load_state_dict(state["model"])
    return agent


def evaluate(agent: Agent, env_id: str, episodes: int, seed: int, device: torch.device) -> list[float]:
    """Deterministic returns (argmax action, or the Gaussian's mean clipped to the bounds) of `episodes`
    episodes, one per environment of a vector env."""
    envs = make_envs(env_id, episodes)
    obs, _ = envs.reset(seed=seed)
    returns = np.full(episodes, np.nan)
    while np.isnan(returns).any():
        with torch.inference_mode():
            action = agent.act_deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device)).cpu().numpy()
        if agent.continuous:
            action = np.clip(action, envs.single_action_space.low, envs.single_action_space.high)
        obs, _, _, _, infos = envs.step(action)
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
    loaded = load_checkpoint(args.load_model, args.env_id, device) if args.load_model is not None else None
    run_name, run_dir = create_run_dir(args)
    logger = RunLogger(run_dir, args, run_name)
    eval_seed = args.seed + 100_000  # evaluation episodes never replay training seeds

    if loaded is not None:
        agent = loaded
        eval_returns = evaluate(agent, args.env_id, args.eval_episodes, eval_seed, device) if args.eval_episodes else []
        for r in eval_returns:
            logger.log(0, {"eval/episodic_return": r})
        print(f"evaluated {args.load_model}: mean return {np.mean(eval_returns):.2f} over {len(eval_returns)} episodes")
        logger.close()
        return {"run_dir": run_dir, "episodic_returns": [], "eval_returns": eval_returns, "agent": agent}

    envs = make_envs(args.env_id, args.num_envs, args.capture_video, run_dir)
    envs.action_space.seed(args.seed)
    space = envs.single_action_space
    continuous = isinstance(space, gym.spaces.Box)
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    act_dim = int(space.shape[0]) if continuous else int(space.n)
    agent = Agent(obs_dim, act_dim, continuous).to(device)
    params = [flatten_parameters(agent)]  # one tensor for the optimizer and the clipping, see flatten_parameters
    if args.optimizer == "rmsprop":
        optimizer = torch.optim.RMSprop(params, lr=args.learning_rate, alpha=args.rmsprop_alpha, eps=args.optimizer_eps)
    else:
        optimizer = torch.optim.Adam(params, lr=args.learning_rate, eps=args.optimizer_eps)

    batch_size = args.num_envs * args.num_steps
    num_iterations = args.total_timesteps // batch_size
    # Rollout storage, preallocated in numpy; it crosses to torch once per rollout. The critic is not run
    # during the rollout: V(obs) for the whole rollout comes from the update's single batched forward pass.
    obs = np.zeros((args.num_steps, args.num_envs, obs_dim), dtype=np.float32)
    actions = np.zeros((args.num_steps, args.num_envs) + ((act_dim,) if continuous else ()),
                       dtype=np.float32 if continuous else np.int64)
    rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(2))

    global_step, episodic_returns, eval_returns, stats = 0, [], [], []
    start_time = last_print = time.time()
    next_obs_np, _ = envs.reset(seed=args.seed)
    interrupted = False
    try:
        for iteration in range(1, num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / num_iterations)

            # ---- rollout
            actor_np, critic_np, logstd_np = agent.numpy_layers()
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step] = next_obs_np.reshape(args.num_envs, -1)
                actions[step] = sample_action(mlp_numpy(actor_np, obs[step]), logstd_np, rng)
                env_action = np.clip(actions[step], space.low, space.high) if continuous else actions[step]
                next_obs_np, reward, terminated, truncated, infos = envs.step(env_action)
                rewards[step] = reward
                dones[step] = terminated | truncated
                # A time limit is not a real end: bootstrap with the value of the true final observation.
                trunc_idx = np.flatnonzero(truncated & ~terminated)
                if trunc_idx.size:
                    final_obs = np.stack(infos["final_obs"][trunc_idx]).reshape(trunc_idx.size, -1).astype(np.float32)
                    rewards[step, trunc_idx] += args.gamma * mlp_numpy(critic_np, final_obs)[:, 0]
                if "final_info" in infos and "_episode" in infos["final_info"]:
                    ep = infos["final_info"]["episode"]
                    for i in np.flatnonzero(infos["final_info"]["_episode"]):
                        episodic_returns.append((global_step, float(ep["r"][i])))
                        logger.log(global_step, {"charts/episodic_return": ep["r"][i],
                                                 "charts/episodic_length": ep["l"][i]})

            # ---- update: one gradient step on the whole rollout
            b_obs = torch.from_numpy(obs).to(device).reshape(batch_size, obs_dim)
            b_actions = torch.from_numpy(actions).to(device).reshape((batch_size, act_dim) if continuous else (batch_size,))
            logprob, entropy, b_values = agent.evaluate_actions(b_obs, b_actions)
            with torch.no_grad():
                next_value = agent.get_value(
                    torch.as_tensor(next_obs_np, dtype=torch.float32, device=device).reshape(args.num_envs, -1))
                advantages, returns = compute_gae(torch.from_numpy(rewards).to(device), b_values.detach().view(args.num_steps, -1),
                                                  torch.from_numpy(dones).to(device), next_value, args.gamma, args.gae_lambda)
                advantages, returns = advantages.reshape(-1), returns.reshape(-1)
                pg_adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8) if args.norm_adv else advantages
            loss, (pg_loss, v_loss, entropy_mean) = a2c_loss(logprob, entropy, b_values, pg_adv, returns,
                                                             args.ent_coef, args.vf_coef)
            params[0].grad.zero_()  # not set_to_none: the modules' gradients are views into this buffer
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                stats.append(torch.stack([pg_loss, v_loss, entropy_mean, grad_norm, advantages.mean(), advantages.std(),
                                          explained_variance(b_values, returns)]))

            # ---- logging (means over the last log_interval updates)
            if iteration % args.log_interval == 0 or iteration == num_iterations:
                pg, vl, ent, gn, adv_mean, adv_std, ev = torch.stack(stats).mean(0).tolist()
                stats.clear()
                sps = int(global_step / (time.time() - start_time))
                scalars = {"charts/learning_rate": optimizer.param_groups[0]["lr"], "charts/SPS": sps,
                           "losses/policy_loss": pg, "losses/value_loss": vl, "losses/entropy": ent,
                           "losses/grad_norm": gn, "losses/explained_variance": ev,
                           "charts/advantage_mean": adv_mean, "charts/advantage_std": adv_std}
                if continuous:
                    scalars["charts/action_std"] = agent.actor_logstd.exp().mean().item()
                logger.log(global_step, scalars)
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
            save_checkpoint(os.path.join(run_dir, "model.pt"), agent, args, obs_dim, act_dim)
        if interrupted or not args.eval_episodes:
            logger.close()
    if not interrupted and args.eval_episodes:
        eval_returns = evaluate(agent, args.env_id, args.eval_episodes, eval_seed, device)
        for r in eval_returns:
            logger.log(global_step, {"eval/episodic_return": r})
        print(f"evaluation: mean return {np.mean(eval_returns):.2f} over {len(eval_returns)} deterministic episodes")
        logger.close()
    return {"run_dir": run_dir, "episodic_returns": episodic_returns, "eval_returns": eval_returns, "agent": agent}


if __name__ == "__main__":
    main(tyro.cli(Args))
