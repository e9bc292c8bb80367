"""GRPO, or PPO with a critic, on a toy task: a tiny transformer learns from a 0/1 reward to write digits of a given sum.

Group Relative Policy Optimization (Shao et al. 2024, "DeepSeekMath", arXiv:2402.03300) is PPO without a critic. For each
prompt q it samples a group of G completions o_1..o_G from the sampling policy pi_old, scores them with a reward r_i, and
gives every token of o_i the same group-normalized advantage A_i. Each line is the function on its right:

    log pi(o_it | q, o_i,<t) = log_softmax(logits / temperature)[o_it]             completion_logprobs
    m_it  = 1 up to and including the first end token of o_i, 0 after it           completion_mask
    A_i   = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)                         group_advantages
    rho_it = pi_theta(o_it | q, o_i,<t) / pi_old(o_it | q, o_i,<t)                 importance_ratio
    s_it  = -min(rho_it A_i, clip(rho_it, 1 - epsilon, 1 + epsilon_high) A_i)      clipped_surrogate
    k3_it = pi_ref / pi_theta - log(pi_ref / pi_theta) - 1                         k3_kl
    L     = the --loss-type average over tokens of m_it (s_it + beta * k3_it)      grpo_loss
    --scale-rewards batch: std of all rewards of the step; none: no division       group_advantages
    GSPO: rho_it = exp(mean of log(pi_theta / pi_old) over o_i's tokens), all t    importance_ratio
    --use-bias-correction-kl: beta * rho_it * k3_it in L instead of beta * k3_it   grpo_loss

Lite PPO (Liu et al. 2025, arXiv:2508.08221) scales by the batch's std. GSPO (Zheng et al. 2025, arXiv:2507.18071) uses
far smaller clip ranges (3e-4 / 4e-4) than the token level's defaults here; at mu = 1 its ratio is 1 too. k3 (Schulman)
has E_pi_theta[k3_it] = KL(pi_theta || pi_ref), but on-policy its expected gradient is KL(pi_ref || pi_theta)'s; times the
differentiable ratio (1 in value), KL(pi_theta || pi_ref)'s (DeepSeek-V3.2, arXiv:2512.02556: --use-bias-correction-kl).
--loss-type sets how tokens are averaged: `grpo` over each completion's tokens then over completions (the paper); `bnpo`
/ `dapo` over all completion tokens of the batch (DAPO, Yu et al. 2025, arXiv:2503.14476; identical here because there is
one process); `dr_grpo` a sum divided by completions x max completion length (Dr. GRPO, Liu et al. 2025, arXiv:2503.20783,
who also drop the std scaling: add --scale-rewards none). Tokens after a completion's first end token never reach the loss.
Each sampled batch is used for --num-iterations (mu) gradient steps. At mu = 1 the policy being updated is the one that
sampled, so rho = 1, clipping never acts, and the gradient is the plain policy gradient A_i grad log pi_theta.

--advantage critic is PPO with a value model as in InstructGPT's RLHF (Ouyang et al. 2022, arXiv:2203.02155; Ziegler et
al. 2019, arXiv:1909.08593): per-token rewards, GAE (Schulman et al. 2015, arXiv:1506.02438) with V = 0 after the end:

    r_t  = -beta m_t (log pi_old - log pi_ref)(o_t), + r_i at o_i's last unmasked token      kl_shaped_rewards
    A_t  = delta_t + gamma lambda A_t+1, delta_t = r_t + gamma V_t+1 - V_t; R_t = A_t + V_t  completion_gae
    A_t <- (A_t - mean) / std over the batch's completion tokens                             masked_whiten
    L_V  = 0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2), token mean            clipped_value_loss
    EV   = 1 - Var[R - V_old] / Var[R] over completion tokens (logged)                       explained_variance
    L    = grpo_loss with A_t and beta = 0 (the KL is in r_t) + vf_coef * L_V                main

The critic, a copy of the warmed-up model with a fresh scalar head (InstructGPT initializes its value model from a trained
one), reads V_t where o_t is predicted; separate, it cannot move the policy's weights. One Adam over both models, gradients
clipped together (so --vf-coef acts only through that clipping, as in TRL's PPO); --loss-type bnpo averages as PPO does.

Defaults: DeepSeekMath's (--loss-type grpo, --beta 0.04, --scale-rewards group, token ratios, no KL bias correction); TRL
1.16's are --loss-type dapo --beta 0 --use-bias-correction-kl (the last acts only when beta > 0). Measured on `sum` (README):
without the KL anchor 2 of 3 seeds stay below 0.9 greedy accuracy at 600 steps; dapo alone changes nothing here.

Differences from the paper: the "language model" is a 2-layer transformer over a 13-token vocabulary that the script
warms up itself (supervised, on random answers, so it knows the format but is right only by chance, reward ~0.04); the
reference model is that warm-up model; log-probabilities are those of the temperature-scaled sampling distribution (TRL).

Tasks: `sum` (default): prompt "^TT=" with a target 0..27, completion three digits and "$", reward 1 when
the digits sum to the target (--shaped-reward: 1 - |sum - target| / 27 for a well-formed answer).
`sort`: prompt "^abcd=", completion the four digits in ascending order and "$".

Run: python grpo_toy.py                                          (a minute on 2 CPU cores; a saved model: --load-model PATH)
     python grpo_toy.py --loss-type dr_grpo --scale-rewards none   (Dr. GRPO)
     python grpo_toy.py --num-iterations 2 --epsilon-high 0.28     (mu = 2: clipping acts; DAPO's clip-higher)
     python grpo_toy.py --importance-sampling-level sequence --num-iterations 2   (GSPO, mu = 2)
     python grpo_toy.py --advantage critic                         (PPO with a value model, InstructGPT-style)
"""

# ---------------------------------------------------------------- imports
import contextlib
import copy
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

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter

# ---------------------------------------------------------------- arguments
@dataclass
class Args:
    exp_name: str = "grpo_toy"  # the name of this experiment (part of the run directory's name)
    seed: int | None = None  # seed of random, numpy and torch: prompts, sampling, init (1; with --load-model the run's)
    torch_deterministic: bool = True  # set torch.backends.cudnn.deterministic
    cuda: bool = True  # use CUDA when it is available
    track: bool = False  # mirror the logged scalars to Weights & Biases
    wandb_project_name: str = "actor-critic"  # the wandb project name
    wandb_entity: str | None = None  # the wandb entity (team or user)
    save_model: bool = False  # save weights and arguments to model.pt (stopped in the warm-up: the model as it is then)
    load_model: str | None = None  # path to a model.pt: evaluate it as its run did (sizes, temperature, eval flags)
    runs_dir: str = "runs"  # where run directories are created
    torch_threads: int = 1  # CPU threads for torch (0 keeps torch's default); one is fastest for this small model

    task: Literal["sum", "sort"] | None = None  # `sum` (three digits to a target) or `sort` (sum; with --load-model the run's)
    shaped_reward: bool = False  # reward 1 - |error| / max error for well-formed answers instead of 0/1
    warmup_steps: int = 150  # supervised warm-up steps on random (mostly wrong) answers that teach the format
    warmup_learning_rate: float = 1e-3  # learning rate of the warm-up
    total_steps: int = 600  # GRPO steps (one sampled batch each)
    num_prompts: int = 8  # prompts per step; each gets num_generations completions
    num_generations: int = 16  # group size G: completions sampled per prompt
    temperature: float = 1.0  # sampling temperature (the log-probabilities are those of the tempered distribution)
    learning_rate: float = 1e-3  # Adam learning rate of the policy (and the critic)
    anneal_lr: bool = False  # linearly anneal the learning rate to zero
    beta: float = 0.04  # KL penalty to the reference: k3 in the loss (critic: k1 in the rewards); 0 disables the reference
    epsilon: float = 0.2  # lower clipping range: the ratio is clipped below at 1 - epsilon
    epsilon_high: float | None = None  # upper clipping range (DAPO's clip-higher); None means epsilon
    num_iterations: int = 1  # mu: gradient steps on each sampled batch (clipping acts only when > 1)
    loss_type: Literal["grpo", "bnpo", "dapo", "dr_grpo"] = "grpo"  # token aggregation of the loss (see the docstring)
    scale_rewards: Literal["group", "batch", "none"] = "group"  # divide the centred rewards by the std of the group, batch or not
    importance_sampling_level: Literal["token", "sequence"] = "token"  # a ratio per token, or one per completion (GSPO)
    use_bias_correction_kl: bool = False  # multiply k3 by the ratio: its gradient becomes KL(pi || ref)'s (DeepSeek-V3.2)
    advantage: Literal["group", "critic"] = "group"  # group-normalized rewards (GRPO), or GAE with a value model (PPO)
    gamma: float = 1.0  # critic: discount per completion token (1.0, the usual RLHF-PPO value since Ziegler et al. 2019)
    gae_lambda: float = 0.95  # critic: GAE lambda (0.95, the usual RLHF-PPO value)
    vf_coef: float = 0.1  # critic: coefficient of the value loss (0.1, the usual RLHF-PPO value)
    cliprange_value: float = 0.2  # critic: how far a value may move from the old value (0.2, the usual RLHF-PPO value)
    max_grad_norm: float = 1.0  # the maximum norm for gradient clipping
    eval_frequency: int = 50  # evaluate greedy and sampled accuracy every this many steps
    eval_prompts: int = 128  # held-out prompts for evaluation (`sum` always uses its 28 targets)
    eval_samples: int = 8  # samples per evaluation prompt for the sampled accuracy
    d_model: int = 64  # transformer width
    n_layer: int = 2  # transformer blocks
    n_head: int = 4  # attention heads

class UsageError(ValueError):
    """A bad argument, environment or checkpoint: `python grpo_toy.py` reports it in one line and exits with status 2."""

def check_args(args: Args) -> dict | None:
    """Refuse bad arguments or checkpoints with one sentence before anything is built; returns the checkpoint."""
    state = load_checkpoint(args) if args.load_model is not None else None  # it fills in --task and --seed if not given
    args.task, args.seed = args.task or "sum", 1 if args.seed is None else args.seed
    for bad, problem in [  # written so that NaN fails every range (every comparison with NaN is False)
        (args.num_generations < 2, f"--num-generations must be at least 2 (got {args.num_generations}): a group of one "
         "has no relative advantage."),
        (min(args.num_prompts, args.total_steps, args.num_iterations, args.eval_frequency, args.eval_prompts,
             args.eval_samples, args.d_model, args.n_layer, args.n_head) < 1, "--num-prompts, --total-steps, "
         "--num-iterations, --eval-frequency, --eval-prompts, --eval-samples, --d-model, --n-layer, --n-head must be >= 1."),
        (args.n_head >= 1 and args.d_model % args.n_head, f"--d-model {args.d_model} is not divisible by --n-head "
         f"{args.n_head}; choose a divisor."),
        (not (0 < args.max_grad_norm and 0 < args.learning_rate < math.inf and 0 < args.warmup_learning_rate < math.inf and 0 <
              args.temperature < math.inf), "--max-grad-norm must be > 0, --learning-rate, --warmup-learning-rate, --temperature "
         f"finite and > 0 (got {args.max_grad_norm}, {args.learning_rate}, {args.warmup_learning_rate}, {args.temperature})."),
        (not (0 <= args.beta < math.inf and 0 <= args.epsilon < math.inf and 0 <= (args.epsilon_high or 0) < math.inf),
         f"--beta, --epsilon, --epsilon-high must be finite and >= 0 (got {args.beta}, {args.epsilon}, {args.epsilon_high})."),
        (not (0 <= args.gamma <= 1 and 0 <= args.gae_lambda <= 1 and 0 <= args.vf_coef < math.inf and 0 <=
              args.cliprange_value < math.inf), "--gamma and --gae-lambda must be in [0, 1], --vf-coef and --cliprange-value "
         f"finite and >= 0 (got {args.gamma}, {args.gae_lambda}, {args.vf_coef}, {args.cliprange_value})."),
        (args.advantage == "critic" and (args.scale_rewards != "group" or args.use_bias_correction_kl), "--advantage critic "
         "whitens its GAE advantages and has its KL in the rewards: leave --scale-rewards and --use-bias-correction-kl out."),
        (not 0 <= args.seed < 2**32 or min(args.warmup_steps, args.torch_threads) < 0, f"--seed must be in [0, 2**32), "
         f"--warmup-steps and --torch-threads 0 or more (got {args.seed}, {args.warmup_steps}, {args.torch_threads})."),
    ]:
        if bad:
            raise UsageError(problem)
    return state

# ---------------------------------------------------------------- the task
VOCAB = "0123456789^=$"  # digits, begin-of-prompt, prompt/answer separator, end of answer
BOS, SEP, END = VOCAB.index("^"), VOCAB.index("="), VOCAB.index("$")
TASKS = {"sum": dict(prompt_len=4, answer_len=3), "sort": dict(prompt_len=6, answer_len=4)}

def make_prompts(task: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, prompt_len) token ids: "^TT=" with a target 0..27, or "^abcd=" with four random digits."""
    if task == "sum":
        t = torch.randint(0, 28, (n,), generator=generator)
        body = torch.stack([t // 10, t % 10], dim=1)
    else:
        body = torch.randint(0, 10, (n, 4), generator=generator)
    return torch.cat([torch.full((n, 1), BOS), body, torch.full((n, 1), SEP)], dim=1)

def random_answers(task: str, prompts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Warm-up labels with the right format and (mostly) wrong content: uniform triples, or a shuffle."""
    n = prompts.shape[0]
    if task == "sum":
        digits = torch.randint(0, 10, (n, 3), generator=generator)
    else:
        digits = prompts[:, 1:5].gather(1, torch.rand(n, 4, generator=generator).argsort(dim=1))
    return torch.cat([digits, torch.full((n, 1), END)], dim=1)

def task_reward(task: str, prompts: torch.Tensor, completions: torch.Tensor, shaped: bool = False) -> torch.Tensor:
    """Reward of each completion: 1 for a correct answer followed by the end token, else 0 (or shaped)."""
    k = TASKS[task]["answer_len"]
    ans = completions[:, :k]
    well_formed = (ans < 10).all(dim=1) & (completions[:, k] == END)
    if task == "sum":
        error, max_error = (ans.sum(dim=1) - (prompts[:, 1] * 10 + prompts[:, 2])).abs().float(), 27.0
    else:
        error, max_error = (ans != prompts[:, 1:5].sort(dim=1).values).sum(dim=1).float(), 4.0
    score = 1.0 - error / max_error if shaped else (error == 0).float()
    return score * well_formed.float()

# ---------------------------------------------------------------- the model
class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv, self.proj = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x, cache: list | None = None):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if cache is not None:  # [keys, values] of earlier positions, extended in place
            if cache:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            cache[:] = [k, v]
        # a whole sequence attends causally; one new token (decoding with a cache) attends to all keys
        y = F.scaled_dot_product_attention(q, k, v, is_causal=k.shape[2] == T)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))

class CausalTransformer(nn.Module):
    """A GPT in miniature: token + position embeddings, pre-norm blocks, next-token logits."""

    def __init__(self, vocab_size: int, block_size: int, d_model: int, n_layer: int, n_head: int):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(block_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_head) for _ in range(n_layer))
        self.ln_f, self.head = nn.LayerNorm(d_model), nn.Linear(d_model, vocab_size)

    def forward(self, idx: torch.Tensor, kv_cache: list | None = None) -> torch.Tensor:
        """Logits (B, T, vocab); with kv_cache (one list per block) idx continues the cached positions."""
        past = kv_cache[0][0].shape[2] if kv_cache and kv_cache[0] else 0
        x = self.tok(idx) + self.pos(torch.arange(past, past + idx.shape[1], device=idx.device))
        for i, block in enumerate(self.blocks):
            x = block(x, None if kv_cache is None else kv_cache[i])
        return self.head(self.ln_f(x))

# ---------------------------------------------------------------- the algorithm's math
def completion_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, prompt_len: int, temperature: float = 1.0):
    """log pi(token | prefix) of every completion token: logits at position t predict token t + 1."""
    logp = F.log_softmax(logits[:, prompt_len - 1 : -1] / temperature, dim=-1)
    return logp.gather(-1, input_ids[:, prompt_len:, None]).squeeze(-1)

def completion_mask(completions: torch.Tensor, end_id: int) -> torch.Tensor:
    """1.0 up to and including the first end token, 0.0 after it (all 1.0 if there is none)."""
    is_end = (completions == end_id).long()
    ended_before = is_end.cumsum(dim=1) - is_end
    return (ended_before == 0).float()

def group_advantages(rewards: torch.Tensor, num_generations: int, scale: str = "group", eps: float = 1e-4):
    """r - its group's mean, divided by (std + eps) with the std of the group, of the batch, or not at all (none)."""
    r = rewards.view(-1, num_generations)
    adv = r - r.mean(dim=1, keepdim=True)
    if scale != "none":
        adv = adv / ((r.std(dim=1, keepdim=True) if scale == "group" else rewards.std()) + eps)
    return adv.reshape(-1)

def importance_ratio(logp, old_logp, mask, level: str = "token") -> torch.Tensor:
    """pi_theta / pi_old per token, or (sequence, GSPO) exp of each completion's mean log-ratio, for each of its tokens."""
    log_ratio = logp - old_logp
    if level == "sequence":
        log_ratio = ((log_ratio * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)).expand_as(logp)
    return torch.exp(log_ratio)

def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref) from samples of pi: exp(d) - d - 1 with d = ref - logp."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1

def clipped_surrogate(ratio, advantages, epsilon: float, epsilon_high: float | None = None):
    """Per-token -min(rho A, clip(rho, 1 - eps, 1 + eps_high) A) and whether the clipped branch was taken."""
    eps_high = epsilon if epsilon_high is None else epsilon_high
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + eps_high) * advantages
    return -torch.min(unclipped, clipped), (clipped < unclipped).float()

def grpo_loss(logp, old_logp, ref_logp, advantages, mask, beta, epsilon, epsilon_high=None, loss_type="grpo",
              level="token", bias_correction_kl=False):
    """Loss on (completions, max length) token tensors, advantages per completion (B,) or per token (B, T); (loss, stats)."""
    ratio = importance_ratio(logp, old_logp, mask, level)
    per_token, was_clipped = clipped_surrogate(ratio, advantages.view(len(logp), -1), epsilon, epsilon_high)  # (B, 1|T)
    kl = k3_kl(logp, ref_logp) * (ratio if bias_correction_kl else 1) if beta != 0 else torch.zeros_like(logp)
    per_token = per_token + beta * kl
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    elif loss_type in ("bnpo", "dapo"):
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1)
    elif loss_type == "dr_grpo":
        loss = (per_token * mask).sum() / mask.numel()
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}; use grpo, bnpo, dapo or dr_grpo.")
    tokens = mask.sum().clamp(min=1)  # the logged statistics are means over all completion tokens
    return loss, {"kl": (kl * mask).sum().detach() / tokens, "clip_ratio": (was_clipped * mask).sum() / tokens}

def kl_shaped_rewards(old_logp, ref_logp, scores, mask, beta: float) -> torch.Tensor:
    """Per-token rewards: -beta (old - ref log-prob) on completion tokens, plus the score at each one's last token."""
    last = mask.sum(dim=1, keepdim=True).long() - 1  # the end token, or the last position when there is none
    return (-beta * (old_logp - ref_logp) * mask).scatter_add(1, last, scores[:, None].to(old_logp.dtype))

def completion_gae(rewards, values, mask, gamma: float, lam: float):
    """GAE over completion tokens: (advantages, returns = advantages + values), both 0 after the last unmasked token."""
    rewards, values = rewards * mask, values * mask  # the value after the last token is 0: the episode ends there
    deltas = rewards + gamma * F.pad(values[:, 1:], (0, 1)) - values
    advantages, last = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        advantages[:, t] = last = deltas[:, t] + gamma * lam * last
    return advantages, advantages + values

def masked_whiten(x, mask, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the tokens where mask is 1 (std with Bessel's correction); 0 elsewhere."""
    mean = (x * mask).sum() / mask.sum()
    var = ((x - mean) ** 2 * mask).sum() / (mask.sum() - 1)
    return (x - mean) * torch.rsqrt(var + eps) * mask

def clipped_value_loss(values, old_values, returns, mask, clip: float) -> torch.Tensor:
    """0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2), averaged over completion tokens."""
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return (0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2) * mask).sum() / mask.sum()

def explained_variance(values, returns, mask) -> torch.Tensor:
    """1 - Var[R - V] / Var[R] over completion tokens: 1 for exact values, 0 for the mean of R, below 0 worse."""
    return 1 - (returns - values)[mask.bool()].var() / returns[mask.bool()].var()

# ---------------------------------------------------------------- generation
@torch.no_grad()
def generate(model, prompts: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, greedy: bool = False,
             generator: torch.Generator | None = None):
    """Sample (or argmax) completions token by token; also return each sampled token's log-probability."""
    cache, nxt, tokens, logps = [[] for _ in model.blocks], prompts, [], []
    for _ in range(max_new_tokens):
        logp = F.log_softmax(model(nxt, cache)[:, -1] / temperature, dim=-1)
        nxt = logp.argmax(-1, keepdim=True) if greedy else torch.multinomial(logp.exp(), 1, generator=generator)
        tokens.append(nxt)
        logps.append(logp.gather(-1, nxt))
    return torch.cat(tokens, dim=1), torch.cat(logps, dim=1)

# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    state = check_args(args)
    torch.set_num_threads(args.torch_threads or torch.get_num_threads())
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)  # sampling of completions
    gen = torch.Generator().manual_seed(args.seed)  # prompts and warm-up labels
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    run = Run(args)
    prompt_len, n_new = TASKS[args.task]["prompt_len"], TASKS[args.task]["answer_len"] + 1
    policy = CausalTransformer(len(VOCAB), prompt_len + n_new, args.d_model, args.n_layer, args.n_head).to(device)
    eval_prompts = eval_prompt_set(args).to(device)
    if state is not None:  # --load-model: evaluate the saved model as its run's last evaluation did, no training
        policy.load_state_dict(state["model"])
        return run.finish(policy, evaluate(policy, args, eval_prompts, run, step=0))

    try:
        # ---- supervised warm-up: the answer format, not the answers
        optimizer = torch.optim.Adam(policy.parameters(), lr=args.warmup_learning_rate)
        for warmup_step in range(1, args.warmup_steps + 1):
            prompts = make_prompts(args.task, 64, gen)
            seqs = torch.cat([prompts, random_answers(args.task, prompts, gen)], dim=1).to(device)
            loss = -completion_logprobs(policy(seqs), seqs, prompt_len).mean()
            check_finite(warmup_step, warmup_loss=loss.item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        ref_model = copy.deepcopy(policy).eval().requires_grad_(False) if args.beta != 0 else None
        critic = copy.deepcopy(policy) if args.advantage == "critic" else None  # the value model (see the docstring)
        if critic is not None:
            critic.head = nn.Linear(args.d_model, 1).to(device)
        before = evaluate(policy, args, eval_prompts, run, step=0)
        print(f"after warm-up: greedy accuracy {before['eval/greedy_accuracy']:.3f}, "
              f"sampled {before['eval/sampled_accuracy']:.3f}", flush=True)

        # ---- GRPO
        params = [*policy.parameters(), *(critic.parameters() if critic is not None else [])]
        optimizer = torch.optim.Adam(params, lr=args.learning_rate)
        after, start_time = before, time.time()
        for step in range(1, args.total_steps + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (step - 1.0) / args.total_steps)
            prompts = make_prompts(args.task, args.num_prompts, gen).repeat_interleave(args.num_generations, dim=0).to(device)
            completions, old_logp = generate(policy, prompts, n_new, args.temperature)
            rewards = task_reward(args.task, prompts, completions, args.shaped_reward)
            mask = completion_mask(completions, END)
            seqs = torch.cat([prompts, completions], dim=1)
            with torch.no_grad():  # without a reference (beta = 0) the KL term is skipped, old_logp is a stand-in
                ref_logp = (completion_logprobs(ref_model(seqs), seqs, prompt_len, args.temperature)
                            if ref_model is not None else old_logp)
                if critic is None:
                    advantages = group_advantages(rewards, args.num_generations, args.scale_rewards)
                else:  # V_t is read where o_t is predicted, as its log-probability is
                    old_values = critic(seqs)[:, prompt_len - 1 : -1, 0]
                    token_rewards = kl_shaped_rewards(old_logp, ref_logp, rewards, mask, args.beta)
                    advantages, returns = completion_gae(token_rewards, old_values, mask, args.gamma, args.gae_lambda)
                    advantages = masked_whiten(advantages, mask)
            for _ in range(args.num_iterations):
                logp = completion_logprobs(policy(seqs), seqs, prompt_len, args.temperature)
                loss, stats = grpo_loss(logp, old_logp, ref_logp, advantages, mask, args.beta if critic is None else 0.0,
                                        args.epsilon, args.epsilon_high, args.loss_type, args.importance_sampling_level,
                                        args.use_bias_correction_kl)
                if critic is not None:
                    value_loss = clipped_value_loss(critic(seqs)[:, prompt_len - 1 : -1, 0], old_values, returns, mask,
                                                    args.cliprange_value)
                    loss = loss + args.vf_coef * value_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                check_finite(step, loss=loss.item(), gradient_norm=grad_norm.item())  # before the step: model.pt stays finite
                optimizer.step()

            # ---- logging (the losses of the last of the num_iterations gradient steps)
            if step % args.eval_frequency == 0 or step == args.total_steps:
                after = evaluate(policy, args, eval_prompts, run, step)
            group_std = rewards.view(-1, args.num_generations).std(dim=1)
            run.log(step, {
                "charts/reward": rewards.mean(), "charts/reward_std": group_std.mean(),
                "charts/frac_reward_zero_std": (group_std == 0).float().mean(),
                "charts/completion_length": mask.sum(1).mean(), "charts/learning_rate": optimizer.param_groups[0]["lr"],
                "charts/SPS": step / (time.time() - start_time), "losses/loss": loss.detach(), "losses/kl": stats["kl"],
                "losses/clip_ratio": stats["clip_ratio"], "losses/grad_norm": grad_norm, **({} if critic is None else {
                    "losses/kl": ((old_logp - ref_logp) * mask).sum() / mask.sum(),  # k1, as in the rewards
                    "losses/value_loss": value_loss.detach(),
                    "losses/explained_variance": explained_variance(old_values, returns, mask)})})
    finally:  # also when stopped by SIGINT / SIGTERM (in the warm-up too) or a non-finite number: the model is saved
        if args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), policy, args)
        run.tb.flush()  # a stopped run keeps its TensorBoard events too
    return run.finish(policy, after, before)

# ---------------------------------------------------------------- run plumbing: logging, checkpoints, evaluation
class Run:
    """runs/{task}__{exp_name}__{seed}__{unix_time}/: args.json, metrics.csv (flushed per row), TensorBoard, wandb."""

    def __init__(self, args: Args):
        base = f"{args.task}__{args.exp_name}__{args.seed}__{int(time.time())}"
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
        self.tb = SummaryWriter(self.dir)  # TensorBoard event files with the same scalar names, beside metrics.csv
        self.total, self.episodic_returns, self.start, self.last_print = args.total_steps, [], time.time(), 0.0
        self.greedy_accuracy = float("nan")  # the last evaluation's, for the progress line
        print(f"run directory: {self.dir}", flush=True)

    def log(self, step: int, scalars: dict) -> None:
        """One row per scalar; a step's mean reward stands for an episodic return; with charts/SPS, a progress line."""
        scalars, wall = {name: float(value) for name, value in scalars.items()}, time.time() - self.start
        self.file.writelines(f"{step},{wall:.3f},{name},{value}\n" for name, value in scalars.items())
        self.file.flush()
        for name, value in scalars.items():
            self.tb.add_scalar(name, value, step)
        if self.wandb is not None:
            self.wandb.log({**scalars, "global_step": step})
        self.greedy_accuracy = scalars.get("eval/greedy_accuracy", self.greedy_accuracy)
        if "charts/reward" in scalars:
            self.episodic_returns.append((step, scalars["charts/reward"]))
        if "charts/SPS" in scalars and (time.time() - self.last_print > 2.0 or step == self.total):
            self.last_print, sps = time.time(), scalars["charts/SPS"]
            recent = np.mean([r for _, r in self.episodic_returns[-20:]])
            print(f"step {step:>5}/{self.total} | {sps:5.1f} steps/s | reward (last 20) {recent:.3f} | "
                  f"greedy accuracy {self.greedy_accuracy:.3f} | ETA {(self.total - step) / sps:4.0f}s", flush=True)

    def finish(self, model, after: dict, before: dict | None = None) -> dict:
        """Close the files and print a closing line; main's return value (eval_returns: the last greedy and sampled accuracy)."""
        self.file.close()
        self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
        change = {name: (f"{before[name]:.3f} -> " if before else "") + f"{value:.3f}" for name, value in after.items()}
        print(f"greedy accuracy {change['eval/greedy_accuracy']}, sampled {change['eval/sampled_accuracy']} "
              f"in {time.time() - self.start:.1f}s ({self.dir})", flush=True)
        return dict(run_dir=self.dir, episodic_returns=self.episodic_returns, eval_returns=list(after.values()), model=model,
                    before=before, after=after)

def check_finite(step: int, **quantities) -> None:
    """Stop at the first non-finite loss or gradient norm (metrics.csv keeps what was logged)."""
    for name, value in quantities.items():
        if not np.isfinite(value).all():
            raise FloatingPointError(f"the {name.replace('_', ' ')} is not finite at step {step:,}: training stopped.")

def save_checkpoint(path: str, model: CausalTransformer, args: Args) -> None:
    """Weights and arguments, written atomically (a crash never leaves half a model.pt); never non-finite weights."""
    if all(p.isfinite().all() for p in model.parameters()):
        torch.save(dict(script="grpo_toy.py", task=args.task, args=asdict(args), model=model.state_dict()), path + ".tmp")
        os.replace(path + ".tmp", path)

def load_checkpoint(args: Args) -> dict:
    """The checkpoint --load-model names; its run fills in --task and --seed if not given, the sizes and evaluation flags."""
    try:
        state = torch.load(args.load_model, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, empty, truncated, not a checkpoint at all
        why = f"{type(e).__name__}: {e}".splitlines()[0].rstrip(": ")
        raise UsageError(f"--load-model {args.load_model} cannot be read ({why}); pass a run's model.pt.") from None
    if not isinstance(state, dict) or state.get("script") != "grpo_toy.py":
        raise UsageError(f"{args.load_model} was not saved by grpo_toy.py; load it with the script that trained it.")
    if args.task not in (None, state["task"]):
        raise UsageError(f"{args.load_model} was trained on --task {state['task']}, not {args.task}; leave --task out.")
    args.task, args.seed = state["task"], state["args"]["seed"] if args.seed is None else args.seed
    for name in ("d_model", "n_layer", "n_head", "temperature", "eval_prompts", "eval_samples"):
        setattr(args, name, state["args"][name])
    return state

def eval_prompt_set(args: Args) -> torch.Tensor:
    """`sum`: its 28 targets (the answers, not the prompts, must be discovered); `sort`: unseen random prompts."""
    if args.task == "sum":
        return torch.tensor([[BOS, t // 10, t % 10, SEP] for t in range(28)])
    return make_prompts("sort", args.eval_prompts, torch.Generator().manual_seed(100_000 + args.seed))

def evaluate(model, args: Args, prompts: torch.Tensor, run: Run, step: int) -> dict:
    """Greedy accuracy on the evaluation prompts and sampled accuracy over eval_samples draws of each, logged."""
    n_new, draws = TASKS[args.task]["answer_len"] + 1, torch.Generator(prompts.device).manual_seed(args.seed + 100_000)
    greedy, _ = generate(model, prompts, n_new, greedy=True)
    many = prompts.repeat_interleave(args.eval_samples, dim=0)
    sampled, _ = generate(model, many, n_new, args.temperature, generator=draws)  # its own draws: a reload scores the same
    result = {"eval/greedy_accuracy": (task_reward(args.task, prompts, greedy) == 1).float().mean().item(),
              "eval/sampled_accuracy": (task_reward(args.task, many, sampled) == 1).float().mean().item()}
    run.log(step, result)
    return result

def raise_stopped(signum: int, frame) -> None:  # SIGINT (Ctrl-C) or SIGTERM, wherever the run is: main keeps the model
    raise KeyboardInterrupt(signum)  # carries the signal's number, for the exit status

if __name__ == "__main__":
    signal.signal(signal.SIGINT, raise_stopped)
    signal.signal(signal.SIGTERM, raise_stopped)
    try:
        main(tyro.cli(Args))
    except (UsageError, FloatingPointError) as e:  # one line; status 2 for a bad flag or checkpoint
        print(f"grpo_toy.py: error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt as e:  # exit status 128 + the signal's number, as a shell reports it
        print(f"grpo_toy.py: stopped by {signal.Signals(e.args[0]).name}; metrics.csv is kept, and model.pt with "
              "--save-model.", file=sys.stderr)
        sys.exit(128 + e.args[0])
