"""PPO for discrete actions: clipped surrogate, GAE, value clipping, entropy bonus.

Proximal Policy Optimization collects `num_steps` transitions from each of `num_envs` environments with
the current policy, estimates advantages with GAE, and then takes `update_epochs` passes of minibatch
gradient steps on a clipped surrogate that removes the incentive to move the policy far from the one
that collected the data.

With r_t = pi(a_t|s_t) / pi_old(a_t|s_t) and advantages A_t (normalized per minibatch with --norm-adv):

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},      R_t = A_t + V(s_t)
    L_clip  = -mean( min(r_t * A_t, clip(r_t, 1 - eps, 1 + eps) * A_t) )
    L_V     = 0.5 * mean( max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2) )  (--clip-vloss)
    L       = L_clip - ent_coef * mean(entropy) + vf_coef * L_V

Papers: Schulman et al. 2017, "Proximal Policy Optimization Algorithms"; Schulman et al. 2016,
"High-Dimensional Continuous Control Using Generalized Advantage Estimation"; the implementation details
follow Engstrom et al. 2020 and Huang et al. 2022 ("The 37 Implementation Details of PPO").
Differences from the paper: a time-limit truncation is not treated as the end of the return — its reward
is bootstrapped with gamma * V(true final observation); the value loss is clipped (as in OpenAI
baselines, not in the paper); approx_kl is the k3 estimator mean((r - 1) - log r), and --target-kl stops
the update after the first epoch whose mean approx_kl exceeds it. The defaults are CleanRL's classic-control
ones except the learning rate, 1e-3 instead of 2.5e-4: on CartPole-v1 all five seeds we ran reached a
20-episode mean of 475 in 71k-101k steps (153k-180k with 2.5e-4), and on Acrobot-v1 with a 100k-step
budget all three seeds learned where 2.5e-4 failed on one (benchmarks/learning_check.py; README, Results).

Run:  python ppo.py --env-id CartPole-v1        (evaluate a saved model: --load-model runs/.../model.pt)
"""

# ---------------------------------------------------------------- imports
import csv
import json
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
    exp_name: str = "ppo"
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
    """deterministic (greedy) evaluation episodes after training; 0 skips it"""
    load_model: str | None = None
    """path to a model.pt: evaluate it for --eval-episodes episodes instead of training"""
    runs_dir: str = "runs"
    """where run directories are created"""
    torch_threads: int = 1
    """CPU threads for torch (0 keeps torch's default); one is fastest for these small networks"""

    env_id: str = "CartPole-v1"
    """the gymnasium id of the environment (discrete actions)"""
    total_timesteps: int = 500_000
    """total environment steps of the experiment"""
    learning_rate: float = 1e-3
    """the Adam learning rate (annealed to 0 with --anneal-lr)"""
    num_envs: int = 4
    """number of parallel environments"""
    num_steps: int = 128
    """steps per environment in each rollout"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over training"""
    gamma: float = 0.99
    """the discount factor"""
    gae_lambda: float = 0.95
    """the GAE lambda (1.0: Monte-Carlo returns, 0.0: one-step TD)"""
    num_minibatches: int = 4
    """number of minibatches per epoch"""
    update_epochs: int = 4
    """passes over the rollout per update"""
    norm_adv: bool = True
    """normalize advantages within each minibatch"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient epsilon"""
    clip_vloss: bool = True
    """clip the value loss around the old value estimates"""
    ent_coef: float = 0.01
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """maximum global gradient norm"""
    target_kl: float | None = None
    """stop the update after an epoch whose mean approx KL exceeds this"""
    bootstrap_truncation: bool = True
    """bootstrap a time-limit truncation with gamma * V(true final observation); --no-bootstrap-truncation
    treats it as a termination, as many implementations do (kept for the ablation in benchmarks/)"""


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
    if not isinstance(envs.single_action_space, gym.spaces.Discrete):
        envs.close()
        raise ValueError(
            f"ppo.py needs a discrete action space, but {env_id} has {envs.single_action_space}; "
            "use ppo_continuous.py for continuous actions."
        )
    if not isinstance(envs.single_observation_space, gym.spaces.Box):
        envs.close()
        raise ValueError(f"ppo.py needs a Box observation space, but {env_id} has {envs.single_observation_space}.")
    return envs


# ---------------------------------------------------------------- networks
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate actor and critic MLPs (64-64, tanh); the policy head starts near uniform (std 0.01)."""

    def __init__(self, obs_dim: int, n_actions: int):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, n_actions), std=0.01),
        )

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        """Sample (or score the given) actions: a, log pi(a|s), the entropy of pi(.|s), and V(s). The categorical
        is written out rather than built with torch.distributions: the same numbers with fewer ops per
        minibatch (12% of the update's time, benchmarks/ppo_speed.py)."""
        logp_all = torch.log_softmax(self.actor(x), dim=-1)
        if action is None:
            action = torch.multinomial(logp_all.exp(), 1).squeeze(-1)
        logprob = logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return action, logprob, entropy, self.get_value(x)

    def act_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return self.actor(x).argmax(-1)

    def numpy_layers(self) -> tuple[list, list]:
        """(actor, critic) weights as lists of numpy (W, b) for acting in the rollout. On CPU they are views
        of the parameters and follow every optimizer step; from a GPU they are a copy, refreshed per update."""
        def layers(seq):
            return [(m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()) for m in seq if isinstance(m, nn.Linear)]
        return layers(self.actor), layers(self.critic)


# Acting uses numpy: for a 64-unit MLP on a handful of observations torch's per-call dispatch costs ~10x the
# arithmetic (benchmarks/ppo_speed.py measures it). The update, where gradients are needed, is plain torch.
def mlp_numpy(layers: list, x: np.ndarray) -> np.ndarray:
    """The forward pass of Agent.actor / Agent.critic (Linear-Tanh-Linear-Tanh-Linear) in numpy."""
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = np.tanh(x)
    return x


def sample_categorical(logits: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exact sample of Categorical(logits) by the Gumbel-max trick, and its log-probability."""
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    action = np.argmax(logp + rng.gumbel(size=logp.shape), axis=-1)
    return action, logp[np.arange(len(action)), action]


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


def save_checkpoint(path: str, agent: Agent, args: Args, obs_dim: int, n_actions: int) -> None:
    state = {"script": "ppo.py", "env_id": args.env_id, "obs_dim": obs_dim, "n_actions": n_actions,
             "args": asdict(args), "model": agent.state_dict()}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written model.pt


def load_checkpoint(path: str, env_id: str, device: torch.device) -> Agent:
    if not os.path.isfile(path):
        raise ValueError(f"--load-model {path} does not exist; pass the model.pt of a run made with --save-model.")
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("script") != "ppo.py":
        raise ValueError(f"{path} was not saved by ppo.py; load it with the script that trained it.")
    if state["env_id"] != env_id:
        raise ValueError(f"{path} was trained on {state['env_id']}, not {env_id}; pass --env-id {state['env_id']}.")
    agent = Agent(state["obs_dim"], state["n_actions"]).to(device)
    agent.load_state_dict(state["model"])
    return agent


def evaluate(agent: Agent, env_id: str, episodes: int, seed: int, device: torch.device) -> list[float]:
    """Greedy (argmax) returns of `episodes` episodes, one per environment of a vector env."""
    envs = make_envs(env_id, episodes)
    obs, _ = envs.reset(seed=seed)
    returns = np.full(episodes, np.nan)
    while np.isnan(returns).any():
        with torch.inference_mode():
            action = agent.act_deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device))
        obs, _, _, _, infos = envs.step(action.cpu().numpy())
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
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    n_actions = int(envs.single_action_space.n)
    agent = Agent(obs_dim, n_actions).to(device)
    params = list(agent.parameters())
    optimizer = torch.optim.Adam(params, lr=args.learning_rate, eps=1e-5, fused=True)

    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size
    # Rollout storage, preallocated in numpy; it crosses to torch once per rollout. The critic is not run per
    # step: the weights are fixed during the rollout, so V(obs) comes from one batched forward pass after it.
    obs = np.zeros((args.num_steps, args.num_envs, obs_dim), dtype=np.float32)
    actions = np.zeros((args.num_steps, args.num_envs), dtype=np.int64)
    logprobs, rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(3))

    global_step, episodic_returns, eval_returns = 0, [], []
    start_time = last_print = time.time()
    next_obs_np, _ = envs.reset(seed=args.seed)
    interrupted = False
    try:
        for iteration in range(1, num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / num_iterations)

            # ---- rollout
            actor_np, critic_np = agent.numpy_layers()
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step] = next_obs_np.reshape(args.num_envs, -1)
                actions[step], logprobs[step] = sample_categorical(mlp_numpy(actor_np, obs[step]), rng)
                next_obs_np, reward, terminated, truncated, infos = envs.step(actions[step])
                rewards[step] = reward
                dones[step] = terminated | truncated
                # A time limit is not a real end: bootstrap with the value of the true final observation.
                trunc_idx = np.flatnonzero(truncated & ~terminated)
                if trunc_idx.size and args.bootstrap_truncation:
                    final_obs = np.stack(infos["final_obs"][trunc_idx]).reshape(trunc_idx.size, -1).astype(np.float32)
                    rewards[step, trunc_idx] += args.gamma * mlp_numpy(critic_np, final_obs)[:, 0]
                if "final_info" in infos and "_episode" in infos["final_info"]:
                    ep = infos["final_info"]["episode"]
                    for i in np.flatnonzero(infos["final_info"]["_episode"]):
                        episodic_returns.append((global_step, float(ep["r"][i])))
                        logger.log(global_step, {"charts/episodic_return": ep["r"][i],
                                                 "charts/episodic_length": ep["l"][i]})

            # ---- advantages
            b_obs = torch.from_numpy(obs).to(device).reshape(batch_size, obs_dim)
            b_actions = torch.from_numpy(actions).to(device).reshape(-1)
            with torch.no_grad():
                t_values = agent.get_value(b_obs).view(args.num_steps, args.num_envs)
            next_value = mlp_numpy(critic_np, next_obs_np.reshape(args.num_envs, -1).astype(np.float32))[:, 0]
            advantages, returns = compute_gae(torch.from_numpy(rewards).to(device), t_values, torch.from_numpy(dones).to(device),
                                              torch.from_numpy(next_value).to(device), args.gamma, args.gae_lambda)
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
                    _, newlogprob, entropy, newvalue = agent.get_action_and_value(e_obs[mb], e_actions[mb])
                    if args.norm_adv:
                        mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                    pg_loss = clipped_surrogate_loss(newlogprob, mb_logprob, mb_adv, args.clip_coef)
                    v_loss = value_loss(newvalue, mb_value, mb_return, args.clip_coef if args.clip_vloss else None)
                    entropy_mean = entropy.mean()
                    loss = pg_loss - args.ent_coef * entropy_mean + args.vf_coef * v_loss

                    optimizer.zero_grad(set_to_none=True)
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
            save_checkpoint(os.path.join(run_dir, "model.pt"), agent, args, obs_dim, n_actions)
        if interrupted or not args.eval_episodes:
            logger.close()
    if not interrupted and args.eval_episodes:
        eval_returns = evaluate(agent, args.env_id, args.eval_episodes, eval_seed, device)
        for r in eval_returns:
            logger.log(global_step, {"eval/episodic_return": r})
        print(f"evaluation: mean return {np.mean(eval_returns):.2f} over {len(eval_returns)} greedy episodes")
        logger.close()
    return {"run_dir": run_dir, "episodic_returns": episodic_returns, "eval_returns": eval_returns, "agent": agent}


if __name__ == "__main__":
    main(tyro.cli(Args))
