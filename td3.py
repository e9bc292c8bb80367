"""TD3 for continuous actions: deterministic actor, clipped double-Q, target policy smoothing, delayed updates.

Twin Delayed DDPG learns a deterministic policy mu(s) off-policy from a replay buffer. Three changes to DDPG
fight the overestimation bias of learned Q-functions: the target takes the smaller of two critics, the
target action is smoothed with clipped noise, and the actor and all targets update only every d-th step.

    a'    = clip(mu'(s') + clip(eps, -c, c) * scale, low, high),   eps ~ N(0, policy_noise^2)
    y     = r + gamma * (1 - terminated) * min(Q'_1(s', a'), Q'_2(s', a'))
    L_Q   = sum_i mean( (Q_i(s, a) - y)^2 )
    L_mu  = -mean( Q_1(s, mu(s)) )                                  (every --policy-frequency steps)
    theta' <- tau * theta + (1 - tau) * theta'                      (actor and critics, same steps)
    exploration: a = clip(mu(s) + N(0, (exploration_noise * scale)^2), low, high)

Paper: Fujimoto et al. 2018, "Addressing Function Approximation Error in Actor-Critic Methods".
Differences from the paper: noises are scaled by the half-width of the action bounds, so the flags mean the
same on any bounds; 256-unit layers (the paper: 400-300); a truncated episode stores its true final
observation with terminated = 0, so the target bootstraps through time limits; --num-envs N makes N
gradient steps per vector step (one per environment step). For speed the twin critics are one batched
ensemble (stacked weights, one baddbmm per layer serves both) and the actor's loss reads detached weights
of the first critic only, so its backward pass computes no critic weight gradients.

Run:  python td3.py --env-id Hopper-v5        (evaluate a saved model: --load-model runs/.../model.pt)
"""

# ---------------------------------------------------------------- imports
import copy
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
    exp_name: str = "td3"
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
    """evaluation episodes without exploration noise after training; 0 skips it"""
    load_model: str | None = None
    """path to a model.pt: evaluate it for --eval-episodes episodes instead of training"""
    runs_dir: str = "runs"
    """where run directories are created"""
    torch_threads: int = 1
    """CPU threads for torch (0 keeps torch's default); one is fastest on a busy 2-core machine"""

    env_id: str = "Hopper-v5"
    """the gymnasium id of the environment (bounded continuous actions)"""
    total_timesteps: int = 1_000_000
    """total environment steps of the experiment"""
    num_envs: int = 1
    """number of parallel environments (one gradient step per environment step)"""
    buffer_size: int = 1_000_000
    """replay buffer capacity in transitions"""
    gamma: float = 0.99
    """the discount factor"""
    tau: float = 0.005
    """target smoothing coefficient (polyak)"""
    batch_size: int = 256
    """minibatch size sampled from the replay buffer"""
    learning_starts: int = 25_000
    """environment steps of uniformly random actions before learning starts"""
    learning_rate: float = 3e-4
    """the Adam learning rate of the actor and of the critics"""
    policy_noise: float = 0.2
    """std of the target policy smoothing noise, in units of the action half-range"""
    noise_clip: float = 0.5
    """clip of the target policy smoothing noise, in units of the action half-range"""
    exploration_noise: float = 0.1
    """std of the Gaussian exploration noise, in units of the action half-range"""
    policy_frequency: int = 2
    """update the actor and the targets every this many gradient steps (the delay d)"""
    hidden_size: int = 256
    """width of the two hidden layers of the actor and of each Q-network"""


def check_args(args: Args) -> None:
    """Reject bad arguments with one clear sentence, before any environment is built."""
    for name in ("num_envs", "batch_size", "buffer_size", "policy_frequency", "hidden_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)}).")
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be positive (got {args.learning_rate}).")
    if args.policy_noise < 0 or args.noise_clip < 0 or args.exploration_noise < 0:
        raise ValueError("--policy-noise, --noise-clip and --exploration-noise must be 0 or more.")
    if not 0.0 < args.tau <= 1.0:
        raise ValueError(f"--tau must be in (0, 1] (got {args.tau}).")
    if args.load_model is None and args.total_timesteps < args.num_envs:
        raise ValueError(f"--total-timesteps {args.total_timesteps} is smaller than --num-envs {args.num_envs}; raise it.")
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
    # SAME_STEP autoreset: the observation returned with done=True already belongs to the next episode and
    # the true final observation is in infos["final_obs"]; it, not the reset observation, goes to the buffer.
    envs = gym.vector.SyncVectorEnv(
        [make_env(env_id, i, capture_video, run_dir) for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    space = envs.single_action_space
    problem = None
    if not isinstance(space, gym.spaces.Box):
        problem = f"td3.py needs a continuous (Box) action space, but {env_id} has {space}; use ppo.py for discrete actions."
    elif not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        problem = f"td3.py rescales a tanh output to finite bounds, but {env_id} has an unbounded action space {space}."
    elif not isinstance(envs.single_observation_space, gym.spaces.Box):
        problem = f"td3.py needs a Box observation space, but {env_id} has {envs.single_observation_space}."
    if problem:
        envs.close()
        raise ValueError(problem)
    return envs


# ---------------------------------------------------------------- networks
class Actor(nn.Module):
    """Deterministic MLP policy (hidden-hidden, ReLU) with a tanh output rescaled to the action bounds."""

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


class QEnsemble(nn.Module):
    """`n` Q-networks (MLP hidden-hidden, ReLU) with stacked weights: each layer is one batched matmul for all.
    Initialized like nn.Linear (uniform in +-1/sqrt(fan_in)), independently per member."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, n: int = 2):
        super().__init__()
        sizes = [obs_dim + act_dim, hidden, hidden, 1]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = fan_in ** -0.5
            self.weights.append(nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, fan_out).uniform_(-bound, bound)))
        self.n = n

    def layers(self, detach: bool = False) -> list:
        """(weight, bias) per layer; detached, gradients still flow to the input but not to the weights."""
        return [(w.detach(), b.detach()) if detach else (w, b) for w, b in zip(self.weights, self.biases)]

    def forward(self, obs_action: torch.Tensor, layers: list | None = None) -> torch.Tensor:
        """Q-values of a (batch, obs_dim + act_dim) input, shape (n, batch)."""
        layers = self.layers() if layers is None else layers
        x = obs_action.expand(layers[0][0].shape[0], -1, -1)
        for i, (w, b) in enumerate(layers):
            x = torch.baddbmm(b, x, w)
            if i < len(layers) - 1:
                x = torch.relu(x)
        return x.squeeze(-1)


# ---------------------------------------------------------------- the algorithm's math
def smoothed_target_action(target_action, noise, noise_clip: float, scale, low, high):
    """Target policy smoothing: clip(mu'(s') + clip(noise, -c, c) * scale, low, high); noise ~ N(0, policy_noise^2)."""
    return torch.clamp(target_action + noise.clamp(-noise_clip, noise_clip) * scale, low, high)


def td3_target(rewards, terminated, next_q, gamma: float):
    """r + gamma * (1 - terminated) * min over the ensemble of Q'(s', a'); next_q: (n, batch)."""
    return rewards + gamma * (1.0 - terminated) * next_q.min(0).values


def polyak_update(target_params, params, tau: float) -> None:
    """target <- target + tau * (source - target) = tau * source + (1 - tau) * target, one fused op for all tensors."""
    torch._foreach_lerp_(list(target_params), list(params), tau)


class ReplayBuffer:
    """Ring buffer of transitions stored as rows [obs | action | reward | terminated | next_obs] of one float32
    tensor: sampling a batch is one index op, and obs|action is already the critic's input (a view)."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.data = torch.zeros((capacity, 2 * obs_dim + act_dim + 2), dtype=torch.float32, device=device)
        self.capacity, self.obs_dim, self.act_dim, self.pos, self.size = capacity, obs_dim, act_dim, 0, 0

    def add(self, obs, action, reward, terminated, next_obs) -> None:
        """Add one row per environment; next_obs must be the true final observation where an episode ended."""
        rows = np.concatenate([obs, action, reward[:, None], terminated[:, None], next_obs], axis=1, dtype=np.float32)
        idx = (self.pos + np.arange(len(rows))) % self.capacity
        self.data[torch.from_numpy(idx)] = torch.from_numpy(rows).to(self.data.device)
        self.pos = int(idx[-1] + 1) % self.capacity
        self.size = min(self.size + len(rows), self.capacity)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """(obs_action, rewards, terminated, next_obs), uniformly from the filled slots."""
        batch = self.data[torch.randint(self.size, (batch_size,), device=self.data.device)]
        oa = self.obs_dim + self.act_dim
        return batch[:, :oa], batch[:, oa], batch[:, oa + 1], batch[:, oa + 2:]


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


def save_checkpoint(path: str, nets: dict, args: Args, dims) -> None:
    state = {"script": "td3.py", "env_id": args.env_id, "dims": dims, "args": asdict(args),
             **{name: net.state_dict() for name, net in nets.items()}}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written model.pt


def load_checkpoint(path: str, env_id: str, device: torch.device) -> Actor:
    if not os.path.isfile(path):
        raise ValueError(f"--load-model {path} does not exist; pass the model.pt of a run made with --save-model.")
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("script") != "td3.py":
        raise ValueError(f"{path} was not saved by td3.py; load it with the script that trained it.")
    if state["env_id"] != env_id:
        raise ValueError(f"{path} was trained on {state['env_id']}, not {env_id}; pass --env-id {state['env_id']}.")
    obs_dim, act_dim, hidden, low, high = state["dims"]
    actor = Actor(obs_dim, act_dim, hidden, np.asarray(low), np.asarray(high)).to(device)
    actor.load_state_dict(state["actor"])
    return actor


def evaluate(actor: Actor, env_id: str, episodes: int, seed: int, device: torch.device) -> list[float]:
    """Returns of `episodes` episodes without exploration noise, one per environment of a vector env."""
    envs = make_envs(env_id, episodes)
    obs, _ = envs.reset(seed=seed)
    returns = np.full(episodes, np.nan)
    while np.isnan(returns).any():
        with torch.inference_mode():
            action = actor.act_deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device))
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
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    run_name, run_dir = create_run_dir(args)
    logger = RunLogger(run_dir, args, run_name)
    eval_seed = args.seed + 100_000  # evaluation episodes never replay training seeds

    if args.load_model is not None:
        actor = load_checkpoint(args.load_model, args.env_id, device)
        eval_returns = evaluate(actor, args.env_id, args.eval_episodes, eval_seed, device) if args.eval_episodes else []
        for r in eval_returns:
            logger.log(0, {"eval/episodic_return": r})
        print(f"evaluated {args.load_model}: mean return {np.mean(eval_returns):.2f} over {len(eval_returns)} episodes")
        logger.close()
        return {"run_dir": run_dir, "episodic_returns": [], "eval_returns": eval_returns, "actor": actor}

    envs = make_envs(args.env_id, args.num_envs, args.capture_video, run_dir)
    envs.action_space.seed(args.seed)
    space = envs.single_action_space
    obs_dim, act_dim = int(np.prod(envs.single_observation_space.shape)), int(np.prod(space.shape))
    dims = (obs_dim, act_dim, args.hidden_size, space.low.tolist(), space.high.tolist())
    actor = Actor(obs_dim, act_dim, args.hidden_size, space.low, space.high).to(device)
    actor_target = copy.deepcopy(actor).requires_grad_(False)
    qf = QEnsemble(obs_dim, act_dim, args.hidden_size).to(device)
    qf_target = copy.deepcopy(qf).requires_grad_(False)
    q_optimizer = torch.optim.Adam(qf.parameters(), lr=args.learning_rate, fused=True)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.learning_rate, fused=True)
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)
    rng = np.random.default_rng(args.seed)  # exploration noise
    explore_std = args.exploration_noise * actor.action_scale.cpu().numpy()

    global_step, updates, last_log, episodic_returns, eval_returns, stats = 0, 0, 0, [], [], None
    start_time = last_print = time.time()
    obs, _ = envs.reset(seed=args.seed)
    interrupted = False
    try:
        while global_step < args.total_timesteps:
            # ---- interaction
            global_step += args.num_envs
            if global_step <= args.learning_starts:
                actions = envs.action_space.sample()
            else:
                with torch.inference_mode():
                    actions = actor(torch.as_tensor(obs, dtype=torch.float32, device=device)).cpu().numpy()
                actions = np.clip(actions + rng.normal(0.0, explore_std, actions.shape), space.low, space.high)
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            real_next_obs = next_obs.copy()
            if "_final_obs" in infos:  # the true final observation, not the reset one, is the transition's s'
                done_idx = np.flatnonzero(infos["_final_obs"])
                real_next_obs[done_idx] = np.stack(infos["final_obs"][done_idx])
            rb.add(obs.reshape(args.num_envs, -1), actions.reshape(args.num_envs, -1), rewards, terminated,
                   real_next_obs.reshape(args.num_envs, -1))
            obs = next_obs
            if "final_info" in infos and "_episode" in infos["final_info"]:
                ep = infos["final_info"]["episode"]
                for i in np.flatnonzero(infos["final_info"]["_episode"]):
                    episodic_returns.append((global_step, float(ep["r"][i])))
                    logger.log(global_step, {"charts/episodic_return": ep["r"][i], "charts/episodic_length": ep["l"][i]})

            # ---- update: one gradient step per environment step, once learning has started
            for _ in range(args.num_envs if global_step > args.learning_starts else 0):
                updates += 1
                obs_action, b_rewards, b_terminated, b_next_obs = rb.sample(args.batch_size)
                with torch.no_grad():
                    noise = torch.randn((args.batch_size, act_dim), device=device) * args.policy_noise
                    next_actions = smoothed_target_action(actor_target(b_next_obs), noise, args.noise_clip,
                                                          actor.action_scale, actor.action_low, actor.action_high)
                    next_q = qf_target(torch.cat([b_next_obs, next_actions], 1))
                    target = td3_target(b_rewards, b_terminated, next_q, args.gamma)
                q = qf(obs_action)
                qf_losses = (q - target).square().mean(1)
                q_optimizer.zero_grad()
                qf_losses.sum().backward()
                q_optimizer.step()

                if updates % args.policy_frequency == 0:
                    b_obs = obs_action[:, :obs_dim]
                    # Q_1 alone, with detached weights: gradients reach the actor, not the critic.
                    q1_layers = [(w[:1], b[:1]) for w, b in qf.layers(detach=True)]
                    actor_loss = -qf(torch.cat([b_obs, actor(b_obs)], 1), q1_layers).mean()
                    actor_optimizer.zero_grad()
                    actor_loss.backward()
                    actor_optimizer.step()
                    polyak_update(actor_target.parameters(), actor.parameters(), args.tau)
                    polyak_update(qf_target.parameters(), qf.parameters(), args.tau)
                    stats = (qf_losses.detach(), q[0].detach().mean(), actor_loss.detach())

            # ---- logging: every 100 gradient steps, the only host syncs of the loop
            if stats is not None and updates - last_log >= 100:
                last_log = updates
                (qf1_loss, qf2_loss), qf1_values, actor_loss_v = stats[0].tolist(), *(float(s) for s in stats[1:])
                sps = int(global_step / (time.time() - start_time))
                logger.log(global_step, {"losses/qf1_loss": qf1_loss, "losses/qf2_loss": qf2_loss,
                                         "losses/qf1_values": qf1_values, "losses/actor_loss": actor_loss_v,
                                         "charts/SPS": sps})
            if time.time() - last_print > 2.0 or global_step >= args.total_timesteps:
                last_print = time.time()
                sps = int(global_step / (time.time() - start_time))
                recent = np.mean([r for _, r in episodic_returns[-10:]]) if episodic_returns else float("nan")
                eta = (args.total_timesteps - global_step) / max(sps, 1)
                print(f"step {global_step:>9,}/{args.total_timesteps:,} | {sps:>6,} SPS | "
                      f"return (last 10) {recent:8.2f} | ETA {eta:5.0f}s", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at step {global_step:,}: metrics so far are in {run_dir}", flush=True)
    finally:
        envs.close()
        if args.save_model:
            nets = {"actor": actor, "actor_target": actor_target, "qf": qf, "qf_target": qf_target}
            save_checkpoint(os.path.join(run_dir, "model.pt"), nets, args, dims)
        if interrupted or not args.eval_episodes:
            logger.close()
    if not interrupted and args.eval_episodes:
        eval_returns = evaluate(actor, args.env_id, args.eval_episodes, eval_seed, device)
        for r in eval_returns:
            logger.log(global_step, {"eval/episodic_return": r})
        print(f"evaluation: mean return {np.mean(eval_returns):.2f} over {len(eval_returns)} noiseless episodes")
        logger.close()
    return {"run_dir": run_dir, "episodic_returns": episodic_returns, "eval_returns": eval_returns, "actor": actor,
            "qf": qf, "qf_target": qf_target, "replay_buffer": rb}


if __name__ == "__main__":
    main(tyro.cli(Args))
