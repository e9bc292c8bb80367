"""SAC for continuous actions: twin soft Q-networks, a tanh-squashed Gaussian actor, automatic entropy tuning.

Soft Actor-Critic maximizes return plus alpha times the policy's entropy, off-policy from a replay buffer; two Q-networks
and their polyak-averaged targets fight overestimation, and actions a = bias + scale * tanh(u), u ~ N(mu(s), sigma(s)^2)
stay inside the (possibly asymmetric) bounds. With a ~ pi(.|s) (reparameterized), a' ~ pi(.|s'), each line names its function:

    log pi(a|s) = sum_j [ log N(u_j; mu_j, sigma_j) - log(scale_j * (1 - tanh(u_j)^2)) ]     squashed_gaussian
    y        = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s'))   sac_target
    L_Q      = mean( (Q_1(s, a) - y)^2 ) + mean( (Q_2(s, a) - y)^2 )                         critic_loss
    L_pi     = mean( alpha * log pi(a|s) - min(Q_1(s, a), Q_2(s, a)) )                       actor_loss
    L_alpha  = -mean( alpha * (log pi(a|s) + target_entropy) ),   target_entropy = -dim(A)   alpha_loss
    theta'  <- tau * theta + (1 - tau) * theta'                                              polyak_update

Papers: Haarnoja et al. 2018, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep RL with a Stochastic Actor" and "Soft
Actor-Critic Algorithms and Applications"; the code follows CleanRL's sac_continuous_action.py. Differences: the actor and
alpha update every --policy-frequency gradient steps, that many times (TD3's delay); the log-std is squashed into [-5, 2];
alpha is learned as log(alpha); a time-limit truncation is stored with terminated = 0, so the target bootstraps through it.

Run:  python sac.py --env-id Hopper-v5        (evaluate a saved model: --load-model runs/.../model.pt)
"""

# ---------------------------------------------------------------- imports
import contextlib
import copy
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
import torch.nn.functional as F
import tyro


# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "sac"  # the name of this experiment (part of the run directory's name)
    seed: int | None = None  # seed of random, numpy, torch and the environments (1; with --load-model the run's)
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

    env_id: str | None = None  # gymnasium id, bounded continuous actions (Hopper-v5; with --load-model the run's own)
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


def check_args(args: Args) -> dict | None:
    """Refuse bad arguments, checkpoints or spaces with one sentence before anything is built; returns the checkpoint."""
    state = load_checkpoint(args) if args.load_model is not None else None  # it fills in --env-id, --seed, --hidden-size
    args.env_id, args.seed = args.env_id or "Hopper-v5", 1 if args.seed is None else args.seed
    for bad, problem in [  # written so that NaN fails every range (every comparison with NaN is False)
        (min(args.num_envs, args.batch_size, args.policy_frequency, args.target_network_frequency, args.hidden_size) < 1,
         "--num-envs, --batch-size, --policy-frequency, --target-network-frequency, --hidden-size must be >= 1."),
        (args.batch_size > min(args.buffer_size, args.learning_starts), f"--batch-size {args.batch_size} must not exceed "
         f"--buffer-size {args.buffer_size} or --learning-starts {args.learning_starts}: a batch needs that many stored."),
        (args.load_model is None and args.total_timesteps // max(args.num_envs, 1) * args.num_envs <= args.learning_starts,
         f"--total-timesteps {args.total_timesteps} is not above --learning-starts {args.learning_starts} (in whole vector "
         f"steps of --num-envs {args.num_envs}): no gradient step would run."),
        (not (0 < args.policy_lr < math.inf and 0 < args.q_lr < math.inf and 0 < args.alpha < math.inf and 0 <= args.gamma
              <= 1 and 0 < args.tau <= 1), f"--policy-lr, --q-lr, --alpha must be > 0 and finite, --gamma in [0, 1], --tau in "
         f"(0, 1] (got {args.policy_lr}, {args.q_lr}, {args.alpha}, {args.gamma}, {args.tau})."),
        (not 0 <= args.seed < 2**32 or min(args.eval_episodes, args.torch_threads) < 0, f"--seed must be in [0, 2**32), "
         f"--eval-episodes and --torch-threads 0 or more (got {args.seed}, {args.eval_episodes}, {args.torch_threads})."),
    ]:
        if bad:
            raise UsageError(problem)
    os.environ.setdefault("MUJOCO_GL", "egl" if sys.platform == "linux" else "glfw")  # Linux: video without a display
    with contextlib.suppress(ImportError):  # MuJoCo's warnings as Python's, each once, not lines in ./MUJOCO_LOG.TXT
        import mujoco  # (after MUJOCO_GL, which it reads at import)
        mujoco.set_mju_user_warning(functools.cache(lambda message: warnings.warn(message, RuntimeWarning)))
    try:
        env = gym.make(args.env_id, disable_env_checker=True)
    except gym.error.Error as e:  # an unknown id, or a missing package (the message names the pip command)
        raise UsageError(f"cannot make environment {args.env_id!r}: {e}") from None
    obs, act = env.observation_space, env.action_space
    env.close()
    for bad, problem in [
        (not (isinstance(act, gym.spaces.Box) and len(act.shape) == 1 and np.isfinite([act.low, act.high]).all()),
         f"sac.py needs bounded continuous actions (a 1-D Box with finite bounds), but {args.env_id} has {act}."),
        (isinstance(obs, gym.spaces.Box) and obs.dtype == np.uint8 and len(obs.shape) >= 2,
         f"{args.env_id} has image observations {obs}; a2c_atari.py trains a CNN on frames."),
        (not isinstance(obs, (gym.spaces.Box, gym.spaces.Discrete)), f"sac.py takes Box or Discrete observations, not "
         f"{obs}; flatten them with a wrapper (gym.wrappers.FlattenObservation)."),
    ]:
        if bad:
            raise UsageError(problem)
    return state


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
        return mean, -5.0 + 3.5 * (torch.tanh(log_std) + 1.0)  # the log-std squashed into [-5, 2]

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self(obs)  # a ~ pi(.|s), reparameterized (gradients flow through the noise), and log pi(a|s)
        return squashed_gaussian(mean, log_std, torch.randn_like(mean), self.action_scale, self.action_bias)

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action_bias + self.action_scale * torch.tanh(self(obs)[0])


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim + act_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], -1)).squeeze(-1)


# ---------------------------------------------------------------- the algorithm's math
def squashed_gaussian(mean, log_std, noise, scale, bias):
    """a = bias + scale * tanh(u), u = mean + exp(log_std) * noise, and log pi(a) by the change of variables, with the
    stable log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)): finite even where tanh(u) rounds to 1."""
    u = mean + log_std.exp() * noise
    log_normal = -0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)
    log_det = torch.log(scale) + 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return bias + scale * torch.tanh(u), (log_normal - log_det).sum(-1)


def sac_target(rewards, terminated, next_q1, next_q2, next_log_prob, alpha, gamma: float):
    return rewards + gamma * (1.0 - terminated) * (torch.min(next_q1, next_q2) - alpha * next_log_prob)


def critic_loss(q1, q2, y):
    return F.mse_loss(q1, y.detach()) + F.mse_loss(q2, y.detach())  # both regress on the same fixed target


def actor_loss(log_prob, q1_pi, q2_pi, alpha):
    return (alpha * log_prob - torch.min(q1_pi, q2_pi)).mean()


def alpha_loss(log_alpha, log_prob, target_entropy: float):
    return -(log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()  # log_prob detached: trains alpha alone


def polyak_update(target_params, params, tau: float) -> None:
    torch._foreach_lerp_(list(target_params), list(params), tau)  # target += tau * (source - target), one fused op


# ---------------------------------------------------------------- replay buffer
class ReplayBuffer:
    """A ring buffer of transitions in preallocated tensors; a batch is the rows at one set of random indices."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.obs, self.next_obs = (torch.zeros((capacity, obs_dim), device=device) for _ in range(2))
        self.actions = torch.zeros((capacity, act_dim), device=device)
        self.rewards, self.terminated = (torch.zeros(capacity, device=device) for _ in range(2))
        self.capacity, self.pos, self.size = capacity, 0, 0

    def add(self, obs, actions, rewards, terminated, next_obs) -> None:
        idx = torch.from_numpy((self.pos + np.arange(len(obs))) % self.capacity)
        for store, x in zip((self.obs, self.actions, self.rewards, self.terminated, self.next_obs),
                            (obs, actions, rewards, terminated, next_obs)):
            store[idx] = torch.as_tensor(x, dtype=torch.float32).to(store.device)
        self.pos = (self.pos + len(obs)) % self.capacity
        self.size = min(self.size + len(obs), self.capacity)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(self.size, (batch_size,), device=self.obs.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.terminated[idx], self.next_obs[idx]


# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    state = check_args(args)
    torch.set_num_threads(args.torch_threads or torch.get_num_threads())
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    run = Run(args)
    envs = make_envs(args.env_id, args.num_envs, args.capture_video, run.dir)
    envs.action_space.seed(args.seed)
    obs_dim, act_dim = int(np.prod(envs.single_observation_space.shape)), int(envs.single_action_space.shape[0])
    actor = Actor(obs_dim, act_dim, args.hidden_size, envs.single_action_space.low, envs.single_action_space.high).to(device)
    if state is not None:  # --load-model: evaluate the saved actor, no training
        actor.load_state_dict(state["model"])
    qf1, qf2 = (QNetwork(obs_dim, act_dim, args.hidden_size).to(device) for _ in range(2))
    qf1_target, qf2_target = (copy.deepcopy(qf).requires_grad_(False) for qf in (qf1, qf2))
    q_params = [*qf1.parameters(), *qf2.parameters()]
    q_optimizer = torch.optim.Adam(q_params, lr=args.q_lr, fused=True)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.policy_lr, fused=True)
    log_alpha = torch.tensor(math.log(args.alpha), device=device, requires_grad=True)
    alpha_optimizer = torch.optim.Adam([log_alpha], lr=args.q_lr)
    alpha, target_entropy = log_alpha.detach().exp(), -float(act_dim)
    num_iterations = 0 if state else args.total_timesteps // args.num_envs
    if args.total_timesteps % args.num_envs and not state:
        print(f"--total-timesteps {args.total_timesteps:,} runs as {num_iterations} vector steps of {args.num_envs}.", flush=True)
    rb = ReplayBuffer(min(args.buffer_size, num_iterations * args.num_envs), obs_dim, act_dim, device)  # no unused rows

    global_step, updates, start_time = 0, 0, time.time()
    obs, _ = envs.reset(seed=args.seed)
    try:
        for _ in range(num_iterations):
            # ---- interaction: uniformly random actions until learning starts
            global_step += args.num_envs
            with torch.inference_mode():
                actions = (envs.action_space.sample() if global_step <= args.learning_starts
                           else actor.sample(torch.as_tensor(obs, dtype=torch.float32, device=device))[0].cpu().numpy())
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            real_next_obs = next_obs.copy()
            if "_final_obs" in infos:  # the true final observation, not the reset one, is the transition's s'
                real_next_obs[infos["_final_obs"]] = np.stack(infos["final_obs"][infos["_final_obs"]])
            check_finite(global_step, observation=(obs, real_next_obs), reward=rewards)
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
                    polyak_update([*qf1_target.parameters(), *qf2_target.parameters()], q_params, args.tau)
                if updates % 100 == 0 and updates >= args.policy_frequency:  # once the (delayed) actor has stepped too
                    names = ["qf1_loss", "qf2_loss", "qf1_values", "grad_norm", "actor_loss", "actor_grad_norm", "alpha"]
                    values = torch.stack([F.mse_loss(q1, y), F.mse_loss(q2, y), q1.mean(), grad_norm, loss_pi,
                                          actor_grad_norm, alpha]).tolist()  # the updates' only host sync, so the losses
                    check_finite(global_step, **dict(zip(names, values)))  # are checked here, not after every update
                    run.log(global_step, {**{f"losses/{n}": v for n, v in zip(names, values)},
                                          "charts/SPS": int(global_step / (time.time() - start_time))})
    finally:  # also when stopped by SIGINT / SIGTERM or a non-finite number: the model first, then the environments
        if args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), actor, args)
        envs.close()
    return run.finish(actor, evaluate(actor, args, device, run, global_step),
                      qf1=qf1, qf2=qf2, log_alpha=log_alpha, replay_buffer=rb)


# ---------------------------------------------------------------- run plumbing: logging, checkpoints, evaluation
class Run:
    """runs/{env_id}__{exp_name}__{seed}__{unix_time}/: args.json, metrics.csv (long format, flushed per row), wandb."""

    def __init__(self, args: Args):
        base = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}".replace("/", "_")
        try:
            for n in itertools.count(1):  # atomic: two runs started in the same second never share one
                self.dir = os.path.join(args.runs_dir, base if n == 1 else f"{base}_{n}")
                with contextlib.suppress(FileExistsError):
                    os.makedirs(self.dir)
                    break
        except OSError as e:
            raise UsageError(f"cannot create a run directory in --runs-dir {args.runs_dir!r} ({e.strerror}).") from None
        self.wandb = None
        if args.track:  # wandb is imported only when tracking: it takes half a second
            import wandb
            try:
                self.wandb = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args),
                                        name=os.path.basename(self.dir), dir=self.dir)
            except Exception as e:  # no login, no network: one line, and nothing of the run left behind
                shutil.rmtree(self.dir)
                raise UsageError(f"--track: wandb did not start ({type(e).__name__}); try `wandb login`.") from None
            self.wandb.define_metric("*", step_metric="global_step")  # a row per call: one step's values never merge
        with open(os.path.join(self.dir, "args.json"), "w") as f:
            json.dump(asdict(args), f, indent=2)
        self.file = open(os.path.join(self.dir, "metrics.csv"), "w")
        self.file.write("global_step,wall_time,name,value\n")
        self.total, self.episodic_returns, self.start, self.last_print = args.total_timesteps, [], time.time(), 0.0
        print(f"run directory: {self.dir}", flush=True)

    def log(self, step: int, scalars: dict) -> None:
        """One row per scalar; when charts/SPS is among them, a progress line every two seconds."""
        scalars, wall = {name: float(value) for name, value in scalars.items()}, time.time() - self.start
        self.file.writelines(f"{step},{wall:.3f},{name},{value}\n" for name, value in scalars.items())
        self.file.flush()
        if self.wandb is not None:
            self.wandb.log({**scalars, "global_step": step})
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


def check_finite(step: int, **quantities) -> None:
    """Stop at the first non-finite loss, gradient norm, observation or reward (metrics.csv keeps what was logged)."""
    for name, value in quantities.items():
        if not np.isfinite(value).all():
            raise FloatingPointError(f"the {name.replace('_', ' ')} is not finite at step {step:,}: training stopped.")


def save_checkpoint(path: str, actor: Actor, args: Args) -> None:
    """The actor (all that acting needs) and the arguments, written atomically; never non-finite weights."""
    if all(p.isfinite().all() for p in actor.parameters()):
        torch.save(dict(script="sac.py", env_id=args.env_id, args=asdict(args), model=actor.state_dict()), path + ".tmp")
        os.replace(path + ".tmp", path)


def load_checkpoint(args: Args) -> dict:
    """The checkpoint --load-model names; its run's environment and seed fill in --env-id and --seed if not given."""
    try:
        state = torch.load(args.load_model, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, empty, truncated, not a checkpoint at all
        why = f"{type(e).__name__}: {e}".splitlines()[0].rstrip(": ")
        raise UsageError(f"--load-model {args.load_model} cannot be read ({why}); pass a run's model.pt.") from None
    if not isinstance(state, dict) or state.get("script") != "sac.py":
        raise UsageError(f"{args.load_model} was not saved by sac.py; load it with the script that trained it.")
    if args.env_id not in (None, state["env_id"]):
        raise UsageError(f"{args.load_model} was trained on {state['env_id']}, not {args.env_id}; leave --env-id out.")
    args.env_id, args.seed = state["env_id"], state["args"]["seed"] if args.seed is None else args.seed
    args.hidden_size = state["args"]["hidden_size"]  # the saved weights' width
    return state


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


def raise_stopped(signum: int, frame) -> None:  # SIGINT (Ctrl-C) or SIGTERM, wherever the run is: main keeps the model
    raise KeyboardInterrupt(signum)  # carries the signal's number, for the exit status


if __name__ == "__main__":
    signal.signal(signal.SIGINT, raise_stopped)
    signal.signal(signal.SIGTERM, raise_stopped)
    try:
        main(tyro.cli(Args))
    except (UsageError, FloatingPointError) as e:  # one line; status 2 for a bad flag, environment or checkpoint
        print(f"sac.py: error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt as e:  # exit status 128 + the signal's number, as a shell reports it
        print(f"sac.py: stopped by {signal.Signals(e.args[0]).name}; metrics.csv is kept, and model.pt with "
              "--save-model.", file=sys.stderr)
        sys.exit(128 + e.args[0])
