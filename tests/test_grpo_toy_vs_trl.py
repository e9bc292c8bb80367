"""grpo_toy.py against TRL's GRPOTrainer where their settings coincide (skipped unless trl is installed).

TRL is not a dependency of this project. To run this module:
    python -m venv /tmp/trlvenv && /tmp/trlvenv/bin/pip install trl==1.16.0 tyro tensorboard pytest pytest-xdist
    /tmp/trlvenv/bin/python -m pytest tests/test_grpo_toy_vs_trl.py -n 0 -q

TRL computes the group advantages inside `GRPOTrainer._generate_and_score_completions` and the loss in
`GRPOTrainer._compute_loss`. Both are called unbound here on a stand-in `self` that carries only the attributes they
read: generation returns fixed token ids, the reward function returns our rewards, and the policy's forward pass returns
our per-token log-probabilities, so everything between those inputs and the advantages or the loss is TRL's own code.
"""
import collections
import types

import pytest
import torch

trl = pytest.importorskip("trl")
from trl import GRPOTrainer  # noqa: E402

import grpo_toy as g  # noqa: E402

TOL = dict(rtol=0, atol=1e-8)
B, G, T = 12, 4, 6  # completions, group size, max completion length
MAX_DIFF = collections.defaultdict(float)  # the largest |ours - TRL| per quantity, printed at the end of the module


class OneProcess:
    """The accelerator of a single process: gathering and reducing return their input."""
    device, process_index, num_processes, is_main_process = torch.device("cpu"), 0, 1, True

    def gather(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def stand_in(**attributes) -> types.SimpleNamespace:
    return types.SimpleNamespace(accelerator=OneProcess(), model=types.SimpleNamespace(training=True,
                                 is_gradient_checkpointing=False), _metrics={"train": collections.defaultdict(list)},
                                 **attributes)


def trl_advantages(rewards: torch.Tensor, scale: str) -> torch.Tensor:
    """TRL's advantages of B completions in groups of G: one reward function, nothing truncated, no vLLM. TRL's std
    computes Bessel's factor count / (count - 1) from integer counts, in torch's default dtype: float64 here, as the
    rewards (with float32 the factor alone differs from ours by ~1e-8)."""
    trainer = stand_in(
        environment_factories=None, tools=None, environments=None, pad_to_multiple_of=None,
        mask_truncated_completions=False, num_iterations=1, use_vllm=False, beta=0.0, num_generations=G,
        multi_objective_aggregation="sum_then_normalize", reward_weights=torch.ones(1, dtype=rewards.dtype),
        scale_rewards=scale, reward_func_names=["task"], log_multimodal=False, _pending_extra_logs={},
        _pending_metrics={}, _tokenizer=types.SimpleNamespace(pad_token_id=0),
        _logs={"prompt": [], "completion": [], "rewards": collections.defaultdict(list), "advantages": [],
               "extra": collections.defaultdict(list), "images": []},
        args=types.SimpleNamespace(per_device_train_batch_size=B, steps_per_generation=1, gradient_accumulation_steps=1,
                                   gradient_checkpointing_kwargs=None),
        _generate=lambda prompts: ([[g.BOS, g.SEP]] * len(prompts), [[1] * T] * len(prompts), None,
                                   ["completion"] * len(prompts), None, {}, None, None),
        _calculate_rewards=lambda inputs, prompts, completions, ids: rewards[:, None])
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return GRPOTrainer._generate_and_score_completions(trainer, [{"prompt": "q"}] * B)["advantages"]
    finally:
        torch.set_default_dtype(default)


def trl_loss(logp, old, ref, advantages, mask, completions, *, beta, epsilon, epsilon_high, loss_type, level,
             bias_correction_kl) -> torch.Tensor:
    """TRL's loss, the policy's per-token log-probabilities being `logp` (no entropy bonus, no vLLM, one process)."""
    trainer = stand_in(
        loss_type=loss_type, beta=beta, epsilon_low=epsilon, epsilon_high=epsilon_high, importance_sampling_level=level,
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, use_vllm=False, aux_loss_enabled=False,
        _entropy_bonus_enabled=False, current_gradient_accumulation_steps=1, max_completion_length=T,
        args=types.SimpleNamespace(use_bias_correction_kl=bias_correction_kl, delta=None, steps_per_generation=1),
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None))
    prompts = torch.tensor([[g.BOS, g.SEP]] * B)
    inputs = dict(prompt_ids=prompts, prompt_mask=torch.ones_like(prompts), completion_ids=completions,
                  completion_mask=mask.long(), advantages=advantages, old_per_token_logps=old, num_items_in_batch=mask.sum())
    if beta != 0:
        inputs["ref_per_token_logps"] = ref
    return GRPOTrainer._compute_loss(trainer, None, inputs)


def random_batch(seed: int):
    """Completions ending at different positions (one without an end token), log-probabilities off-policy enough that
    clipping acts on some tokens, and rewards with ties."""
    gen = torch.Generator().manual_seed(seed)
    completions = torch.randint(0, 10, (B, T), generator=gen)
    for i, end in enumerate([0, 2, 5, None, 1, 3] * 2):
        if end is not None:
            completions[i, end] = g.END
    logp = -torch.rand(B, T, generator=gen, dtype=torch.float64) * 3
    old = logp + torch.randn(B, 1, generator=gen, dtype=torch.float64) * 0.2 + torch.randn(B, T, generator=gen,
                                                                                          dtype=torch.float64) * 0.3
    ref = logp + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.5
    rewards = torch.randint(0, 3, (B,), generator=gen).double() / 2
    return completions, logp, old, ref, rewards


def record(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
    MAX_DIFF[name] = max(MAX_DIFF[name], (ours - theirs).abs().max().item())
    torch.testing.assert_close(ours, theirs, **TOL)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_advantages_match_trl(scale, seed):
    rewards = random_batch(seed)[-1]
    rewards[:G] = 1.0  # a group whose rewards tie: advantage 0
    record("advantages", g.group_advantages(rewards, G, scale), trl_advantages(rewards, scale))


@pytest.mark.parametrize("bias_correction_kl", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo", "dr_grpo"])
def test_loss_and_its_gradient_match_trl(loss_type, level, beta, bias_correction_kl):
    completions, logp, old, ref, rewards = random_batch(3)
    mask = g.completion_mask(completions, g.END).double()
    advantages = g.group_advantages(rewards, G)
    settings = dict(beta=beta, epsilon=0.2, epsilon_high=0.28, loss_type=loss_type)
    ours_logp, trl_logp = logp.clone().requires_grad_(), logp.clone().requires_grad_()
    ours, stats = g.grpo_loss(ours_logp, old, ref, advantages, mask, **settings, level=level,
                              bias_correction_kl=bias_correction_kl)
    theirs = trl_loss(trl_logp, old, ref, advantages, mask, completions, **settings, level=level,
                      bias_correction_kl=bias_correction_kl)
    assert 0 < stats["clip_ratio"] < 1  # the ratios are off-policy enough for clipping to act on some tokens only
    record("loss", ours, theirs)
    ours.backward()
    theirs.backward()
    record("gradient", ours_logp.grad, trl_logp.grad)
    assert ours_logp.grad.abs().max() > 0


@pytest.mark.parametrize("level", ["token", "sequence"])
def test_trl_loss_on_per_token_advantages_like_the_critic_paths_matches(level):
    """TRL's loss also takes (B, T) advantages: the critic path's whitened GAE advantages, beta = 0."""
    completions, logp, old, ref, rewards = random_batch(4)
    mask = g.completion_mask(completions, g.END).double()
    values = torch.randn(B, T, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    advantages, _ = g.completion_gae(g.kl_shaped_rewards(old, ref, rewards, mask, 0.04), values, mask, 1.0, 0.95)
    advantages = g.masked_whiten(advantages, mask)
    ours_logp, trl_logp = logp.clone().requires_grad_(), logp.clone().requires_grad_()
    ours, _ = g.grpo_loss(ours_logp, old, ref, advantages, mask, 0.0, 0.2, None, "grpo", level)
    theirs = trl_loss(trl_logp, old, ref, advantages, mask, completions, beta=0.0, epsilon=0.2, epsilon_high=0.2,
                      loss_type="grpo", level=level, bias_correction_kl=False)
    record("loss (per-token advantages)", ours, theirs)
    ours.backward()
    theirs.backward()
    record("gradient (per-token advantages)", ours_logp.grad, trl_logp.grad)


def teardown_module(module):
    print("\nmax |grpo_toy - TRL " + trl.__version__ + "|: " + ", ".join(f"{k} {v:.1e}" for k, v in MAX_DIFF.items()))
