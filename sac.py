"""SAC for continuous actions: twin soft Q-networks, a tanh-squashed Gaussian actor, automatic entropy tuning.

Soft Actor-Critic maximizes return plus alpha times the policy's entropy, off-policy from a replay buffer. Two
Q-networks and their polyak-averaged targets fight overestimation; the actor samples a = bias + scale * tanh(u),
u ~ N(mu(s), sigma(s)^2), so actions stay inside the (possibly asymmetric) bounds. With a ~ pi(.|s) (reparameterized)
and a' ~ pi(.|s'), each line is the function on its right:

    log pi(a|s) = sum_j [ log N(u_j; mu_j, sigma_j) - log(scale_j * (1 - tanh(u_j)^2)) ]     squashed_gaussian
    y        = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s'))   sac_target
    L_Q      = mean( (Q_1(s, a) - y)^2 ) + mean( (Q_2(s, a) - y)^2 )                         critic_loss
    L_pi     = mean( alpha * log pi(a|s) - min(Q_1(s, a), Q_2(s, a)) )                       actor_loss
    L_alpha  = -mean( alpha * (log pi(a|s) + target_entropy) ),   target_entropy = -dim(A)   alpha_loss
    theta'  <- tau * theta + (1 - tau) * theta'                                              polyak_update

Papers: Haarnoja et al. 2018, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep RL with a Stochastic Actor", and
"Soft Actor-Critic Algorithms and Applications" (the automatic temperature); the code follows CleanRL's
sac_continuous_action.py. Differences from the papers: the actor and alpha update every --policy-frequency gradient
steps, then that many times (TD3's delay, as in CleanRL); the log-std is squashed into [-5, 2]; alpha is learned as
log(alpha), from the actor step's samples; a truncated episode stores its true final observation with terminated
= 0, so the target bootstraps through time limits; --num-envs N makes N gradient steps per vector step. Box
observations of any shape are flattened and Discrete ones one-hot encoded, as in Stable-Baselines3.

Run:  python sac.py --env-id Hopper-v5        (evaluate a saved model: --load-model runs/.../model.pt)
"""

# ---------------------------------------------------------------- imports
import contextlib
import copy
import itertools
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro


# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "sac"  # the name of this experiment (part of the run directory's name)
    seed: int = 1  # seed of random, numpy, torch and the environments
    torch_deterministic: bool = True  # set torch.backends.cudnn.deterministic
    cuda: bool = True  # use CUDA when it is available
    track: bool = False  # mirror the logged scalars to Weights & Biases
    wandb_project_name: str = "actor-critic"  # the wandb project name
    wandb_entity: str | None = None  # the wandb entity (team or user)
    capture_video: bool = False  # record videos of the first environment into the run directory's videos/
    save_model: bool = False  # save the actor and arguments to model.pt in the run directory
    eval_episodes: int = 10  # deterministic (mean-action) evaluation episodes after training; 0 skips it
    load_model: str | None = None  # path to a model.pt: evaluate it instead of training
    runs_dir: str = "runs"  # where run directories are created
    torch_threads: int = 1  # CPU threads for torch (0 keeps torch's default); one is fastest on a busy 2-core machine

    env_id: str = "Hopper-v5"  # the gymnasium id of the environment (bounded continuous actions)
    total_timesteps: int = 1_000_000  # total environment steps of the experiment
    num_envs: int = 1  # number of parallel environments (one gradient step per environment step)
    buffer_size: int = 1_000_000  # replay buffer capacity in transitions
    gamma: float = 0.99  # the discount factor
    tau: float = 0.005  # target smoothing coefficient (polyak)
    batch_size: int = 256  # minibatch size sampled from the replay buffer
    learning_starts: int = 5_000  # environment steps of uniformly random actions before learning starts
    policy_lr: float = 3e-4  # the Adam learning rate of the actor
    q_lr: float = 1e-3  # the Adam learning rate of the Q-networks (and of alpha)
    policy_frequency: int = 2  # update the actor and alpha every this many gradient steps, that many times
    target_network_frequency: int = 1  # update the target networks every this many gradient steps
    alpha: float = 0.2  # the entropy coefficient; its initial value when --autotune is on
    autotune: bool = True  # tune alpha toward a target entropy of -dim(A); --no-autotune keeps --alpha fixed
    hidden_size: int = 256  # width of the two hidden layers of the actor and of each Q-network


class UsageError(ValueError):
    """A bad argument, environment or checkpoint: `python sac.py` reports it in one line and exits with status 2."""


def check_args(args: Args) -> None:
    """Refuse bad arguments, or spaces this script cannot handle, with one clear sentence before anything is built."""
    for bad, problem in [
        (min(args.num_envs, args.batch_size, args.buffer_size, args.policy_frequency, args.target_network_frequency,
             args.hidden_size) < 1, "--num-envs, --batch-size, --buffer-size, --policy-frequency, "
         "--target-network-frequency and --hidden-size must be at least 1."),
        (not (args.policy_lr > 0 and args.q_lr > 0 and args.alpha > 0), f"--policy-lr, --q-lr and --alpha must be "
         f"positive (got {args.policy_lr}, {args.q_lr}, {args.alpha})."),
        (not 0.0 < args.tau <= 1.0, f"--tau must be in (0, 1] (got {args.tau})."),
        (not 0 <= args.seed < 2**32 or args.eval_episodes < 0, f"--seed must be in [0, 2**32) and --eval-episodes "
         f"must be 0 or more (got {args.seed}, {args.eval_episodes})."),
        (args.load_model is None and args.learning_starts >= args.total_timesteps, f"--learning-starts "
         f"{args.learning_starts} is not below --total-timesteps {args.total_timesteps}: no gradient step would run."),
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
        (not (isinstance(act, gym.spaces.Box) and len(act.shape) == 1), f"sac.py needs a continuous (1-D Box) action "
         f"space, but {args.env_id} has {act}; use ppo.py for discrete actions."),
        (isinstance(act, gym.spaces.Box) and not np.isfinite([act.low, act.high]).all(), f"sac.py squashes actions into "
         f"finite bounds, but {args.env_id} has an unbounded action space {act}; give the environment a bounded one."),
        (isinstance(obs, gym.spaces.Box) and obs.dtype == np.uint8 and len(obs.shape) >= 2,
         f"{args.env_id} has image observations {obs}; a2c_atari.py trains a CNN on frames."),
        (not isinstance(obs, (gym.spaces.Box, gym.spaces.Discrete)), f"sac.py takes Box or Discrete observations, not "
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
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class Actor(nn.Module):
    """MLP (hidden-hidden, ReLU) whose last layer gives the mean and the log-std of the pre-squash Gaussian."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, low: np.ndarray, high: np.ndarray):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * act_dim))
        self.register_buffer("action_scale", torch.as_tensor((high - low) / 2.0, dtype=torch.float32))
        self.register_buffer("action_bias", torch.as_tensor((high + low) / 2.0, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1.0)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a ~ pi(.|s) (reparameterized: gradients flow through the noise) and log pi(a|s)."""
        mean, log_std = self(obs)
        return squashed_gaussian(mean, log_std, torch.randn_like(mean), self.action_scale, self.action_bias)

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action_bias + self.action_scale * torch.tanh(self(obs)[0])


class QNetwork(nn.Module):
    """Q(s, a): an MLP (hidden-hidden, ReLU) on the concatenated observation and action."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim + act_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], -1)).squeeze(-1)


# ---------------------------------------------------------------- the algorithm's math
def squashed_gaussian(mean, log_std, noise, scale, bias):
    """a = bias + scale * tanh(u) with u = mean + exp(log_std) * noise, and log pi(a) by the change of variables:
    sum_j log N(u_j; mean_j, std_j) - log(scale_j * (1 - tanh(u_j)^2)); 1 - tanh^2 via the stable
    log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)), so the log-prob stays finite where tanh(u) rounds to 1."""
    u = mean + log_std.exp() * noise
    log_normal = -0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)
    log_det = torch.log(scale) + 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return bias + scale * torch.tanh(u), (log_normal - log_det).sum(-1)


def sac_target(rewards, terminated, next_q1, next_q2, next_log_prob, alpha, gamma: float):
    """r + gamma * (1 - terminated) * (min(Q'_1(s', a'), Q'_2(s', a')) - alpha * log pi(a'|s'))."""
    return rewards + gamma * (1.0 - terminated) * (torch.min(next_q1, next_q2) - alpha * next_log_prob)


def critic_loss(q1, q2, y):
    """mean((Q_1 - y)^2) + mean((Q_2 - y)^2): both critics regress on the same target, held fixed (semi-gradient)."""
    return F.mse_loss(q1, y.detach()) + F.mse_loss(q2, y.detach())


def actor_loss(log_prob, q1_pi, q2_pi, alpha):
    """mean(alpha * log pi(a|s) - min(Q_1(s, a), Q_2(s, a))) for reparameterized samples a ~ pi(.|s)."""
    return (alpha * log_prob - torch.min(q1_pi, q2_pi)).mean()


def alpha_loss(log_alpha, log_prob, target_entropy: float):
    """-mean(alpha * (log pi(a|s) + target_entropy)): its gradient raises alpha while the entropy -log pi is below
    the target and lowers it above; log_prob is detached, so this loss trains alpha alone."""
    return -(log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


def polyak_update(target_params, params, tau: float) -> None:
    """target <- target + tau * (source - target) = tau * source + (1 - tau) * target, one fused op for all tensors."""
    torch._foreach_lerp_(list(target_params), list(params), tau)


# ---------------------------------------------------------------- replay buffer
class ReplayBuffer:
    """A ring buffer of transitions in preallocated tensors; a batch is the rows at one set of random indices."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.obs, self.next_obs = (torch.zeros((capacity, obs_dim), device=device) for _ in range(2))
        self.actions = torch.zeros((capacity, act_dim), device=device)
        self.rewards, self.terminated = (torch.zeros(capacity, device=device) for _ in range(2))
        self.capacity, self.pos, self.size = capacity, 0, 0

    def add(self, obs, actions, rewards, terminated, next_obs) -> None:
        """One row per environment."""
        idx = torch.from_numpy((self.pos + np.arange(len(obs))) % self.capacity)
        for store, x in zip((self.obs, self.actions, self.rewards, self.terminated, self.next_obs),
                            (obs, actions, rewards, terminated, next_obs)):
            store[idx] = torch.as_tensor(x, dtype=torch.float32).to(store.device)
        self.pos = (self.pos + len(obs)) % self.capacity
        self.size = min(self.size + len(obs), self.capacity)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """(obs, actions, rewards, terminated, next_obs), uniformly from the filled rows."""
        idx = torch.randint(self.size, (batch_size,), device=self.obs.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.terminated[idx], self.next_obs[idx]


# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    check_args(args)
    torch.set_num_threads(args.torch_threads or torch.get_num_threads())
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    loaded = load_checkpoint(args.load_model, args.env_id, device) if args.load_model is not None else None
    run = Run(args)
    if loaded is not None:
        return run.finish(loaded, evaluate(loaded, args, device, run, global_step=0))

    envs = make_envs(args.env_id, args.num_envs, args.capture_video, run.dir)
    envs.action_space.seed(args.seed)
    space = envs.single_action_space
    obs_dim, act_dim = int(np.prod(envs.single_observation_space.shape)), int(space.shape[0])
    dims = (obs_dim, act_dim, args.hidden_size, space.low.tolist(), space.high.tolist())
    actor = Actor(obs_dim, act_dim, args.hidden_size, space.low, space.high).to(device)
    qf1, qf2 = (QNetwork(obs_dim, act_dim, args.hidden_size).to(device) for _ in range(2))
    qf1_target, qf2_target = (copy.deepcopy(qf).requires_grad_(False) for qf in (qf1, qf2))
    q_params = [*qf1.parameters(), *qf2.parameters()]
    q_target_params = [*qf1_target.parameters(), *qf2_target.parameters()]
    q_optimizer = torch.optim.Adam(q_params, lr=args.q_lr, fused=True)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.policy_lr, fused=True)
    log_alpha = torch.tensor(math.log(args.alpha), device=device, requires_grad=True)
    alpha_optimizer = torch.optim.Adam([log_alpha], lr=args.q_lr)
    alpha, target_entropy = log_alpha.detach().exp(), -float(act_dim)
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)

    global_step, updates, start_time, interrupted = 0, 0, time.time(), False
    loss_pi = actor_grad_norm = torch.tensor(torch.nan, device=device)  # until the first (delayed) actor step
    obs, _ = envs.reset(seed=args.seed)
    try:
        while global_step < args.total_timesteps:
            # ---- interaction: uniformly random actions until learning starts
            global_step += args.num_envs
            if global_step <= args.learning_starts:
                actions = envs.action_space.sample()
            else:
                with torch.inference_mode():
                    actions = actor.sample(torch.as_tensor(obs, dtype=torch.float32, device=device))[0].cpu().numpy()
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            real_next_obs = next_obs.copy()
            if "_final_obs" in infos:  # the true final observation, not the reset one, is the transition's s'
                real_next_obs[infos["_final_obs"]] = np.stack(infos["final_obs"][infos["_final_obs"]])
            rb.add(obs, actions, rewards, terminated, real_next_obs)
            obs = next_obs
            run.log_episodes(global_step, infos)

            # ---- update: one gradient step per environment step, once learning has started
            for _ in range(args.num_envs if global_step > args.learning_starts else 0):
                updates += 1
                b_obs, b_actions, b_rewards, b_terminated, b_next_obs = rb.sample(args.batch_size)
                with torch.no_grad():
                    next_actions, next_log_prob = actor.sample(b_next_obs)
                    y = sac_target(b_rewards, b_terminated, qf1_target(b_next_obs, next_actions),
                                   qf2_target(b_next_obs, next_actions), next_log_prob, alpha, args.gamma)
                q1, q2 = qf1(b_obs, b_actions), qf2(b_obs, b_actions)
                q_optimizer.zero_grad()
                critic_loss(q1, q2, y).backward()
                grad_norm = nn.utils.get_total_norm([p.grad for p in q_params])  # monitored, not clipped
                q_optimizer.step()

                if updates % args.policy_frequency == 0:
                    qf1.requires_grad_(False), qf2.requires_grad_(False)  # the actor's loss trains the actor only
                    for _ in range(args.policy_frequency):
                        pi, log_prob = actor.sample(b_obs)
                        loss_pi = actor_loss(log_prob, qf1(b_obs, pi), qf2(b_obs, pi), alpha)
                        actor_optimizer.zero_grad()
                        loss_pi.backward()
                        actor_grad_norm = nn.utils.get_total_norm([p.grad for p in actor.parameters()])
                        actor_optimizer.step()
                        if args.autotune:
                            alpha_optimizer.zero_grad()
                            alpha_loss(log_alpha, log_prob, target_entropy).backward()
                            alpha_optimizer.step()
                            alpha = log_alpha.detach().exp()
                    qf1.requires_grad_(True), qf2.requires_grad_(True)
                if updates % args.target_network_frequency == 0:
                    polyak_update(q_target_params, q_params, args.tau)

                if updates % 100 == 0:  # the updates' only host sync
                    names = ["qf1_loss", "qf2_loss", "qf1_values", "grad_norm", "actor_loss", "actor_grad_norm",
                             "alpha"]
                    values = torch.stack([F.mse_loss(q1, y), F.mse_loss(q2, y), q1.mean(), grad_norm, loss_pi,
                                          actor_grad_norm, alpha]).tolist()
                    run.log(global_step, {**{f"losses/{n}": v for n, v in zip(names, values)},
                                          "charts/SPS": int(global_step / (time.time() - start_time))})
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at step {global_step:,}", flush=True)
    finally:
        envs.close()
        if args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), actor, args, dims)
    return run.finish(actor, [] if interrupted else evaluate(actor, args, device, run, global_step),
                      qf1=qf1, qf2=qf2, log_alpha=log_alpha, replay_buffer=rb)


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


def save_checkpoint(path: str, actor: Actor, args: Args, dims: tuple) -> None:
    state = {"script": "sac.py", "env_id": args.env_id, "dims": dims, "args": asdict(args), "actor": actor.state_dict()}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written model.pt


def load_checkpoint(path: str, env_id: str, device: torch.device) -> Actor:
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("script") != "sac.py":
        raise UsageError(f"{path} was not saved by sac.py; load it with the script that trained it.")
    if state["env_id"] != env_id:
        raise UsageError(f"{path} was trained on {state['env_id']}, not {env_id}; pass --env-id {state['env_id']}.")
    obs_dim, act_dim, hidden, low, high = state["dims"]
    actor = Actor(obs_dim, act_dim, hidden, np.asarray(low), np.asarray(high)).to(device)
    actor.load_state_dict(state["actor"])
    return actor


def evaluate(actor: Actor, args: Args, device: torch.device, run: Run, global_step: int) -> list[float]:
    """Mean-action returns of --eval-episodes episodes, one per env, on seeds training never used."""
    if not args.eval_episodes:
        return []
    envs = make_envs(args.env_id, args.eval_episodes)
    obs, _ = envs.reset(seed=args.seed + 100_000)
    while not all(env.episode_count for env in envs.envs):  # each env's RecordEpisodeStatistics
        with torch.inference_mode():
            action = actor.act_deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device))
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
        print(f"sac.py: error: {e}", file=sys.stderr)
        sys.exit(2)
