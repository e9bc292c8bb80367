"""DPO on a toy language task: a tiny causal transformer that sorts four digits only some of the time is
tuned on preference pairs of its own samples, with a frozen copy of itself as the reference.

Direct Preference Optimization (Rafailov et al. 2023, arXiv:2305.18290) fits the policy to preference pairs (x, y_w, y_l)
without a reward model or sampling during training. --loss-type picks the loss; each line is the function on its right:

    log pi(y|x) = sum of log pi(y_t | x, y_<t) over y up to and including its end token      sequence_logprobs
      --average-logprobs (always with orpo): that sum divided by the number of those tokens  sequence_logprobs
    h = [log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)]            dpo_loss
    sigmoid:  L = -log sigmoid(beta h)                                                       dpo_loss
    ipo:      L = (h - 1 / (2 beta))^2                                                       dpo_loss
    hinge:    L = max(0, 1 - beta h)                                                         dpo_loss
    kto:      u(y) = log pi(y|x) - log pi_ref(y|x) of one example (x, y)
              z0 = max(0, batch mean of u(y') on mismatched (x, y')), no gradient            kto_reference_point
              L = lambda_D (1 - sigmoid(beta (u(y) - z0))) for a desirable y (a y_w)         kto_loss
              L = lambda_U (1 - sigmoid(beta (z0 - u(y)))) for an undesirable y (a y_l)      kto_loss
    orpo:     log odds(y) = log P - log(1 - P), log P the averaged log pi(y|x)               log_odds
              L = -log P(y_w) - lambda log sigmoid(log odds(y_w) - log odds(y_l))            orpo_loss
    y_w, y_l = a prompt's first best and first worst sample (none if all tie)                preference_pairs

`sigmoid` is DPO: the Bradley-Terry likelihood of the implicit reward r(x, y) = beta log pi(y|x) / pi_ref(y|x), whose
minimizer over all policies is pi(y|x) proportional to pi_ref(y|x) exp(r(x, y) / beta); `ipo` is IPO (Azar et al. 2023,
arXiv:2310.12036), which regresses h to a finite target; `hinge` the SLiC-style hinge (Zhao et al. 2023). `kto` is KTO
(Ethayarajh et al. 2024, arXiv:2402.01306), for unpaired feedback: every completion is an example of its own, desirable
(y_w) or undesirable (y_l), valued against z0, KTO's biased, gradient-free estimate of KL(pi || pi_ref) from prompts
paired with other examples' completions; the loss is the mean over the batch's examples. `orpo` is ORPO (Hong et al. 2024,
arXiv:2403.07691): no reference model, the NLL of y_w plus a penalty on the odds ratio of y_w to y_l. --sft-weight adds
that weight times the per-token NLL of y_w (the RPO remedy, Pang et al. 2024, arXiv:2404.19733). The logged
`rewards/chosen` and `rewards/rejected` are the implicit rewards beta (log pi - log pi_ref) of y_w and y_l (orpo, which
has no reference: lambda times the averaged log pi).

Over-optimization and likelihood displacement: the loss only asks that y_w gain on y_l *relative to the
reference*; it is as happy to push both down, as long as y_l falls faster. With a small beta and many
epochs the implicit-reward accuracy reaches 1 and the margins keep growing while log pi(y_w) falls, the
probability mass goes to sequences no pair mentions, and the true accuracy drops. Watch `logps/chosen`
and the true accuracies logged after every epoch (by sampling and by greedy decoding, on held-out prompts):
    python dpo_toy.py --beta 0.1 --num-epochs 12                     # collapse
    python dpo_toy.py --beta 0.1 --num-epochs 12 --sft-weight 1.0    # the NLL anchor prevents it

Differences from the paper: the "language model" is a 2-layer transformer the script warms up itself on noisy labels
(--warmup-correct-frac of them correct, the rest a shuffle of the input: greedy decoding is mostly right, sampling
often wrong); the pairs are built from samples of that reference model, scored by the task (chosen: correct, rejected:
incorrect; prompts whose samples all tie are dropped); the reference log-probabilities of the pairs are computed once
(KTO's mismatched ones at every step). IPO sums log-probabilities unless --average-logprobs divides them by the
completion's length, as TRL does following the IPO authors. KTO's data are the completions the pairs hold, for a
like-for-like comparison with DPO; KTO could also learn from prompts whose samples all tie (all desirable or all
undesirable), which are not used here; the paper and TRL sum KTO's log-probabilities (--average-logprobs departs). ORPO,
which its paper runs in place of SFT, starts from the warmed-up model; its NLL counts completion tokens only.

Task `sort` (default): prompt "^abcd=", completion the four digits ascending and "$"; `sum`: prompt "^TT="
with a target 0..27, completion three digits summing to it and "$".

Run: python dpo_toy.py            (about a minute on 2 CPU cores; evaluate a saved model: --load-model runs/.../model.pt)
     python dpo_toy.py --loss-type ipo --average-logprobs
     python dpo_toy.py --loss-type kto
     python dpo_toy.py --loss-type orpo
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
    exp_name: str = "dpo_toy"  # the name of this experiment (part of the run directory's name)
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

    task: Literal["sort", "sum"] | None = None  # `sort` four digits or `sum` to a target (sort; with --load-model the run's)
    warmup_steps: int = 600  # supervised warm-up steps of the reference model on noisy labels
    warmup_learning_rate: float = 1e-3  # learning rate of the warm-up
    warmup_correct_frac: float = 0.4  # fraction of warm-up labels that are correct (the rest: wrong digits)
    num_train_prompts: int = 2048  # prompts from which preference pairs are sampled
    samples_per_prompt: int = 4  # completions sampled from the reference per prompt to form a (correct, incorrect) pair
    temperature: float = 1.0  # sampling temperature for the pairs and the sampled accuracy
    loss_type: Literal["sigmoid", "ipo", "hinge", "kto", "orpo"] = "sigmoid"  # the preference loss (see the docstring)
    average_logprobs: bool = False  # divide each completion's log-probability by its token count, end included (orpo: always)
    beta: float = 0.5  # strength of the implicit KL regularization to the reference (0.1 is the common LLM default; not orpo)
    desirable_weight: float = 1.0  # kto: weight lambda_D of the loss of a desirable (chosen) completion
    undesirable_weight: float = 1.0  # kto: weight lambda_U of the loss of an undesirable (rejected) completion
    orpo_lambda: float = 0.1  # orpo: weight lambda of the odds-ratio term beside the NLL (TRL's ORPOConfig.beta; not --beta)
    sft_weight: float = 0.0  # weight of the NLL of the chosen completion (RPO); 0 disables it (orpo has its own)
    learning_rate: float = 2e-4  # Adam learning rate of the policy
    num_epochs: int = 4  # passes over the preference pairs
    batch_size: int = 64  # pairs per gradient step
    max_grad_norm: float = 1.0  # the maximum norm for gradient clipping
    eval_prompts: int = 256  # evaluation prompts for the true accuracies (with `sort`, never used for pairs)
    eval_samples: int = 4  # samples per evaluation prompt for the sampled accuracy
    d_model: int = 64  # transformer width
    n_layer: int = 2  # transformer blocks
    n_head: int = 4  # attention heads

class UsageError(ValueError):
    """A bad argument, environment or checkpoint: `python dpo_toy.py` reports it in one line and exits with status 2."""

def check_args(args: Args) -> dict | None:
    """Refuse bad arguments or checkpoints with one sentence before anything is built; returns the checkpoint."""
    state = load_checkpoint(args) if args.load_model is not None else None  # it fills in --task and --seed if not given
    args.task, args.seed = args.task or "sort", 1 if args.seed is None else args.seed
    for bad, problem in [  # written so that NaN fails every range (every comparison with NaN is False)
        (min(args.num_train_prompts, args.num_epochs, args.batch_size, args.eval_prompts, args.eval_samples, args.d_model,
             args.n_layer, args.n_head) < 1 or args.samples_per_prompt < 2, "--num-train-prompts, --num-epochs, --batch-size, "
         "--eval-prompts, --eval-samples, --d-model, --n-layer, --n-head must be >= 1, --samples-per-prompt >= 2 (a pair)."),
        (args.batch_size > args.num_train_prompts, f"--batch-size {args.batch_size} is larger than --num-train-prompts "
         f"{args.num_train_prompts}, the most pairs there can be; lower it."),
        (args.n_head >= 1 and args.d_model % args.n_head, f"--d-model {args.d_model} is not divisible by --n-head "
         f"{args.n_head}; choose a divisor."),
        (not (0 < args.max_grad_norm and 0 < args.learning_rate < math.inf and 0 < args.warmup_learning_rate < math.inf and 0 <
              args.temperature < math.inf), "--max-grad-norm must be > 0, --learning-rate, --warmup-learning-rate, --temperature "
         f"finite and > 0 (got {args.max_grad_norm}, {args.learning_rate}, {args.warmup_learning_rate}, {args.temperature})."),
        (not (0 < args.beta < math.inf and 0 <= args.sft_weight < math.inf and 0 <= args.warmup_correct_frac <= 1), f"--beta "
         f"must be finite and > 0, --sft-weight finite and >= 0, --warmup-correct-frac in [0, 1] (got {args.beta}, "
         f"{args.sft_weight}, {args.warmup_correct_frac})."),
        (not (0 < args.desirable_weight < math.inf and 0 < args.undesirable_weight < math.inf and 0 <= args.orpo_lambda <
              math.inf), "--desirable-weight and --undesirable-weight must be finite and > 0, --orpo-lambda finite and >= 0 "
         f"(got {args.desirable_weight}, {args.undesirable_weight}, {args.orpo_lambda})."),
        (args.loss_type == "kto" and args.batch_size < 2, "--loss-type kto pairs each prompt with another pair's completion "
         "to estimate its reference point: --batch-size must be >= 2."),
        (args.loss_type == "orpo" and args.sft_weight > 0, "--loss-type orpo already holds the NLL of the chosen completion; "
         "leave --sft-weight out (--orpo-lambda weighs the odds-ratio term against it)."),
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
TRIPLES = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))  # every `sum` answer

def make_prompts(task: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, prompt_len) token ids: "^abcd=" with four random digits, or "^TT=" with a target 0..27."""
    if task == "sum":
        t = torch.randint(0, 28, (n,), generator=generator)
        body = torch.stack([t // 10, t % 10], dim=1)
    else:
        body = torch.randint(0, 10, (n, 4), generator=generator)
    return torch.cat([torch.full((n, 1), BOS), body, torch.full((n, 1), SEP)], dim=1)

def noisy_answers(task: str, prompts: torch.Tensor, correct_frac: float, generator: torch.Generator) -> torch.Tensor:
    """Warm-up labels: a correct answer with probability correct_frac, else a shuffle / random digits."""
    n = prompts.shape[0]
    if task == "sort":
        right = prompts[:, 1:5].sort(dim=1).values
        wrong = prompts[:, 1:5].gather(1, torch.rand(n, 4, generator=generator).argsort(dim=1))
    else:
        target = prompts[:, 1] * 10 + prompts[:, 2]
        is_answer = (TRIPLES.sum(1)[None] == target[:, None]).float()
        right = TRIPLES[torch.multinomial(is_answer, 1, generator=generator).squeeze(1)]
        wrong = torch.randint(0, 10, (n, 3), generator=generator)
    use_right = torch.rand(n, 1, generator=generator) < correct_frac
    return torch.cat([torch.where(use_right, right, wrong), torch.full((n, 1), END)], dim=1)

def task_reward(task: str, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """1.0 for a correct answer followed by the end token, else 0.0."""
    k = TASKS[task]["answer_len"]
    ans = completions[:, :k]
    well_formed = (ans < 10).all(dim=1) & (completions[:, k] == END)
    if task == "sort":
        right = (ans == prompts[:, 1:5].sort(dim=1).values).all(dim=1)
    else:
        right = ans.sum(dim=1) == prompts[:, 1] * 10 + prompts[:, 2]
    return (well_formed & right).float()

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
def completion_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """log pi(token | prefix) of every completion token: logits at position t predict token t + 1."""
    logp = F.log_softmax(logits[:, prompt_len - 1 : -1], dim=-1)
    return logp.gather(-1, input_ids[:, prompt_len:, None]).squeeze(-1)

def completion_mask(completions: torch.Tensor, end_id: int) -> torch.Tensor:
    """1.0 up to and including the first end token, 0.0 after it (all 1.0 if there is none)."""
    is_end = (completions == end_id).long()
    ended_before = is_end.cumsum(dim=1) - is_end
    return (ended_before == 0).float()

def sequence_logprobs(model, prompts: torch.Tensor, completions: torch.Tensor, average: bool = False) -> torch.Tensor:
    """log pi(y|x): the sum of the completion's token log-probabilities up to and including its end token (average:
    divided by the number of those tokens)."""
    seqs, mask = torch.cat([prompts, completions], dim=1), completion_mask(completions, END)
    total = (completion_logprobs(model(seqs), seqs, prompts.shape[1]) * mask).sum(dim=1)
    return total / mask.sum(dim=1) if average else total

def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float, loss_type: str = "sigmoid"):
    """Per-pair preference losses and the implicit rewards beta (log pi - log pi_ref) of chosen and rejected."""
    chosen_logratio, rejected_logratio = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    h = chosen_logratio - rejected_logratio
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * h)
    elif loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * h)
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}; use sigmoid, ipo or hinge.")
    return losses, beta * chosen_logratio.detach(), beta * rejected_logratio.detach()

@torch.no_grad()  # the paper treats z0 as a constant: no gradient flows through it
def kto_reference_point(policy, ref_model, prompts: torch.Tensor, completions: torch.Tensor, average: bool = False):
    """KTO's z0: max(0, mean log pi(y'|x) - log pi_ref(y'|x)) over the examples (x, y) of a batch, each prompt x paired
    with the completion y' of the example before it (rolled by one): mismatched where neighbours come from other pairs."""
    policy_logp, ref_logp = (sequence_logprobs(m, prompts, completions.roll(1, dims=0), average) for m in (policy, ref_model))
    return (policy_logp - ref_logp).mean().clamp(min=0)

def kto_loss(chosen_logratio, rejected_logratio, kl, beta: float, desirable_weight: float = 1.0,
             undesirable_weight: float = 1.0):
    """Per-example KTO losses, the desirable (chosen) examples' then the undesirable (rejected) ones', each from its own
    log-ratio log pi - log pi_ref and z0 (kl) alone, never its pair's; and the implicit rewards beta times the log-ratios."""
    desirable = desirable_weight * (1 - torch.sigmoid(beta * (chosen_logratio - kl)))
    undesirable = undesirable_weight * (1 - torch.sigmoid(beta * (kl - rejected_logratio)))
    return torch.cat([desirable, undesirable]), beta * chosen_logratio.detach(), beta * rejected_logratio.detach()

def log_odds(logp: torch.Tensor) -> torch.Tensor:
    """log(P / (1 - P)) from log P, stable at both ends: log(1 - P) is log(-expm1(log P)) for P > 1/2, log1p(-P) below,
    each branch fed only inputs it serves (an infinite unused branch would still make torch.where's gradient NaN)."""
    logp = logp.clamp(max=-torch.finfo(logp.dtype).tiny)  # a P that rounded to 1 counts as just below it: finite odds
    log1m_p = torch.where(logp > -math.log(2), torch.log(-torch.expm1(logp.clamp(min=-math.log(2)))),
                          torch.log1p(-torch.exp(logp.clamp(max=-math.log(2)))))
    return logp - log1m_p

def orpo_loss(chosen_avg_logp, rejected_avg_logp, orpo_lambda: float):
    """Per-pair ORPO losses from length-averaged log-probabilities: the chosen's NLL plus lambda times the odds-ratio
    term; the logged rewards lambda log P of chosen and rejected (ORPO has no reference); the log odds ratio."""
    log_odds_ratio = log_odds(chosen_avg_logp) - log_odds(rejected_avg_logp)
    losses = -chosen_avg_logp - orpo_lambda * F.logsigmoid(log_odds_ratio)
    return (losses, orpo_lambda * chosen_avg_logp.detach(), orpo_lambda * rejected_avg_logp.detach(),
            log_odds_ratio.detach())

def preference_pairs(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From (prompts, samples) rewards: the prompts with a best sample better than the worst (ties
    dropped), and for each the index of its first best (chosen) and first worst (rejected) sample."""
    best, chosen = rewards.max(dim=1)
    worst, rejected = rewards.min(dim=1)
    keep = best > worst
    return keep.nonzero().squeeze(1), chosen[keep], rejected[keep]

# ---------------------------------------------------------------- generation
@torch.no_grad()
def generate(model, prompts: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, greedy: bool = False,
             generator: torch.Generator | None = None):
    """Sample (or argmax) completions token by token, with a KV cache."""
    cache, nxt, tokens = [[] for _ in model.blocks], prompts, []
    for _ in range(max_new_tokens):
        logp = F.log_softmax(model(nxt, cache)[:, -1] / temperature, dim=-1)
        nxt = logp.argmax(-1, keepdim=True) if greedy else torch.multinomial(logp.exp(), 1, generator=generator)
        tokens.append(nxt)
    return torch.cat(tokens, dim=1)

# ---------------------------------------------------------------- training
def main(args: Args) -> dict:
    state = check_args(args)
    torch.set_num_threads(args.torch_threads or torch.get_num_threads())
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)  # sampling of completions
    gen = torch.Generator().manual_seed(args.seed)  # prompts, warm-up labels, pair order
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    run = Run(args)
    prompt_len, n_new = TASKS[args.task]["prompt_len"], TASKS[args.task]["answer_len"] + 1
    policy = CausalTransformer(len(VOCAB), prompt_len + n_new, args.d_model, args.n_layer, args.n_head).to(device)
    eval_prompts = make_prompts(args.task, args.eval_prompts, torch.Generator().manual_seed(100_000 + args.seed)).to(device)
    if state is not None:  # --load-model: evaluate the saved model as its run's last evaluation did, no training
        policy.load_state_dict(state["model"])
        return run.finish(policy, evaluate(policy, args, eval_prompts, run, step=0))

    try:
        # ---- supervised warm-up on noisy labels: this becomes the reference model (orpo: only the starting point)
        optimizer = torch.optim.Adam(policy.parameters(), lr=args.warmup_learning_rate)
        for warmup_step in range(1, args.warmup_steps + 1):
            prompts = make_prompts(args.task, 128, gen)
            seqs = torch.cat([prompts, noisy_answers(args.task, prompts, args.warmup_correct_frac, gen)], dim=1).to(device)
            loss = -completion_logprobs(policy(seqs), seqs, prompt_len).mean()
            check_finite(warmup_step, warmup_loss=loss.item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        ref_model = copy.deepcopy(policy).eval().requires_grad_(False) if args.loss_type != "orpo" else None
        average = args.average_logprobs or args.loss_type == "orpo"
        before = evaluate(policy, args, eval_prompts, run, step=0)
        print(f"{'reference' if ref_model else 'warmed-up'} model: greedy accuracy {before['eval/greedy_accuracy']:.3f}, "
              f"sampled {before['eval/sampled_accuracy']:.3f}", flush=True)

        # ---- preference pairs from the reference model's own samples (orpo: the policy's, the same weights); `sort`
        # keeps the evaluation's prompts out (`sum` has only 28 prompts: there the answers, not the prompts, must generalize)
        prompts = make_prompts(args.task, args.num_train_prompts, gen)
        if args.task == "sort":
            held_out = set(map(tuple, eval_prompts.tolist()))
            prompts = prompts[[tuple(p) not in held_out for p in prompts.tolist()]]
        prompts, k = prompts.to(device), args.samples_per_prompt
        repeated = prompts.repeat_interleave(k, dim=0)
        samples = generate(ref_model or policy, repeated, n_new, args.temperature).view(len(prompts), k, n_new)
        rewards = task_reward(args.task, repeated, samples.flatten(0, 1)).view(-1, k)
        idx, c, r = preference_pairs(rewards)
        prompts, chosen, rejected = prompts[idx], samples[idx, c], samples[idx, r]
        if (num_pairs := len(prompts)) == 0:  # model.pt (--save-model) keeps the warm-up model
            raise UsageError("no preference pairs: every prompt's samples tie; raise --samples-per-prompt or --warmup-steps.")
        if ref_model is not None:  # frozen: no graph
            ref_chosen, ref_rejected = (sequence_logprobs(ref_model, prompts, y, average) for y in (chosen, rejected))
        run.total = args.num_epochs * -(-num_pairs // args.batch_size)
        print(f"{num_pairs} preference pairs from {len(rewards)} prompts; {run.total} steps", flush=True)

        # ---- DPO (or IPO, hinge, KTO, ORPO)
        optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate)
        accuracies, step, start_time = [before], 0, time.time()
        for epoch in range(1, args.num_epochs + 1):
            perm = torch.randperm(num_pairs, generator=gen).to(device)
            epoch_chosen = []
            for start in range(0, num_pairs, args.batch_size):
                step += 1
                mb = perm[start : start + args.batch_size]  # chosen and rejected go through one forward pass
                x, y = prompts[mb].repeat(2, 1), torch.cat([chosen[mb], rejected[mb]])
                pi_chosen, pi_rejected = sequence_logprobs(policy, x, y, average).chunk(2)
                extra = {}  # what only one loss logs
                if args.loss_type == "kto":  # (a last minibatch of a single pair has no other prompt: its z0 is matched)
                    z0 = kto_reference_point(policy, ref_model, x, y, average)
                    losses, reward_chosen, reward_rejected = kto_loss(
                        pi_chosen - ref_chosen[mb], pi_rejected - ref_rejected[mb], z0, args.beta, args.desirable_weight,
                        args.undesirable_weight)
                    extra = {"rewards/kl": z0}
                elif args.loss_type == "orpo":  # no reference
                    losses, reward_chosen, reward_rejected, log_odds_ratio = orpo_loss(
                        pi_chosen, pi_rejected, args.orpo_lambda)
                    extra = {"rewards/log_odds_ratio": log_odds_ratio.mean()}
                else:
                    losses, reward_chosen, reward_rejected = dpo_loss(pi_chosen, pi_rejected, ref_chosen[mb],
                                                                      ref_rejected[mb], args.beta, args.loss_type)
                loss = losses.mean()  # kto: the mean over all 2 x batch examples
                if args.sft_weight > 0:  # RPO: per-token NLL of the chosen completion
                    avg_chosen = pi_chosen if average else pi_chosen / completion_mask(chosen[mb], END).sum(1)
                    loss = loss - args.sft_weight * avg_chosen.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
                check_finite(step, loss=loss.item(), gradient_norm=grad_norm.item())  # before the step: model.pt stays finite
                optimizer.step()
                epoch_chosen.append(pi_chosen.mean().item())
                run.log(step, {
                    "losses/loss": loss.detach(), "losses/grad_norm": grad_norm, "rewards/chosen": reward_chosen.mean(),
                    "rewards/rejected": reward_rejected.mean(), "rewards/margins": (reward_chosen - reward_rejected).mean(),
                    "rewards/accuracies": (reward_chosen > reward_rejected).float().mean(), "logps/chosen": epoch_chosen[-1],
                    "logps/rejected": pi_rejected.mean().detach(), "charts/learning_rate": optimizer.param_groups[0]["lr"],
                    "charts/epoch": epoch, "charts/SPS": step / (time.time() - start_time), **extra})
            # the true accuracies, which the implicit rewards may hide
            accuracies.append(evaluate(policy, args, eval_prompts, run, step))
            print(f"epoch {epoch}/{args.num_epochs}: greedy accuracy {accuracies[-1]['eval/greedy_accuracy']:.3f}, "
                  f"sampled {accuracies[-1]['eval/sampled_accuracy']:.3f}, mean logps/chosen "
                  f"{np.mean(epoch_chosen):.2f}", flush=True)
    finally:  # also when stopped by SIGINT / SIGTERM (in the warm-up too) or a non-finite number: the model is saved
        if args.save_model:
            save_checkpoint(os.path.join(run.dir, "model.pt"), policy, args)
        run.tb.flush()  # a stopped run keeps its TensorBoard events too
    return run.finish(policy, accuracies[-1], before, accuracies=accuracies, num_pairs=num_pairs)

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
        self.total, self.episodic_returns, self.start, self.last_print = 0, [], time.time(), 0.0  # total: set by main
        print(f"run directory: {self.dir}", flush=True)

    def log(self, step: int, scalars: dict) -> None:
        """One row per scalar; an evaluation's sampled accuracy stands for an episodic return; charts/SPS: a progress line."""
        scalars, wall = {name: float(value) for name, value in scalars.items()}, time.time() - self.start
        self.file.writelines(f"{step},{wall:.3f},{name},{value}\n" for name, value in scalars.items())
        self.file.flush()
        for name, value in scalars.items():
            self.tb.add_scalar(name, value, step)
        if self.wandb is not None:
            self.wandb.log({**scalars, "global_step": step})
        if "eval/sampled_accuracy" in scalars:
            self.episodic_returns.append((step, scalars["eval/sampled_accuracy"]))
        if "charts/SPS" in scalars and time.time() - self.last_print > 2.0:
            self.last_print, sps = time.time(), scalars["charts/SPS"]
            print(f"step {step:>5}/{self.total} | {sps:5.1f} steps/s | loss {scalars['losses/loss']:.3f} | "
                  f"chosen logp {scalars['logps/chosen']:7.2f} | ETA {(self.total - step) / sps:4.0f}s", flush=True)

    def finish(self, model, after: dict, before: dict | None = None, **extra) -> dict:
        """Close the files and print a closing line; main's return value (eval_returns: the last greedy and sampled accuracy)."""
        self.file.close()
        self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
        change = {name: (f"{before[name]:.3f} -> " if before else "") + f"{value:.3f}" for name, value in after.items()}
        print(f"greedy accuracy {change['eval/greedy_accuracy']}, sampled {change['eval/sampled_accuracy']} "
              f"in {time.time() - self.start:.1f}s ({self.dir})", flush=True)
        return dict(run_dir=self.dir, episodic_returns=self.episodic_returns, eval_returns=list(after.values()), model=model,
                    before=before, after=after, **extra)

def check_finite(step: int, **quantities) -> None:
    """Stop at the first non-finite loss or gradient norm (metrics.csv keeps what was logged)."""
    for name, value in quantities.items():
        if not np.isfinite(value).all():
            raise FloatingPointError(f"the {name.replace('_', ' ')} is not finite at step {step:,}: training stopped.")

def save_checkpoint(path: str, model: CausalTransformer, args: Args) -> None:
    """Weights and arguments, written atomically (a crash never leaves half a model.pt); never non-finite weights."""
    if all(p.isfinite().all() for p in model.parameters()):
        torch.save(dict(script="dpo_toy.py", task=args.task, args=asdict(args), model=model.state_dict()), path + ".tmp")
        os.replace(path + ".tmp", path)

def load_checkpoint(args: Args) -> dict:
    """The checkpoint --load-model names; its run fills in --task and --seed if not given, the sizes and evaluation flags."""
    try:
        state = torch.load(args.load_model, map_location="cpu", weights_only=True)
    except Exception as e:  # missing, empty, truncated, not a checkpoint at all
        why = f"{type(e).__name__}: {e}".splitlines()[0].rstrip(": ")
        raise UsageError(f"--load-model {args.load_model} cannot be read ({why}); pass a run's model.pt.") from None
    if not isinstance(state, dict) or state.get("script") != "dpo_toy.py":
        raise UsageError(f"{args.load_model} was not saved by dpo_toy.py; load it with the script that trained it.")
    if args.task not in (None, state["task"]):
        raise UsageError(f"{args.load_model} was trained on --task {state['task']}, not {args.task}; leave --task out.")
    args.task, args.seed = state["task"], state["args"]["seed"] if args.seed is None else args.seed
    for name in ("d_model", "n_layer", "n_head", "temperature", "eval_prompts", "eval_samples"):
        setattr(args, name, state["args"][name])
    return state

def evaluate(model, args: Args, prompts: torch.Tensor, run: Run, step: int) -> dict:
    """True task accuracy on held-out prompts, logged: greedy decoding, and sampling eval_samples draws of each."""
    n_new, draws = TASKS[args.task]["answer_len"] + 1, torch.Generator(prompts.device).manual_seed(args.seed + 100_000)
    greedy = generate(model, prompts, n_new, greedy=True)
    many = prompts.repeat_interleave(args.eval_samples, dim=0)
    sampled = generate(model, many, n_new, args.temperature, generator=draws)  # its own draws: a reload scores the same
    result = {"eval/greedy_accuracy": task_reward(args.task, prompts, greedy).mean().item(),
              "eval/sampled_accuracy": task_reward(args.task, many, sampled).mean().item()}
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
        print(f"dpo_toy.py: error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt as e:  # exit status 128 + the signal's number, as a shell reports it
        print(f"dpo_toy.py: stopped by {signal.Signals(e.args[0]).name}; metrics.csv is kept, and model.pt with "
              "--save-model.", file=sys.stderr)
        sys.exit(128 + e.args[0])
