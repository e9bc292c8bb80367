"""A2C on Atari from pixels: the Nature-CNN actor-critic of Mnih et al., trained by synchronous workers.

Every `num_steps` steps of `num_envs` games, A2C takes one gradient step on the whole rollout (policy gradient, n-step /
GAE value regression, entropy bonus). Under torchrun, N processes play their own games and average their gradients with
one all-reduce per update, so all take the same step. Each line is the function on its right:

    r'_t    = sign(r_t),   done_t = 1 if the game ended or a life was lost with step t       learning_signal
    delta_t = r'_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)                             compute_gae
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   R_t = A_t + V(s_t)         compute_gae
    L       = -mean(A_t log pi(a_t|s_t) + ent_coef H[pi(.|s_t)]) + vf_coef 0.5 mean((R_t - V(s_t))^2)  a2c_loss
    grad L  = (1/N) * (sum over the N processes k of grad L_k)                                average_gradients

Paper: Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning" (A2C: the synchronous A3C of OpenAI
baselines), with its A2C defaults and Mnih et al. 2015's network and preprocessing (up to 30 no-op starts, FIRE on reset,
4 frames per action, 84x84 grayscale, 4 stacked frames; -v5 ids: Machado et al. 2018), by ale-py's C++ vector env or
gymnasium's wrappers in subprocesses (--vector-env async). A game goes on across lost lives: logged returns are raw
full-game scores. Differences from the paper: synchronous workers; RMSprop statistics per process (identical, as the
averaged gradients are); a time limit (108k frames) is bootstrapped with gamma * V(true final observation); evaluation
samples its actions, as CleanRL and rl-baselines3-zoo do on Atari (an argmax policy may never FIRE after a lost life).

Run:  python a2c_atari.py --env-id BreakoutNoFrameskip-v4  (videos: --vector-env async --capture-video; evaluate: --load-model
      runs/RUN/model.pt; continue a stopped run: --resume runs/RUN)   torchrun --standalone --nproc_per_node=2 a2c_atari.py
"""

# ---------------------------------------------------------------- imports
import contextlib
import importlib.util
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
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import tyro
from torch.utils.tensorboard import SummaryWriter

# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "a2c_atari"  # the name of this experiment (part of the run directory's name)
    seed: int | None = None  # seed of random, numpy, torch and the games (1; with --load-model the run's); process r: + r
    torch_deterministic: bool = True  # set torch.backends.cudnn.deterministic
    cuda: bool = True  # use CUDA when it is available (with torchrun: the GPU of LOCAL_RANK)
    track: bool = False  # mirror the logged scalars to Weights & Biases
    wandb_project_name: str = "actor-critic"  # the wandb project name
    wandb_entity: str | None = None  # the wandb entity (team or user)
    capture_video: bool = False  # record videos of the first game into the run directory's videos/ (needs async)
    save_model: bool = False  # save weights and arguments to model.pt in the run directory
    eval_episodes: int = 10  # full-game evaluation episodes after training (sampled actions, seeded); 0 skips it
    load_model: str | None = None  # path to a model.pt: evaluate it instead of training
    resume: str | None = None  # a stopped run's directory: continue it from its checkpoint.pt, with its own arguments
    checkpoint_interval: float = 300.0  # seconds between writes of the resumable checkpoint.pt (also written when stopped)
    runs_dir: str = "runs"  # where run directories are created
    torch_threads: int = 1  # CPU threads for torch in each process (0 keeps torch's default)
    log_interval: int = 25  # log the training scalars every this many updates

    env_id: str | None = None  # an Atari id: game, sticky actions, action set (BreakoutNoFrameskip-v4; --load-model: the run's)
    total_timesteps: int = 10_000_000  # total agent steps, summed over all environments and processes (frames = 4x)
    vector_env: Literal["ale", "async"] = "ale"  # ale-py's C++ vector env, or gymnasium's wrappers in subprocesses (training)
    learning_rate: float = 7e-4  # the RMSprop learning rate
    rmsprop_alpha: float = 0.99  # RMSprop's smoothing constant
    optimizer_eps: float = 1e-5  # epsilon of RMSprop
    num_envs: int = 16  # number of parallel environments per process
    num_steps: int = 5  # steps per environment in each rollout (the n of n-step returns)
    anneal_lr: bool = True  # anneal the learning rate linearly to 0 over training
    gamma: float = 0.99  # the discount factor
    gae_lambda: float = 1.0  # the GAE lambda (1.0: the paper's n-step returns, 0.0: one-step TD)
    ent_coef: float = 0.01  # coefficient of the entropy bonus
    vf_coef: float = 0.5  # coefficient of the value loss
    max_grad_norm: float = 0.5  # maximum global gradient norm (of the gradient averaged over processes)

class UsageError(ValueError):
    """A bad argument, environment or checkpoint: `python a2c_atari.py` reports it in one line and exits with status 2."""

def check_args(args: Args) -> dict | None:  # bad arguments, checkpoints, games: one sentence before anything is built
    state = None if args.load_model is None and args.resume is None else load_checkpoint(args)  # fills in --env-id, --seed
    args.env_id, args.seed = args.env_id or "BreakoutNoFrameskip-v4", 1 if args.seed is None else args.seed
    batch = args.num_envs * args.num_steps * (world := int(os.environ.get("WORLD_SIZE", "1")))  # torchrun's processes too
    for bad, problem in [  # written so that NaN fails every range (every comparison with NaN is False)
        (min(args.num_envs, args.num_steps, args.log_interval) < 1 or min(args.eval_episodes, args.torch_threads) < 0,
         "--num-envs, --num-steps, --log-interval must be >= 1, --eval-episodes and --torch-threads >= 0."),
        (args.load_model is None and args.total_timesteps < batch, f"--total-timesteps {args.total_timesteps} is smaller "
         f"than one rollout (num_envs * num_steps * processes = {batch}); raise it or shrink the rollout."),
        (not (0 < args.learning_rate < math.inf and 0 < args.optimizer_eps < math.inf and 0 < args.max_grad_norm),
         f"--learning-rate, --optimizer-eps, --max-grad-norm must be > 0, the first two finite (got {args.learning_rate}, "
         f"{args.optimizer_eps}, {args.max_grad_norm})."),
        (not 0 <= args.rmsprop_alpha < 1, f"--rmsprop-alpha must lie in [0, 1) (got {args.rmsprop_alpha})."),
        (not (0 <= args.gamma <= 1 and 0 <= args.gae_lambda <= 1 and 0 <= args.ent_coef < math.inf and 0 <= args.vf_coef
              < math.inf), f"--gamma and --gae-lambda must lie in [0, 1], --ent-coef and --vf-coef be finite and >= 0 (got "
         f"{args.gamma}, {args.gae_lambda}, {args.ent_coef}, {args.vf_coef})."),
        (not 0 <= args.seed < 2**31 - 2**20, f"--seed must be in [0, 2**31 - 2**20): ale-py's are int32 (got {args.seed})."),
        (args.load_model is not None and world > 1, "--load-model evaluates in one process; run it with python, not torchrun."),
        (not args.checkpoint_interval > 0, f"--checkpoint-interval must be positive (got {args.checkpoint_interval})."),
        (args.capture_video and args.vector_env != "async", "--capture-video needs --vector-env async; ale-py renders none."),
        (args.vector_env == "async" and importlib.util.find_spec("cv2") is None, "--vector-env async uses gymnasium's "
         "AtariPreprocessing, which needs opencv: pip install opencv-python-headless (or use --vector-env ale)."),
        (importlib.util.find_spec("ale_py") is None, 'a2c_atari.py needs ale-py: pip install "gymnasium[atari]".'),
    ]:
        if bad:
            raise UsageError(problem)
    gym.register_envs(importlib.import_module("ale_py"))
    try:  # no game is built: the id's entry point tells an Atari game
        if gym.spec(args.env_id).entry_point != "ale_py.env:AtariEnv":
            raise UsageError(f"{args.env_id} is not an Atari game (an ALE id such as ALE/Pong-v5); use a2c.py for it.")
    except gym.error.Error as e:  # an unknown id
        raise UsageError(f"cannot make environment {args.env_id!r}: {e}") from None
    return state

# ---------------------------------------------------------------- environments
class FireOnReset(gym.Wrapper):  # FIRE after every reset in games that wait for it (Breakout serves no ball until FIRE)
    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        if self.env.unwrapped.get_action_meanings()[1] == "FIRE":
            obs, _, _, _, info = self.env.step(1)  # one step after a reset never ends a game
        return obs, info

def make_envs(env_id: str, num_envs: int, vector_env: str = "ale", capture_video: bool = False, run_dir: str = "."):
    """`num_envs` games; RecordEpisodeStatistics sees the raw rewards; SAME_STEP autoreset: final obs in infos["final_obs"]."""
    main_pid, same_step = os.getpid(), gym.vector.AutoresetMode.SAME_STEP
    def make_env(idx: int):  # one game under gymnasium's Atari wrappers (--vector-env async), in a worker subprocess
        if os.getpid() != main_pid:  # (the main process builds one too, for the spaces) out of the run's process group:
            os.setpgrp()  # Ctrl-C or a signal to the group reaches only the main process, which saves the model and
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # ends its workers with a SIGTERM of their own
        env = gym.make(env_id, frameskip=1, disable_env_checker=True,  # frameskip=1: AtariPreprocessing repeats the actions
                       render_mode="rgb_array" if capture_video and idx == 0 else None)  # (-v5 ids skip 4); videos: every frame
        env = gym.wrappers.RecordVideo(env, os.path.join(run_dir, "videos")) if env.render_mode else env
        env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True,
                                              terminal_on_life_loss=False)  # life loss is done by the learner
        return gym.wrappers.FrameStackObservation(FireOnReset(env), 4, padding_type="zero")  # zeros, as ale-py
    if vector_env == "async":
        envs = gym.vector.AsyncVectorEnv([lambda i=i: make_env(i) for i in range(num_envs)], autoreset_mode=same_step)
    else:
        from ale_py.vector_env import AtariVectorEnv
        spec = gym.spec(env_id).kwargs  # the id's game, sticky actions, action set, frame limit; threads change only the speed
        envs = AtariVectorEnv(spec["game"], num_envs, num_threads=min(num_envs, os.cpu_count() or 1), autoreset_mode=same_step,
            **{k: spec[k] for k in ("repeat_action_probability", "full_action_space", "max_num_frames_per_episode")}, noop_max=30,
            frameskip=4, maxpool=True, img_height=84, img_width=84, grayscale=True, stack_num=4, use_fire_reset=True,
            episodic_life=False, reward_clipping=False)  # both done by learning_signal
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)

# ---------------------------------------------------------------- networks
def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Module:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer

class Agent(nn.Module):  # the Nature-CNN trunk (Mnih et al. 2015) shared by a categorical policy head and a value head
    def __init__(self, n_actions: int):
        super().__init__()
        self.trunk = nn.Sequential(layer_init(nn.Conv2d(4, 32, 8, stride=4)), nn.ReLU(),
                                   layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
                                   layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(), nn.Flatten(),
                                   layer_init(nn.Linear(64 * 7 * 7, 512)), nn.ReLU())
        self.actor, self.critic = layer_init(nn.Linear(512, n_actions), std=0.01), layer_init(nn.Linear(512, 1), std=1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.distributions.Categorical, torch.Tensor]:  # pi(.|s), V(s)
        hidden = self.trunk(x.float() / 255.0)  # one pass through the shared trunk; no argument checks in the hot path
        return torch.distributions.Categorical(logits=self.actor(hidden), validate_args=False), self.critic(hidden).squeeze(-1)

# ---------------------------------------------------------------- the algorithm's math
def learning_signal(reward, terminated, truncated, lives, prev_lives):  # what the learner sees: sign(r), done on any lost life
    return np.sign(reward).astype(np.float32), terminated | truncated | (lives < prev_lives)

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

def a2c_loss(logprob, entropy, values, advantages, returns, ent_coef: float, vf_coef: float):
    """The A2C objective; advantages and returns are constants (no gradient flows into the targets)."""
    policy_loss, value_loss = -(advantages.detach() * logprob).mean(), 0.5 * ((returns.detach() - values) ** 2).mean()
    entropy_mean = entropy.mean()
    return policy_loss + vf_coef * value_loss - ent_coef * entropy_mean, (policy_loss, value_loss, entropy_mean)

def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:  # 1 - Var[y - y_pred] / Var[y], or NaN
    return torch.where(y_true.var() > 0, 1 - (y_true - y_pred).var() / y_true.var(), torch.nan)

def average_gradients(params: list, world: int) -> None:  # every gradient becomes its mean over the processes
    dist.all_reduce(flat := torch.cat([p.grad.reshape(-1) for p in params]), op=dist.ReduceOp.SUM)  # one flat buffer
    for p, mean in zip(params, (flat / world).split([p.numel() for p in params])):
        p.grad.copy_(mean.view_as(p))

# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    state, Stop.signum = check_args(args), 0
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun
    torch.set_num_threads(args.torch_threads or torch.get_num_threads())
    for seed in (random.seed, np.random.seed, torch.manual_seed):  # every process samples its own actions
        seed(args.seed + rank)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() and args.cuda else "cpu")
    run = Run(args, state) if rank == 0 else None  # only rank 0 writes the run directory, logs and saves
    envs = make_envs(args.env_id, args.num_envs, args.vector_env, args.capture_video and run is not None, run.dir if run else ".")
    agent = Agent(int(envs.single_action_space.n)).to(device)
    if state is not None:  # --load-model: evaluate the saved agent, no training; --resume: continue its training
        agent.load_state_dict(state["model"])
    if world > 1:  # every process starts from rank 0's weights (the seeds differ, and machines may too)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
        if device.type == "cuda":  # object collectives (a checkpoint's RNG states) use the current GPU
            torch.cuda.set_device(device)
        for p in agent.parameters():
            dist.broadcast(p.data, src=0)
    optimizer = torch.optim.RMSprop(agent.parameters(), lr=args.learning_rate, alpha=args.rmsprop_alpha, eps=args.optimizer_eps)
    first_iteration, global_step = restore(state, optimizer, rank) if args.resume else (1, 0)
    batch_size = args.num_envs * args.num_steps * world
    num_iterations = 0 if args.load_model is not None else args.total_timesteps // batch_size
    if args.total_timesteps % batch_size and num_iterations and run:
        print(f"--total-timesteps {args.total_timesteps:,} runs as {num_iterations} rollouts of {batch_size}.", flush=True)
    obs = torch.zeros((args.num_steps, args.num_envs, 4, 84, 84), dtype=torch.uint8, device=device)  # preallocated storage
    actions = torch.zeros((args.num_steps, args.num_envs), dtype=torch.int64, device=device)  # (frames: uint8, on the device)
    rewards, dones = (np.zeros((args.num_steps, args.num_envs), dtype=np.float32) for _ in range(2))  # to torch per rollout
    next_obs, infos = envs.reset(seed=(args.seed + global_step) % (2**31 - 2**20) + rank * args.num_envs)  # resuming: new games
    lives, next_checkpoint, Stop.training = infos["lives"], time.time() + args.checkpoint_interval, True
    start_step, start_time = global_step, time.time()  # charts/SPS: this process's steps over its training time
    try:
        for iteration in range(first_iteration, num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / num_iterations)
            # ---- rollout (no autograd: the update's forward pass recomputes what it needs)
            with torch.inference_mode():
                for step in range(args.num_steps):
                    global_step += args.num_envs * world
                    obs[step].copy_(torch.from_numpy(next_obs))
                    actions[step] = agent(obs[step])[0].sample()  # a ~ pi(.|s)
                    next_obs, reward, terminated, truncated, infos = envs.step(actions[step].cpu().numpy())
                    rewards[step], dones[step] = learning_signal(reward, terminated, truncated, infos["lives"], lives)
                    lives = infos["lives"]
                    if (cut := truncated & ~terminated).any():  # a time limit is no real end: bootstrap with V(final obs)
                        _, final_v = agent(torch.from_numpy(np.stack(infos["final_obs"][cut])).to(device))
                        rewards[step, cut] += args.gamma * final_v.cpu().numpy()
                    if run:
                        run.log_episodes(global_step, infos)
            check_finite(global_step, reward=rewards)  # the frames are uint8: always finite
            # ---- update: one gradient step on the whole rollout, with the gradient averaged over the processes
            pi, b_values = agent(obs.flatten(0, 1))
            with torch.no_grad():
                _, next_value = agent(torch.from_numpy(next_obs).to(device))
                advantages, returns = (x.flatten() for x in compute_gae(torch.from_numpy(rewards).to(device), b_values.view(
                    rewards.shape), torch.from_numpy(dones).to(device), next_value, args.gamma, args.gae_lambda))
            loss, (pg_loss, v_loss, entropy_mean) = a2c_loss(pi.log_prob(actions.flatten()), pi.entropy(), b_values, advantages,
                                                             returns, args.ent_coef, args.vf_coef)
            optimizer.zero_grad()
            loss.backward()
            if world > 1:
                average_gradients(list(agent.parameters()), world)
            grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            scalars = torch.stack([pg_loss, v_loss, grad_norm, entropy_mean, advantages.mean(), advantages.std(),
                                   explained_variance(b_values, returns)]).tolist()  # one host sync per update
            check_finite(global_step, policy_loss=scalars[0], value_loss=scalars[1], gradient_norm=scalars[2])
            optimizer.step()  # after the check: model.pt never holds the weights of a step that diverged
            # ---- logging (rank 0's scalars of this update, every log_interval updates), then checkpoint.pt between iterations
            if run and (iteration % args.log_interval == 0 or iteration == num_iterations):
                pg, vl, gn, ent, a_mean, a_std, ev = scalars
                run.log(global_step, {"charts/SPS": (global_step - start_step) / (time.time() - start_time),
                    "charts/learning_rate": optimizer.param_groups[0]["lr"], "losses/policy_loss": pg, "losses/value_loss": vl,
                    "losses/entropy": ent, "losses/grad_norm": gn, "losses/explained_variance": ev, "charts/advantage_mean": a_mean,
                    "charts/advantage_std": a_std})
            stop, due = Stop.signum, time.time() > next_checkpoint or iteration == num_iterations
            if world > 1:  # one small all-reduce: a signal (its number) or a due checkpoint anywhere counts everywhere,
                dist.all_reduce(decision := torch.tensor([stop, due], device=device), op=dist.ReduceOp.MAX)
                stop, due = decision.tolist()  # so every process stops, and checkpoints, after the same iteration
            if stop or due:  # the state --resume restores, with every process's RNGs [random, numpy, torch, cuda] in rank order
                kind, key, *rest = np.random.get_state()  # its key as a list: torch.load(weights_only=True) refuses arrays
                rngs = [[random.getstate(), (kind, key.tolist(), *rest), torch.get_rng_state(), torch.cuda.get_rng_state_all()]]
                if world > 1:  # each process's own states in its slot
                    dist.all_gather_object(rngs := rngs * world, rngs[0])  # (rngs[0], this process's, is read after the :=)
                if run:
                    save_checkpoint(run.checkpoint, agent, args, optimizer, iteration=iteration + 1, global_step=global_step,
                                    **run.progress, world=world, rng=rngs)
                if stop:
                    raise KeyboardInterrupt(stop, *([run.dir] if run else []))
                next_checkpoint = time.time() + args.checkpoint_interval
    finally:  # also when stopped by SIGINT / SIGTERM or a non-finite number: the model first, then the environments
        Stop.training = False
        if run and args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), agent, args)
        if sys.exc_info()[0] and args.vector_env == "async":  # a second signal may have cut a step short, mid-conversation
            gym.logger.min_level = gym.logger.ERROR  # with the workers (out of its reach): end them rather than ask,
            envs.unwrapped.close(terminate=True)  # and without a warning
        envs.close()
        if world > 1:
            dist.destroy_process_group()
        if run:
            run.tb.flush()
    eval_returns = evaluate(agent, args, device, run, global_step) if run and args.eval_episodes else []
    return run.finish(agent, eval_returns) if run else {"run_dir": None, "episodic_returns": [], "agent": agent}

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

    def log_episodes(self, step: int, infos: dict) -> None:  # the games that ended in this vector step
        for i in np.flatnonzero(infos.get("_episode", [])):  # the vector RecordEpisodeStatistics: no final_info
            self.episodic_returns.append((step, float(infos["episode"]["r"][i])))
            self.log(step, {"charts/episodic_return": self.episodic_returns[-1][1],
                            "charts/episodic_length": infos["episode"]["l"][i]})

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

def check_finite(step: int, **quantities) -> None:  # stop at the first non-finite loss, gradient norm or reward
    for name, value in quantities.items():
        if not np.isfinite(value).all():
            raise FloatingPointError(f"the {name.replace('_', ' ')} is not finite at step {step:,}: training stopped.")

def save_checkpoint(path: str, agent: Agent, args: Args, optimizer=None, **counters) -> None:
    """model.pt: weights, arguments; checkpoint.pt also the optimizer, counters, every process's RNGs. Atomic, finite."""
    if all(p.isfinite().all() for p in agent.parameters()):
        training = dict(optimizer=optimizer.state_dict(), **counters) if optimizer else {}
        torch.save(dict(script="a2c_atari.py", env_id=args.env_id, args=asdict(args), model=agent.state_dict(), **training),
                   path + ".tmp")
        os.replace(path + ".tmp", path)

def restore(state: dict, optimizer: torch.optim.Optimizer, rank: int) -> tuple[int, int]:  # checkpoint.pt's training state
    optimizer.load_state_dict(state["optimizer"])
    for put, rng in zip([random.setstate, np.random.set_state, torch.set_rng_state, torch.cuda.set_rng_state_all],
                        state["rng"][rank]):  # this process's own random streams
        put(rng)
    return state["iteration"], state["global_step"]

def load_checkpoint(args: Args) -> dict:  # --load-model's file (it fills in --env-id, --seed), or --resume's checkpoint.pt
    flag, path = ("--load-model", args.load_model) if args.resume is None else ("--resume", f"{args.resume}/checkpoint.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, empty, truncated, not a checkpoint at all
        why = f"{type(e).__name__}: {e}".splitlines()[0].rstrip(": ")
        raise UsageError(f"{flag} {path} cannot be read ({why}); pass a run's model.pt (--resume: a stopped run).") from None
    if not isinstance(state, dict) or state.get("script") != "a2c_atari.py" or args.resume and "csv_bytes" not in state:
        raise UsageError(f"{path} was not saved by a2c_atari.py, or by an older one: use the script that trained it.")
    if args.env_id not in (None, state["env_id"]):
        raise UsageError(f"{path} was trained on {state['env_id']}, not {args.env_id}; leave --env-id out.")
    args.env_id, args.seed = state["env_id"], state["args"]["seed"] if args.seed is None else args.seed
    given = [k for k, v in vars(args).items() if args.resume and k != "resume" and v not in (getattr(Args(), k), state["args"][k])]
    if given:  # a resumed run is the same run: its own arguments, every one
        raise UsageError(f"--resume continues {args.resume} with its own arguments: leave --{given[0].replace('_', '-')} out.")
    if args.resume and state["world"] != (world := int(os.environ.get("WORLD_SIZE", "1"))):  # each resumes its own streams
        raise UsageError(f"--resume: {args.resume} ran in {state['world']} process(es), not {world}; resume it in as many.")
    vars(args).update({k: v for k, v in state["args"].items() if args.resume and k != "resume"})
    return state

def evaluate(agent: Agent, args: Args, device: torch.device, run: Run, global_step: int) -> list[float]:
    """Raw full-game scores of each env's first game, on ale-py's env and seeds training never used (eval/episodic_return)."""
    envs, returns = make_envs(args.env_id, args.eval_episodes), np.full(args.eval_episodes, np.nan)
    obs, _ = envs.reset(seed=args.seed + 100_000)
    rngs = [np.random.default_rng(args.seed + 100_000 + i) for i in range(args.eval_episodes)]  # env i's: its game, any count
    while np.isnan(returns).any():
        with torch.inference_mode():
            probs = agent(torch.from_numpy(obs).to(device))[0].probs.double().cpu().numpy()
        obs, _, _, _, infos = envs.step(np.array([rng.choice(len(p), p=p / p.sum()) for rng, p in zip(rngs, probs)]))
        if "_episode" in infos:  # the first game of each env
            returns = np.where(infos["_episode"] & np.isnan(returns), infos["episode"]["r"], returns)
    envs.close()
    for r in returns:
        run.log(global_step, {"eval/episodic_return": r})
    return returns.tolist()

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
        print(f"a2c_atari.py: error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt as e:  # exit status 128 + the signal's number, as a shell reports it
        print(f"a2c_atari.py: stopped by {signal.Signals(e.args[0]).name}; metrics.csv is kept, model.pt with --save-model" +
              (f"; continue with --resume {e.args[1]}" if len(e.args) > 1 else "") + ".", file=sys.stderr)
        sys.exit(128 + e.args[0])
