"""TD3 for continuous actions: deterministic actor, clipped double-Q, target policy smoothing, delayed updates.

Twin Delayed DDPG learns a deterministic policy mu(s) off-policy from a replay buffer, exploring with Gaussian
noise of std exploration_noise * scale added to mu(s) and clipped to the bounds. Three changes to DDPG fight the
overestimation bias of learned Q-functions: the target takes the smaller of two critics, the target action is
smoothed with clipped noise, and the actor and all targets update only every d-th step. Each line is the function
on its right:

    a'     = clip(mu'(s') + clip(eps, -c, c) * scale, low, high),  eps ~ N(0, policy_noise^2)    smoothed_target_action
    y      = r + gamma * (1 - terminated) * min(Q'_1(s', a'), Q'_2(s', a'))                      td3_target
    L_Q    = mean( (Q_1(s, a) - y)^2 ) + mean( (Q_2(s, a) - y)^2 )                               critic_loss
    L_mu   = -mean( Q_1(s, mu(s)) )                           (every --policy-frequency steps)   actor_loss
    theta' <- tau * theta + (1 - tau) * theta'                (actor and critics, same steps)    polyak_update

Paper: Fujimoto et al. 2018, "Addressing Function Approximation Error in Actor-Critic Methods"; the code follows
CleanRL's td3_continuous_action.py. Differences from the paper: noises are scaled by the half-width of the action
bounds, so the flags mean the same on any bounds; 256-unit layers (the paper: 400-300); a truncated episode stores
its true final observation with terminated = 0, so the target bootstraps through time limits; --num-envs N makes N
gradient steps per vector step. Box observations of any shape are flattened and Discrete ones one-hot encoded, as
in Stable-Baselines3.

Run:  python td3.py --env-id Hopper-v5    (evaluate: --load-model runs/RUN/model.pt; continue a stopped run: --resume runs/RUN)
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
from torch.utils.tensorboard import SummaryWriter

# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "td3"  # the name of this experiment (part of the run directory's name)
    seed: int | None = None  # seed of random, numpy, torch and the environments (1; with --load-model the run's)
    torch_deterministic: bool = True  # set torch.backends.cudnn.deterministic
    cuda: bool = True  # use CUDA when it is available
    track: bool = False  # mirror the logged scalars to Weights & Biases
    wandb_project_name: str = "actor-critic"  # the wandb project name
    wandb_entity: str | None = None  # the wandb entity (team or user)
    capture_video: bool = False  # record videos of the first environment into the run directory's videos/
    save_model: bool = False  # save the actor and arguments to model.pt in the run directory
    eval_episodes: int = 10  # evaluation episodes without exploration noise after training; 0 skips it
    load_model: str | None = None  # path to a model.pt: evaluate it instead of training
    resume: str | None = None  # a stopped run's directory: continue it from its checkpoint.pt, with its own arguments
    checkpoint_interval: float = 300.0  # seconds between writes of the resumable checkpoint.pt (also written when stopped)
    runs_dir: str = "runs"  # where run directories are created
    torch_threads: int = 1  # CPU threads for torch (0 keeps torch's default); one is fastest on a busy 2-core machine

    env_id: str | None = None  # gymnasium id, bounded continuous actions (Hopper-v5; with --load-model the run's own)
    total_timesteps: int = 1_000_000  # total environment steps of the experiment
    num_envs: int = 1  # number of parallel environments (one gradient step per environment step)
    buffer_size: int = 1_000_000  # replay buffer capacity in transitions
    gamma: float = 0.99  # the discount factor
    tau: float = 0.005  # target smoothing coefficient (polyak)
    batch_size: int = 256  # minibatch size sampled from the replay buffer
    learning_starts: int = 25_000  # environment steps of uniformly random actions before learning starts
    learning_rate: float = 3e-4  # the Adam learning rate of the actor and of the critics
    policy_noise: float = 0.2  # std of the target policy smoothing noise, in units of the action half-range
    noise_clip: float = 0.5  # clip of the target policy smoothing noise, in units of the action half-range
    exploration_noise: float = 0.1  # std of the Gaussian exploration noise, in units of the action half-range
    policy_frequency: int = 2  # update the actor and the targets every this many gradient steps (the delay d)
    hidden_size: int = 256  # width of the two hidden layers of the actor and of each Q-network

class UsageError(ValueError):
    """A bad argument, environment or checkpoint: `python td3.py` reports it in one line and exits with status 2."""

def check_args(args: Args) -> dict | None:  # bad arguments, checkpoints, spaces: one sentence before anything is built
    state = None if args.load_model is None and args.resume is None else load_checkpoint(args)  # fills in --env-id, --seed
    args.env_id, args.seed = args.env_id or "Hopper-v5", 1 if args.seed is None else args.seed
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
    for bad, problem in [  # every comparison with NaN is False: NaN fails every range
        (min(args.num_envs, args.batch_size, args.policy_frequency, args.hidden_size) < 1,
         "--num-envs, --batch-size, --policy-frequency, --hidden-size must be >= 1."),
        (args.batch_size > min(args.buffer_size, args.learning_starts), f"--batch-size {args.batch_size} must not exceed "
         f"--buffer-size {args.buffer_size} or --learning-starts {args.learning_starts}: a batch needs that many stored."),
        (args.load_model is None and args.total_timesteps // max(args.num_envs, 1) * args.num_envs <= args.learning_starts,
         f"--total-timesteps {args.total_timesteps} must exceed --learning-starts {args.learning_starts} (whole vector steps)."),
        (not (0 < args.learning_rate < math.inf and 0 <= args.gamma <= 1 and 0 < args.tau <= 1), f"--learning-rate must "
         f"be > 0 and finite, --gamma in [0, 1], --tau in (0, 1] (got {args.learning_rate}, {args.gamma}, {args.tau})."),
        (not (0 <= args.exploration_noise < math.inf and 0 <= args.policy_noise < math.inf and 0 <= args.noise_clip
              < math.inf), f"--exploration-noise, --policy-noise, --noise-clip must be finite and >= 0 (got "
         f"{args.exploration_noise}, {args.policy_noise}, {args.noise_clip})."),
        (not 0 <= args.seed < 2**32 or min(args.eval_episodes, args.torch_threads) < 0, f"--seed must be in [0, 2**32), "
         f"--eval-episodes and --torch-threads 0 or more (got {args.seed}, {args.eval_episodes}, {args.torch_threads})."),
        (not args.checkpoint_interval > 0, f"--checkpoint-interval must be positive (got {args.checkpoint_interval})."),
        (not (isinstance(act, gym.spaces.Box) and len(act.shape) == 1 and np.isfinite([act.low, act.high]).all()),
         f"td3.py needs bounded continuous actions (a 1-D Box with finite bounds), but {args.env_id} has {act}."),
        (not isinstance(obs, (gym.spaces.Box, gym.spaces.Discrete)) or obs.dtype == np.uint8 and len(obs.shape) >= 2,
         f"td3.py takes Box or Discrete observations, not {obs} ({args.env_id}); image observations need a CNN, as in "
         "a2c_atari.py; other spaces flatten with gym.wrappers.FlattenObservation."),
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
class Actor(nn.Module):  # deterministic MLP policy (hidden-hidden, ReLU) with a tanh output rescaled to the action bounds
    def __init__(self, obs_dim: int, act_dim: int, hidden: int, low: np.ndarray, high: np.ndarray):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, act_dim), nn.Tanh())
        self.register_buffer("action_scale", torch.as_tensor((high - low) / 2.0, dtype=torch.float32))
        self.register_buffer("action_bias", torch.as_tensor((high + low) / 2.0, dtype=torch.float32))
        self.register_buffer("action_low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("action_high", torch.as_tensor(high, dtype=torch.float32))
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action_bias + self.action_scale * self.net(obs)
    act_deterministic = forward

class QNetwork(nn.Module):  # Q(s, a): an MLP (hidden-hidden, ReLU) on the concatenated observation and action
    def __init__(self, obs_dim: int, act_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim + act_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))
    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], -1)).squeeze(-1)

# ---------------------------------------------------------------- the algorithm's math
def smoothed_target_action(target_action, noise, noise_clip: float, scale, low, high):
    """Target policy smoothing: clip(mu'(s') + clip(noise, -c, c) * scale, low, high); noise ~ N(0, policy_noise^2)."""
    return torch.clamp(target_action + noise.clamp(-noise_clip, noise_clip) * scale, low, high)

def td3_target(rewards, terminated, next_q1, next_q2, gamma: float):
    """Clipped double-Q: r + gamma * (1 - terminated) * min(Q'_1(s', a'), Q'_2(s', a'))."""
    return rewards + gamma * (1.0 - terminated) * torch.min(next_q1, next_q2)

def critic_loss(q1, q2, y):
    """mean((Q_1 - y)^2) + mean((Q_2 - y)^2): both critics regress on the same target, held fixed (semi-gradient)."""
    return F.mse_loss(q1, y.detach()) + F.mse_loss(q2, y.detach())

def actor_loss(qf1, actor, obs):
    """-mean(Q_1(s, mu(s))): the deterministic policy gradient ascends the first critic only."""
    return -qf1(obs, actor(obs)).mean()

def polyak_update(target_params, params, tau: float) -> None:
    """target <- target + tau * (source - target) = tau * source + (1 - tau) * target, one fused op for all tensors."""
    torch._foreach_lerp_(list(target_params), list(params), tau)

# ---------------------------------------------------------------- replay buffer
class ReplayBuffer:  # a ring buffer of transitions in preallocated tensors; a batch: the rows at one set of random indices
    tensors = ("obs", "actions", "rewards", "terminated", "next_obs")  # a transition, in the order of add and sample
    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.obs, self.next_obs = (torch.zeros((capacity, obs_dim), device=device) for _ in range(2))
        self.actions = torch.zeros((capacity, act_dim), device=device)
        self.rewards, self.terminated = (torch.zeros(capacity, device=device) for _ in range(2))
        self.capacity, self.pos, self.size = capacity, 0, 0  # full when size == capacity: pos then wraps around
    def add(self, obs, actions, rewards, terminated, next_obs) -> None:  # one row per environment
        idx = torch.from_numpy((self.pos + np.arange(len(obs))) % self.capacity)
        for name, x in zip(self.tensors, (obs, actions, rewards, terminated, next_obs)):
            getattr(self, name)[idx] = torch.as_tensor(x, dtype=torch.float32).to(self.obs.device)
        self.pos, self.size = (self.pos + len(obs)) % self.capacity, min(self.size + len(obs), self.capacity)
    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:  # the tensors' rows at batch_size random indices
        idx = torch.randint(self.size, (batch_size,), device=self.obs.device)
        return tuple(getattr(self, name)[idx] for name in self.tensors)
    def state_dict(self) -> dict:  # the filled rows only, copied (torch.save of a slice writes the whole tensor)
        return dict(pos=self.pos, size=self.size, **{k: getattr(self, k)[:self.size].to("cpu", copy=True) for k in self.tensors})
    def load_state_dict(self, state: dict) -> None:
        self.pos, self.size = state["pos"], state["size"]
        for k in self.tensors:
            getattr(self, k)[:self.size] = state[k]

# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    state, Stop.signum = check_args(args), 0
    torch.set_num_threads(args.torch_threads or torch.get_num_threads())
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    noise_rng = np.random.default_rng(args.seed)  # exploration noise
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    run = Run(args, state)
    envs = make_envs(args.env_id, args.num_envs, args.capture_video, run.dir)
    envs.action_space.seed(args.seed)
    space = envs.single_action_space
    obs_dim, act_dim = int(np.prod(envs.single_observation_space.shape)), int(space.shape[0])
    actor = Actor(obs_dim, act_dim, args.hidden_size, space.low, space.high).to(device)
    if state is not None:  # --load-model: evaluate the saved actor, no training; --resume: continue its training
        actor.load_state_dict(state["model"])
    qf1, qf2 = (QNetwork(obs_dim, act_dim, args.hidden_size).to(device) for _ in range(2))
    actor_target, qf1_target, qf2_target = (copy.deepcopy(net).requires_grad_(False) for net in (actor, qf1, qf2))
    q_params = [*qf1.parameters(), *qf2.parameters()]
    q_optimizer = torch.optim.Adam(q_params, lr=args.learning_rate, fused=True)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.learning_rate, fused=True)
    params = [*actor.parameters(), *q_params]
    target_params = [*actor_target.parameters(), *qf1_target.parameters(), *qf2_target.parameters()]
    explore_std = args.exploration_noise * (space.high - space.low) / 2.0
    num_iterations = 0 if args.load_model is not None else args.total_timesteps // args.num_envs
    if args.total_timesteps % args.num_envs and num_iterations:
        print(f"--total-timesteps {args.total_timesteps:,} runs as {num_iterations} vector steps of {args.num_envs}.", flush=True)
    rb = ReplayBuffer(min(args.buffer_size, num_iterations * args.num_envs), obs_dim, act_dim, device)  # no unused rows
    training = dict(actor_target=actor_target, qf1=qf1, qf2=qf2, qf1_target=qf1_target, qf2_target=qf2_target,  # for --resume
                    q_optimizer=q_optimizer, actor_optimizer=actor_optimizer, replay_buffer=rb)
    generators = [envs.action_space.np_random, noise_rng]  # beside random's, numpy's, torch's: the random actions', the noise's
    first_iteration, global_step = restore(state, training, generators) if args.resume else (1, 0)
    obs, _ = envs.reset(seed=args.seed + global_step)  # resuming: new episodes, on seeds of their own
    next_checkpoint, Stop.training = time.time() + args.checkpoint_interval, True
    start_step, start_time = global_step, time.time()  # charts/SPS: this process's steps over its training time
    try:
        for iteration in range(first_iteration, num_iterations + 1):
            # ---- interaction: uniformly random actions until learning starts, then mu(s) plus Gaussian noise
            global_step += args.num_envs
            if global_step <= args.learning_starts:
                actions = envs.action_space.sample()
            else:
                with torch.inference_mode():
                    actions = actor(torch.as_tensor(obs, dtype=torch.float32, device=device)).cpu().numpy()
                actions = np.clip(actions + noise_rng.normal(0.0, explore_std, actions.shape), space.low, space.high)
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            real_next_obs = next_obs.copy()
            if "_final_obs" in infos:  # the true final observation, not the reset one, is the transition's s'
                real_next_obs[infos["_final_obs"]] = np.stack(infos["final_obs"][infos["_final_obs"]])
            check_finite(global_step, observation=(obs, real_next_obs), reward=rewards)
            rb.add(obs, actions, rewards, terminated, real_next_obs)
            obs = next_obs
            run.log_episodes(global_step, infos)

            # ---- update: one gradient step per environment step after the random ones; numbered from the iteration,
            taken = (iteration - 1 - args.learning_starts // args.num_envs) * args.num_envs  # so a resumed run goes on
            for gradient_step in range(max(taken, 0) + 1, taken + args.num_envs + 1):  # (taken < 0: still random actions)
                b_obs, b_actions, b_rewards, b_terminated, b_next_obs = rb.sample(args.batch_size)
                with torch.no_grad():
                    noise = torch.randn_like(b_actions) * args.policy_noise
                    next_actions = smoothed_target_action(actor_target(b_next_obs), noise, args.noise_clip,
                                                          actor.action_scale, actor.action_low, actor.action_high)
                    y = td3_target(b_rewards, b_terminated, qf1_target(b_next_obs, next_actions),
                                   qf2_target(b_next_obs, next_actions), args.gamma)
                q1, q2 = qf1(b_obs, b_actions), qf2(b_obs, b_actions)
                q_optimizer.zero_grad()
                critic_loss(q1, q2, y).backward()
                grad_norm = nn.utils.get_total_norm([p.grad for p in q_params])  # monitored, not clipped
                q_optimizer.step()
                if gradient_step % args.policy_frequency == 0:  # the delay: actor and all targets every d-th step
                    qf1.requires_grad_(False)  # the actor's loss trains the actor: no gradients for Q_1's weights
                    loss_mu = actor_loss(qf1, actor, b_obs)
                    actor_optimizer.zero_grad()
                    loss_mu.backward()
                    actor_grad_norm = nn.utils.get_total_norm([p.grad for p in actor.parameters()])
                    actor_optimizer.step()
                    qf1.requires_grad_(True)
                    polyak_update(target_params, params, args.tau)
                if gradient_step % math.lcm(100, args.policy_frequency) == 0:  # every 100 steps, at one of the actor's
                    names = ["qf1_loss", "qf2_loss", "qf1_values", "grad_norm", "actor_loss", "actor_grad_norm"]
                    values = torch.stack([F.mse_loss(q1, y), F.mse_loss(q2, y), q1.mean(), grad_norm, loss_mu,
                                          actor_grad_norm]).tolist()  # the updates' only host sync, so the losses are
                    check_finite(global_step, **dict(zip(names, values)))  # checked here, not after every update
                    run.log(global_step, {**{f"losses/{n}": v for n, v in zip(names, values)},
                                          "charts/SPS": (global_step - start_step) / (time.time() - start_time)})
            if Stop.signum or time.time() > next_checkpoint or iteration == num_iterations:  # the state --resume restores
                save_checkpoint(run.checkpoint, actor, args, training, generators, iteration=iteration + 1,
                                global_step=global_step, **run.progress)
                if Stop.signum:
                    raise KeyboardInterrupt(Stop.signum, run.dir)
                next_checkpoint = time.time() + args.checkpoint_interval
    finally:  # also when stopped by SIGINT / SIGTERM or a non-finite number: the model first, then the environments
        Stop.training = False
        if args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), actor, args)
        envs.close()
        run.tb.flush()
    return run.finish(actor, evaluate(actor, args, device, run, global_step), **training)  # and the critics, the buffer...

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

def save_checkpoint(path: str, actor: Actor, args: Args, training: dict | None = None, generators=(), **counters) -> None:
    """model.pt: the actor, the arguments; checkpoint.pt also `training`, counters, RNGs. Atomic, never non-finite."""
    if all(p.isfinite().all() for m in [actor, *(training or {}).values()] if isinstance(m, nn.Module) for p in m.parameters()):
        kind, key, *rest = np.random.get_state()  # its key as a list: torch.load(weights_only=True) refuses numpy arrays
        extra = dict({k: x.state_dict() for k, x in training.items()},
                     **counters, rng=[random.getstate(), (kind, key.tolist(), *rest), torch.get_rng_state(),
                     torch.cuda.get_rng_state_all(), *(g.bit_generator.state for g in generators)]) if training else {}
        torch.save(dict(script="td3.py", env_id=args.env_id, args=asdict(args), model=actor.state_dict(), **extra), path + ".tmp")
        os.replace(path + ".tmp", path)

def restore(state: dict, training: dict, generators: list) -> tuple[int, int]:  # checkpoint.pt's training state, back
    for k, x in training.items():  # networks, optimizers, the replay buffer
        x.load_state_dict(state[k])
    for put, rng in zip([random.setstate, np.random.set_state, torch.set_rng_state, torch.cuda.set_rng_state_all,
                         *(functools.partial(setattr, g.bit_generator, "state") for g in generators)], state["rng"]):
        put(rng)
    return state["iteration"], state["global_step"]

def load_checkpoint(args: Args) -> dict:  # --load-model's file (it fills in --env-id, --seed, --hidden-size), or --resume's
    flag, path = ("--load-model", args.load_model) if args.resume is None else ("--resume", f"{args.resume}/checkpoint.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, empty, truncated, not a checkpoint at all
        why = f"{type(e).__name__}: {e}".splitlines()[0].rstrip(": ")
        raise UsageError(f"{flag} {path} cannot be read ({why}); pass a run's model.pt (--resume: a stopped run).") from None
    if not isinstance(state, dict) or state.get("script") != "td3.py" or args.resume and "csv_bytes" not in state:
        raise UsageError(f"{path} was not saved by td3.py, or by an older one: use the script that trained it.")
    if args.env_id not in (None, state["env_id"]):
        raise UsageError(f"{path} was trained on {state['env_id']}, not {args.env_id}; leave --env-id out.")
    args.env_id, args.seed = state["env_id"], state["args"]["seed"] if args.seed is None else args.seed
    given = [k for k, v in vars(args).items() if args.resume and k != "resume" and v not in (getattr(Args(), k), state["args"][k])]
    if given:  # a resumed run is the same run: its own arguments, every one
        raise UsageError(f"--resume continues {args.resume} with its own arguments: leave --{given[0].replace('_', '-')} out.")
    vars(args).update({k: v for k, v in state["args"].items() if args.resume and k != "resume" or k == "hidden_size"})
    return state

def evaluate(actor: Actor, args: Args, device: torch.device, run: Run, global_step: int) -> list[float]:
    """Noise-free returns of --eval-episodes episodes, one per env, on seeds training never used (eval/episodic_return)."""
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

class Stop:  # SIGINT, SIGTERM: training ends its environment step, writes checkpoint.pt, stops; a second one, evaluation: at once
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
        print(f"td3.py: error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt as e:  # exit status 128 + the signal's number, as a shell reports it
        print(f"td3.py: stopped by {signal.Signals(e.args[0]).name}; metrics.csv is kept, model.pt with --save-model" +
              (f"; continue with --resume {e.args[1]}" if len(e.args) > 1 else "") + ".", file=sys.stderr)
        sys.exit(128 + e.args[0])
