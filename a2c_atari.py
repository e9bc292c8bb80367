"""A2C on Atari from pixels: the Nature-CNN actor-critic of Mnih et al., trained by synchronous workers.

Every `num_steps` steps of `num_envs` Atari games (per process), A2C takes one gradient step on the whole
rollout: the policy follows the advantage-weighted log-likelihood gradient, the critic regresses onto the
n-step / GAE returns, and an entropy bonus keeps the policy from collapsing early. Started with torchrun,
N processes each play their own games and average their gradients with one all-reduce per update, so
every process takes the same step: the synchronous multi-worker scheme A2C is named for.

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   R_t = A_t + V(s_t)
    L       = -mean(A_t * log pi(a_t|s_t)) + vf_coef * 0.5 * mean((R_t - V(s_t))^2) - ent_coef * mean(H[pi(.|s_t)])

Preprocessing (Mnih et al. 2015; Machado et al. 2018): up to 30 no-op starts, FIRE on reset where the game
needs it, an action repeated for 4 frames with the maximum over the last two, 84x84 grayscale, 4 stacked
frames, observations kept as uint8 until the network. --vector-env picks who does it and how the games
step: "ale" (default) and "ale-threads" use ale-py's C++ vector env, which preprocesses in C++ and steps
the games one by one or in parallel worker threads (no GIL, no pickling); "sync" and "async" use
gymnasium's wrappers (AtariPreprocessing, FrameStackObservation) around each game, stepped one by one in
this process or in AsyncVectorEnv subprocesses. Threads and subprocesses change only the speed: "ale" and
"ale-threads" give identical results, as do "sync" and "async". The two preprocessing implementations draw
their random no-op starts differently and ale-py's fire lasts one frame rather than four, so a seed gives
the same kind of games, not the same games, under "ale" and "sync". Only the gymnasium envs render, so
--capture-video needs --vector-env sync or async.
The learner sees rewards clipped to their sign and a lost life as the end of an episode (no bootstrap
across it), while the game itself goes on: logged returns are raw full-game scores.

Steps are counted the CleanRL way: `global_step` and `--total-timesteps` count agent steps summed over
all environments of all processes; each agent step is 4 emulator frames, so frames = 4 * global_step.
charts/SPS is agent steps per second (multiply by 4 for frames per second).

Paper: Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning" (A2C is the synchronous
variant of A3C, as in OpenAI baselines); network and preprocessing from Mnih et al. 2015 ("Human-level
control through deep reinforcement learning"). Defaults are the A2C ones: 16 envs x 5 steps, RMSprop
(7e-4, alpha 0.99, eps 1e-5), linear learning-rate decay, gamma 0.99, entropy 0.01, value 0.5, gradient
norm 0.5, --gae-lambda 1.0 (the paper's n-step return). Differences from the paper: synchronous workers;
RMSprop statistics are per process (identical across processes, as are the gradients), not shared; a
time-limit truncation (108k frames) is bootstrapped with gamma * V(true final observation).

Run:  python a2c_atari.py --env-id BreakoutNoFrameskip-v4
      python a2c_atari.py --vector-env async --capture-video      (gymnasium wrappers, subprocess envs)
      torchrun --standalone --nproc_per_node=2 a2c_atari.py --env-id ALE/Pong-v5
      (2 machines: torchrun --nnodes=2 --nproc_per_node=N --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 ... on each)
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
import torch.distributed as dist
import torch.nn as nn
import tyro
from torch.distributions import Categorical


# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "a2c_atari"
    """the name of this experiment (part of the run directory's name)"""
    seed: int = 1
    """seed of random, numpy, torch and the environments (process r's games use seed + r * num_envs + i)"""
    torch_deterministic: bool = True
    """set torch.backends.cudnn.deterministic"""
    cuda: bool = True
    """use CUDA when it is available (with torchrun: the GPU of LOCAL_RANK)"""
    track: bool = False
    """mirror the logged scalars to Weights & Biases"""
    wandb_project_name: str = "actor-critic"
    """the wandb project name"""
    wandb_entity: str | None = None
    """the wandb entity (team or user)"""
    capture_video: bool = False
    """record videos of the first game into the run directory's videos/ (needs --vector-env sync or async)"""
    save_model: bool = False
    """save weights and arguments to model.pt in the run directory"""
    eval_episodes: int = 10
    """deterministic (argmax) full-game evaluation episodes after training; 0 skips it"""
    load_model: str | None = None
    """path to a model.pt: evaluate it for --eval-episodes episodes instead of training"""
    runs_dir: str = "runs"
    """where run directories are created"""
    torch_threads: int = 1
    """CPU threads for torch per process (0 keeps torch's default); 1 was fastest on shared 2-core machines"""
    log_interval: int = 25
    """log the training scalars, averaged, every this many updates"""
    rank_weights_dir: str | None = None
    """(checking torchrun) every process also writes its final weights to DIR/rank{RANK}.pt"""

    env_id: str = "BreakoutNoFrameskip-v4"
    """the gymnasium id of an Atari game (it picks the game, sticky actions and action set)"""
    total_timesteps: int = 10_000_000
    """total agent steps of the experiment, summed over all environments and processes (frames = 4x)"""
    vector_env: Literal["ale", "ale-threads", "sync", "async"] = "ale"
    """how the games are preprocessed and stepped: ale-py's C++ vector env one by one ("ale") or in worker
    threads, one per core ("ale-threads"); gymnasium's Atari wrappers one by one ("sync") or in AsyncVectorEnv
    subprocesses, one per game ("async")"""
    learning_rate: float = 7e-4
    """the RMSprop learning rate"""
    rmsprop_alpha: float = 0.99
    """RMSprop's smoothing constant"""
    optimizer_eps: float = 1e-5
    """epsilon of RMSprop"""
    num_envs: int = 16
    """number of parallel environments per process"""
    num_steps: int = 5
    """steps per environment in each rollout (the n of n-step returns)"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over training"""
    gamma: float = 0.99
    """the discount factor"""
    gae_lambda: float = 1.0
    """the GAE lambda (1.0: the paper's n-step returns, 0.0: one-step TD)"""
    ent_coef: float = 0.01
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """maximum global gradient norm (of the gradient averaged over processes)"""


def check_args(args: Args) -> None:
    """Reject bad arguments with one clear sentence, before any environment is built."""
    batch = args.num_envs * args.num_steps * int(os.environ.get("WORLD_SIZE", "1"))  # torchrun's process count
    if args.num_envs < 1 or args.num_steps < 1:
        raise ValueError(f"--num-envs and --num-steps must be at least 1 (got {args.num_envs}, {args.num_steps}).")
    if args.load_model is None and args.total_timesteps < batch:
        raise ValueError(
            f"--total-timesteps {args.total_timesteps} is smaller than one batch (num_envs * num_steps * processes "
            f"= {batch}); raise --total-timesteps or shrink the rollout."
        )
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be positive (got {args.learning_rate}).")
    if args.eval_episodes < 0 or args.log_interval < 1:
        raise ValueError(f"--eval-episodes must be >= 0 and --log-interval >= 1 (got {args.eval_episodes}, {args.log_interval}).")
    if args.capture_video and args.vector_env not in ("sync", "async"):
        raise ValueError(f"--capture-video needs --vector-env sync or async (ale-py's C++ vector env, "
                         f"--vector-env {args.vector_env}, renders no frames).")
    if args.vector_env in ("sync", "async"):
        try:
            import cv2  # noqa: F401  (gymnasium's AtariPreprocessing resizes with it)
        except ImportError:
            raise ValueError(f"--vector-env {args.vector_env} uses gymnasium's AtariPreprocessing, which needs opencv; "
                             "install it with pip install opencv-python-headless (or use --vector-env ale).") from None
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        raise ValueError('a2c_atari.py needs ale-py for the Atari games; install it with pip install "gymnasium[atari]".') from None
    try:
        spec = gym.spec(args.env_id)
    except gym.error.Error as e:
        raise ValueError(f"unknown environment id {args.env_id!r} ({e}); check the spelling and version.") from None
    if spec.entry_point != "ale_py.env:AtariEnv":
        raise ValueError(f"{args.env_id} is not an Atari game; a2c_atari.py trains on ALE ids such as "
                         "BreakoutNoFrameskip-v4 or ALE/Pong-v5 (use a2c.py for other environments).")


# ---------------------------------------------------------------- environments
class FireOnReset(gym.Wrapper):
    """Press FIRE after every reset in games that wait for it (Breakout serves no ball until FIRE)."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        if self.env.unwrapped.get_action_meanings()[1] == "FIRE":
            obs, _, terminated, truncated, info = self.env.step(1)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def make_env(env_id: str, idx: int, capture_video: bool, run_dir: str):
    """One game under gymnasium's Atari wrappers (for --vector-env sync / async)."""

    def thunk():
        # frameskip=1: AtariPreprocessing repeats the actions (ALE/...-v5 ids skip 4 frames by default).
        kwargs = dict(frameskip=1, disable_env_checker=True)
        if capture_video and idx == 0:  # the full-rate game, before preprocessing
            env = gym.wrappers.RecordVideo(gym.make(env_id, render_mode="rgb_array", **kwargs),
                                           os.path.join(run_dir, "videos"))
        else:
            env = gym.make(env_id, **kwargs)
        env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True,
                                              terminal_on_life_loss=False)  # life loss is done by the learner
        # zero padding at reset, as ale-py's vector env does
        return gym.wrappers.FrameStackObservation(FireOnReset(env), 4, padding_type="zero")

    return thunk


def make_envs(env_id: str, num_envs: int, vector_env: str = "ale", capture_video: bool = False,
              run_dir: str = ".") -> gym.vector.VectorEnv:
    """`num_envs` games of `env_id` with the standard preprocessing (see the module docstring), under
    gymnasium's RecordEpisodeStatistics, which sees the raw rewards of full games (no life-loss ends).
    SAME_STEP autoreset: the observation returned with done already starts the next game and the true final
    one is in infos["final_obs"], so no transition invented by the autoreset reaches the loss."""
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if vector_env in ("sync", "async"):
        thunks = [make_env(env_id, i, capture_video, run_dir) for i in range(num_envs)]
        vector_cls = gym.vector.AsyncVectorEnv if vector_env == "async" else gym.vector.SyncVectorEnv
        return gym.wrappers.vector.RecordEpisodeStatistics(vector_cls(thunks, autoreset_mode=same_step))
    from ale_py.vector_env import AtariVectorEnv

    spec = gym.spec(env_id)
    envs = AtariVectorEnv(
        spec.kwargs["game"], num_envs,
        repeat_action_probability=spec.kwargs.get("repeat_action_probability", 0.25),
        full_action_space=spec.kwargs.get("full_action_space", False),
        max_num_frames_per_episode=spec.kwargs.get("max_num_frames_per_episode", 108_000),
        num_threads=min(num_envs, os.cpu_count() or 1) if vector_env == "ale-threads" else 1,
        autoreset_mode=same_step,
        noop_max=30, frameskip=4, maxpool=True, img_height=84, img_width=84, grayscale=True, stack_num=4,
        use_fire_reset=True, episodic_life=False, reward_clipping=False,  # both done by the learner, see main
    )
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


# ---------------------------------------------------------------- networks
def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Module:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """The Nature-CNN trunk (Mnih et al. 2015) shared by a categorical policy head and a value head.
    Takes uint8 frames (batch, 4, 84, 84) and scales them to [0, 1] itself."""

    def __init__(self, n_actions: int):
        super().__init__()
        self.trunk = nn.Sequential(
            layer_init(nn.Conv2d(4, 32, 8, stride=4)), nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(),
            nn.Flatten(),
            layer_init(nn.Linear(64 * 7 * 7, 512)), nn.ReLU(),
        )
        self.actor = layer_init(nn.Linear(512, n_actions), std=0.01)
        self.critic = layer_init(nn.Linear(512, 1), std=1.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x.float() / 255.0)

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(self.features(x)).squeeze(-1)

    def sample_action(self, x: torch.Tensor) -> torch.Tensor:
        return Categorical(logits=self.actor(self.features(x)), validate_args=False).sample()

    def evaluate_actions(self, x: torch.Tensor, action: torch.Tensor):
        """log pi(a|s), entropy and V(s) from one pass through the shared trunk."""
        hidden = self.features(x)
        dist = Categorical(logits=self.actor(hidden), validate_args=False)
        return dist.log_prob(action), dist.entropy(), self.critic(hidden).squeeze(-1)

    def act_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return self.actor(self.features(x)).argmax(-1)


# ---------------------------------------------------------------- the algorithm's math
def learning_signal(reward, terminated, truncated, lives, prev_lives):
    """What the learner sees of one vector step: the reward clipped to its sign, and done when the game
    ended or a life was lost (the game itself goes on, so the logged scores stay full-game scores)."""
    return np.sign(reward).astype(np.float32), terminated | truncated | (lives < prev_lives)


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


def average_gradients(params: list, world: int) -> None:
    """Replace every gradient by its mean over the processes: one flat buffer, one all-reduce."""
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    for g, mean in zip(grads, torch.split(flat / world, [g.numel() for g in grads])):
        g.copy_(mean.view_as(g))


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


def save_checkpoint(path: str, agent: Agent, args: Args, n_actions: int) -> None:
    state = {"script": "a2c_atari.py", "env_id": args.env_id, "n_actions": n_actions,
             "args": asdict(args), "model": agent.state_dict()}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written model.pt


def load_checkpoint(path: str, env_id: str, device: torch.device) -> Agent:
    if not os.path.isfile(path):
        raise ValueError(f"--load-model {path} does not exist; pass the model.pt of a run made with --save-model.")
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("script") != "a2c_atari.py":
        raise ValueError(f"{path} was not saved by a2c_atari.py; load it with the script that trained it.")
    if state["env_id"] != env_id:
        raise ValueError(f"{path} was trained on {state['env_id']}, not {env_id}; pass --env-id {state['env_id']}.")
    agent = Agent(state["n_actions"]).to(device)
    agent.load_state_dict(state["model"])
    return agent


def evaluate(agent: Agent, env_id: str, episodes: int, seed: int, device: torch.device,
             vector_env: str = "ale") -> list[float]:
    """Raw full-game scores of the argmax policy, one game per environment of a vector env. (An argmax
    policy that never presses FIRE after a lost life runs until the 108k-frame limit.)"""
    envs = make_envs(env_id, episodes, vector_env)
    obs, _ = envs.reset(seed=seed)
    returns = np.full(episodes, np.nan)
    while np.isnan(returns).any():
        with torch.inference_mode():
            action = agent.act_deterministic(torch.from_numpy(obs).to(device)).cpu().numpy()
        obs, _, _, _, infos = envs.step(action)
        if "_episode" in infos:
            first = infos["_episode"] & np.isnan(returns)
            returns[first] = infos["episode"]["r"][first]
    envs.close()
    return returns.tolist()


# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    check_args(args)
    distributed = "LOCAL_RANK" in os.environ  # started by torchrun
    rank, world, local_rank = (int(os.environ.get(k, d)) for k, d in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)))
    use_cuda = torch.cuda.is_available() and args.cuda
    device = torch.device(f"cuda:{local_rank}" if use_cuda and distributed else "cuda" if use_cuda else "cpu")
    if distributed:
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=device if use_cuda else None)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    random.seed(args.seed + rank)
    np.random.seed(args.seed + rank)
    torch.manual_seed(args.seed)  # the same initial weights in every process
    torch.backends.cudnn.deterministic = args.torch_deterministic
    loaded = load_checkpoint(args.load_model, args.env_id, device) if args.load_model is not None else None
    run_dir = logger = None
    if rank == 0:  # only rank 0 writes the run directory, logs and saves
        run_name, run_dir = create_run_dir(args)
        logger = RunLogger(run_dir, args, run_name)
    eval_seed = args.seed + 100_000  # evaluation games never replay training seeds

    if loaded is not None:
        eval_returns = []
        if rank == 0 and args.eval_episodes:
            eval_returns = evaluate(loaded, args.env_id, args.eval_episodes, eval_seed, device, args.vector_env)
            for r in eval_returns:
                logger.log(0, {"eval/episodic_return": r})
            print(f"evaluated {args.load_model}: mean score {np.mean(eval_returns):.2f} over {len(eval_returns)} games")
        if logger is not None:
            logger.close()
        if distributed:
            dist.destroy_process_group()
        return {"run_dir": run_dir, "episodic_returns": [], "eval_returns": eval_returns, "agent": loaded}

    envs = make_envs(args.env_id, args.num_envs, args.vector_env, args.capture_video and rank == 0, run_dir)
    n_actions = int(envs.single_action_space.n)
    agent = Agent(n_actions).to(device)
    params = list(agent.parameters())
    if distributed:
        for p in params:  # identical by the shared seed already; the broadcast makes sure of it
            dist.broadcast(p.data, src=0)
    torch.manual_seed(args.seed + rank)  # ... but every process samples its own actions
    optimizer = torch.optim.RMSprop(params, lr=args.learning_rate, alpha=args.rmsprop_alpha, eps=args.optimizer_eps)

    batch_size = args.num_envs * args.num_steps
    steps_per_update = batch_size * world
    num_iterations = args.total_timesteps // steps_per_update
    # Rollout storage, preallocated: frames stay uint8 on the device (one copy per step); rewards and dones
    # are numpy and cross to torch once per rollout. V(obs) of the rollout comes from the update's forward pass.
    obs = torch.zeros((args.num_steps, args.num_envs, 4, 84, 84), dtype=torch.uint8, device=device)
    actions = torch.zeros((args.num_steps, args.num_envs), dtype=torch.int64, device=device)
    rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(2))

    global_step, episodic_returns, eval_returns, stats = 0, [], [], []
    next_obs_np, infos = envs.reset(seed=args.seed + rank * args.num_envs)
    start_time = last_print = time.time()  # after the reset, which takes seconds for 16 games
    lives = infos["lives"]
    interrupted = False
    try:
        for iteration in range(1, num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / num_iterations)

            # ---- rollout
            for step in range(args.num_steps):
                global_step += steps_per_update // args.num_steps
                obs[step].copy_(torch.from_numpy(next_obs_np))
                with torch.inference_mode():
                    actions[step] = agent.sample_action(obs[step])
                next_obs_np, reward, terminated, truncated, infos = envs.step(actions[step].cpu().numpy())
                rewards[step], dones[step] = learning_signal(reward, terminated, truncated, infos["lives"], lives)
                lives = infos["lives"]
                # A time limit is not a real end: bootstrap with the value of the true final observation.
                trunc_idx = np.flatnonzero(truncated & ~terminated)
                if trunc_idx.size:
                    with torch.inference_mode():
                        final_v = agent.get_value(torch.from_numpy(infos["final_obs"][trunc_idx]).to(device))
                    rewards[step, trunc_idx] += args.gamma * final_v.cpu().numpy()
                if "_episode" in infos and rank == 0:
                    for i in np.flatnonzero(infos["_episode"]):
                        episodic_returns.append((global_step, float(infos["episode"]["r"][i])))
                        logger.log(global_step, {"charts/episodic_return": infos["episode"]["r"][i],
                                                 "charts/episodic_length": infos["episode"]["l"][i]})

            # ---- update: one gradient step on the whole rollout, gradients averaged over the processes
            logprob, entropy, b_values = agent.evaluate_actions(obs.view(batch_size, 4, 84, 84), actions.view(-1))
            with torch.no_grad():
                next_value = agent.get_value(torch.from_numpy(next_obs_np).to(device))
                advantages, returns = compute_gae(torch.from_numpy(rewards).to(device), b_values.detach().view(args.num_steps, -1),
                                                  torch.from_numpy(dones).to(device), next_value, args.gamma, args.gae_lambda)
                advantages, returns = advantages.reshape(-1), returns.reshape(-1)
            loss, (pg_loss, v_loss, entropy_mean) = a2c_loss(logprob, entropy, b_values, advantages, returns,
                                                             args.ent_coef, args.vf_coef)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if distributed:
                average_gradients(params, world)
            grad_norm = nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
            if rank == 0:
                with torch.no_grad():
                    stats.append(torch.stack([pg_loss, v_loss, entropy_mean, grad_norm, advantages.mean(),
                                              advantages.std(), explained_variance(b_values, returns)]))

            # ---- logging (rank 0's scalars, means over the last log_interval updates) and a progress line every 2 s
            if rank != 0:
                continue
            last = iteration == num_iterations
            sps = int(global_step / (time.time() - start_time))
            if iteration % args.log_interval == 0 or last:
                pg, vl, ent, gn, adv_mean, adv_std, ev = torch.stack(stats).mean(0).tolist()
                stats.clear()
                logger.log(global_step, {"charts/learning_rate": optimizer.param_groups[0]["lr"], "charts/SPS": sps,
                                         "losses/policy_loss": pg, "losses/value_loss": vl, "losses/entropy": ent,
                                         "losses/grad_norm": gn, "losses/explained_variance": ev,
                                         "charts/advantage_mean": adv_mean, "charts/advantage_std": adv_std})
            if time.time() - last_print > 2.0 or last:
                last_print = time.time()
                recent = np.mean([r for _, r in episodic_returns[-20:]]) if episodic_returns else float("nan")
                eta = (args.total_timesteps - global_step) / max(sps, 1)
                print(f"step {global_step:>10,}/{args.total_timesteps:,} | {sps:>5,} agent steps/s | "
                      f"score (last 20) {recent:7.1f} | ETA {eta:6.0f}s", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at step {global_step:,}" + (f": metrics so far are in {run_dir}" if run_dir else ""), flush=True)
    finally:
        envs.close()
        if args.rank_weights_dir is not None:
            os.makedirs(args.rank_weights_dir, exist_ok=True)
            torch.save({"model": agent.state_dict(), "last_obs": torch.from_numpy(next_obs_np)},
                       os.path.join(args.rank_weights_dir, f"rank{rank}.pt"))
        if rank == 0 and args.save_model:
            save_checkpoint(os.path.join(run_dir, "model.pt"), agent, args, n_actions)
        if distributed:
            dist.destroy_process_group()
        if logger is not None and (interrupted or not args.eval_episodes):
            logger.close()
    if rank == 0 and not interrupted and args.eval_episodes:
        eval_returns = evaluate(agent, args.env_id, args.eval_episodes, eval_seed, device, args.vector_env)
        for r in eval_returns:
            logger.log(global_step, {"eval/episodic_return": r})
        print(f"evaluation: mean score {np.mean(eval_returns):.2f} over {len(eval_returns)} deterministic games")
        logger.close()
    return {"run_dir": run_dir, "episodic_returns": episodic_returns, "eval_returns": eval_returns, "agent": agent}


if __name__ == "__main__":
    main(tyro.cli(Args))
