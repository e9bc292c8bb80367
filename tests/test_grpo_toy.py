"""grpo_toy.py: the GRPO math against independent references, and short in-process runs."""
import glob
import math
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

import grpo_toy as g
from helpers import DEVICES, assert_finite_scalars, gae_reference, read_args, read_metrics

TRAIN_SCALARS = ["charts/reward", "charts/reward_std", "charts/frac_reward_zero_std", "charts/completion_length",
                 "charts/learning_rate", "charts/SPS", "losses/loss", "losses/kl", "losses/clip_ratio",
                 "losses/grad_norm", "eval/greedy_accuracy", "eval/sampled_accuracy"]
# A run of a couple of seconds: a few warm-up and GRPO steps, two evaluations.
TINY = g.Args(warmup_steps=5, total_steps=6, num_prompts=4, num_generations=4, eval_frequency=3,
              eval_samples=2, cuda=False)


def tiny_model(seed=0, task="sum"):
    torch.manual_seed(seed)
    spec = g.TASKS[task]
    return g.CausalTransformer(len(g.VOCAB), spec["prompt_len"] + spec["answer_len"] + 1, 32, 2, 4)


# ---------------------------------------------------------------- group advantages
def test_group_advantages_match_reference_and_sum_to_zero():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.3, 0.2, 0.9, 0.0, 0.0, 0.0, 1.0])
    adv = g.group_advantages(rewards, num_generations=4, eps=1e-4)
    for group, a in zip(rewards.view(3, 4).numpy(), adv.view(3, 4).numpy()):
        expected = (group - group.mean()) / (np.std(group, ddof=1) + 1e-4)
        np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-6)
        assert abs(a.sum()) < 1e-5


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_scale_rewards_divides_by_the_std_of_the_group_the_batch_or_nothing(scale):
    rewards = torch.rand(24, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    r = rewards.numpy().reshape(6, 4)
    centred = r - r.mean(axis=1, keepdims=True)  # always the group's mean
    std = {"group": np.std(r, axis=1, ddof=1, keepdims=True), "batch": np.std(r, ddof=1), "none": None}[scale]
    expected = centred if std is None else centred / (std + 1e-4)
    np.testing.assert_allclose(g.group_advantages(rewards, 4, scale).numpy(), expected.reshape(-1), rtol=1e-12)


def test_group_advantages_are_zero_not_nan_when_a_group_ties():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    adv = g.group_advantages(rewards, num_generations=4).view(2, 4)
    assert torch.isfinite(adv).all()
    assert torch.equal(adv[0], torch.zeros(4))
    assert adv[1, 3] > 0 and (adv[1, :3] < 0).all()


# ---------------------------------------------------------------- clipped surrogate
def surrogate_grad(ratio: float, advantage: float, epsilon=0.2, epsilon_high=None) -> float:
    logp = torch.tensor([math.log(ratio)], requires_grad=True)
    rho = g.importance_ratio(logp, torch.zeros(1), torch.ones(1))
    loss, _ = g.clipped_surrogate(rho, torch.tensor([advantage]), epsilon, epsilon_high)
    loss.sum().backward()
    return logp.grad.item()


@pytest.mark.parametrize("ratio, advantage, flows", [
    (1.3, 1.0, False),   # beyond 1 + eps with A > 0: clipped, no gradient
    (1.1, 1.0, True),
    (0.7, 1.0, True),    # below 1 - eps with A > 0 the pessimistic min keeps the unclipped term
    (0.7, -1.0, False),  # below 1 - eps with A < 0: clipped, no gradient
    (0.9, -1.0, True),
    (1.3, -1.0, True),
])
def test_clipped_surrogate_gradient_vanishes_only_where_clipped(ratio, advantage, flows):
    grad = surrogate_grad(ratio, advantage)
    if flows:  # d/dlogp of -ratio * A is -ratio * A
        assert grad == pytest.approx(-ratio * advantage, rel=1e-5)
    else:
        assert grad == 0.0


def test_epsilon_high_widens_only_the_upper_clip():
    assert surrogate_grad(1.25, 1.0, epsilon=0.2) == 0.0
    assert surrogate_grad(1.25, 1.0, epsilon=0.2, epsilon_high=0.28) == pytest.approx(-1.25, rel=1e-5)
    assert surrogate_grad(0.75, -1.0, epsilon=0.2, epsilon_high=0.28) == 0.0


def test_at_ratio_one_the_loss_is_the_policy_gradient_and_never_clips():
    torch.manual_seed(0)
    logp = torch.randn(6, 5, requires_grad=True)
    adv, mask = torch.randn(6), torch.ones(6, 5)
    loss, stats = g.grpo_loss(logp, logp.detach(), logp.detach(), adv, mask, beta=0.0, epsilon=0.2)
    loss.backward()
    assert stats["clip_ratio"] == 0
    torch.testing.assert_close(logp.grad, -adv[:, None].expand(6, 5) / 30)


# ---------------------------------------------------------------- KL estimator
def test_k3_expectation_is_the_exact_kl_on_a_categorical():
    torch.manual_seed(0)
    for _ in range(5):
        logp = torch.log_softmax(torch.randn(7, dtype=torch.float64) * 2, 0)
        ref = torch.log_softmax(torch.randn(7, dtype=torch.float64) * 2, 0)
        expectation = (logp.exp() * g.k3_kl(logp, ref)).sum()
        exact = sum(math.exp(p) * (p - q) for p, q in zip(logp.tolist(), ref.tolist()))
        assert expectation.item() == pytest.approx(exact, rel=1e-10)
        assert (g.k3_kl(logp, ref) >= 0).all()


def test_kl_bias_correction_makes_the_k3_gradient_that_of_the_reverse_kl():
    """Exact expectation over the sampled token x ~ pi_theta of the gradient of the loss's KL term, on-policy
    (old = current, detached): with the ratio it is grad KL(pi || ref), without it grad KL(ref || pi)."""
    torch.manual_seed(5)
    ref = torch.log_softmax(torch.randn(7, dtype=torch.float64), 0)
    theta = torch.randn(7, dtype=torch.float64, requires_grad=True)
    logp = torch.log_softmax(theta, 0)
    exact = {"pi||ref": (logp.exp() * (logp - ref)).sum(), "ref||pi": (ref.exp() * (ref - logp)).sum()}
    exact = {k: torch.autograd.grad(v, theta, retain_graph=True)[0] for k, v in exact.items()}
    one, zero = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    for corrected, target in [(True, "pi||ref"), (False, "ref||pi")]:
        expectation = sum(p * g.grpo_loss(logp[x].view(1, 1), logp[x].detach().view(1, 1), ref[x].view(1, 1), zero, one,
                                          beta=1.0, epsilon=0.2, bias_correction_kl=corrected)[0]
                          for x, p in enumerate(logp.exp().detach()))
        grad = torch.autograd.grad(expectation, theta, retain_graph=True)[0]
        torch.testing.assert_close(grad, exact[target], rtol=1e-10, atol=1e-12)
    assert not torch.allclose(exact["pi||ref"], exact["ref||pi"], atol=1e-3)  # the two really differ here


# ---------------------------------------------------------------- masks, aggregation, log-probs
def test_completion_mask_keeps_tokens_up_to_the_first_end():
    E = g.END
    completions = torch.tensor([[1, 2, E, 3, E], [1, 2, 3, 4, E], [E, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    expected = [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert g.completion_mask(completions, E).tolist() == expected


def grpo_loss_reference(logp, old, ref, adv, mask, beta, eps, loss_type, level="token", bias_correction_kl=False):
    """Token-by-token loops over plain floats."""
    per_seq, total, count = [], 0.0, 0
    for i in range(len(logp)):
        terms, kept = [], [t for t in range(len(logp[i])) if mask[i][t]]
        seq_log_ratio = sum(logp[i][t] - old[i][t] for t in kept) / len(kept)  # GSPO: one ratio per completion
        for t in kept:
            ratio = math.exp(seq_log_ratio if level == "sequence" else logp[i][t] - old[i][t])
            d = ref[i][t] - logp[i][t]
            surrogate = -min(ratio * adv[i], min(max(ratio, 1 - eps), 1 + eps) * adv[i])
            terms.append(surrogate + beta * (math.exp(d) - d - 1) * (ratio if bias_correction_kl else 1.0))
        per_seq.append(sum(terms) / len(terms))
        total, count = total + sum(terms), count + len(terms)
    return {"grpo": sum(per_seq) / len(per_seq), "bnpo": total / count, "dapo": total / count,
            "dr_grpo": total / (len(logp) * len(logp[0]))}[loss_type]


@pytest.mark.parametrize("level, bias_correction_kl", [("token", False), ("sequence", False), ("token", True),
                                                       ("sequence", True)])
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo", "dr_grpo"])
def test_loss_aggregation_matches_a_token_loop(loss_type, level, bias_correction_kl):
    torch.manual_seed(1)
    logp, old, ref = (torch.randn(4, 5, dtype=torch.float64) * 0.3 - 1 for _ in range(3))
    adv = torch.randn(4, dtype=torch.float64)
    mask = g.completion_mask(torch.tensor([[1, 2, g.END, 3, 3], [1, 2, 3, 4, g.END], [g.END, 1, 1, 1, 1],
                                           [1, 1, 1, 1, 1]]), g.END).double()
    loss, _ = g.grpo_loss(logp, old, ref, adv, mask, beta=0.04, epsilon=0.2, loss_type=loss_type, level=level,
                          bias_correction_kl=bias_correction_kl)
    expected = grpo_loss_reference(logp.tolist(), old.tolist(), ref.tolist(), adv.tolist(), mask.tolist(), 0.04, 0.2,
                                   loss_type, level, bias_correction_kl)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- GSPO: one ratio per completion
def test_sequence_ratio_is_the_exp_of_the_masked_mean_log_ratio():
    torch.manual_seed(6)
    logp, old = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    mask = g.completion_mask(torch.tensor([[1, g.END, 2, 3, 4], [1, 2, 3, 4, 5], [1, 2, 3, g.END, 4]]), g.END).double()
    ratio = g.importance_ratio(logp, old, mask, "sequence")
    for i, n in enumerate([2, 5, 4]):
        expected = math.exp(sum(logp[i, t].item() - old[i, t].item() for t in range(n)) / n)
        assert ratio[i].tolist() == pytest.approx([expected] * 5, rel=1e-12)
    tail = logp.clone()
    tail[0, 2:], tail[2, 4] = 9.0, -9.0  # tokens after the end
    assert torch.equal(g.importance_ratio(tail, old, mask, "sequence"), ratio)
    torch.testing.assert_close(g.importance_ratio(logp, old, mask, "token"), torch.exp(logp - old))


def test_sequence_level_clipping_stops_every_token_of_a_clipped_completion():
    """Completion 0 has ratio 1.5 > 1 + eps with A > 0: clipped, no gradient on any token. Completion 1 has ratio 1.05:
    each of its n tokens gets d(-rho A)/d logp_t = -A rho / n, then the mean over the B = 2 completions."""
    old = torch.zeros(2, 4, dtype=torch.float64)
    logp = torch.tensor([[0.2, 0.6, math.log(1.5) * 3 - 0.8, 5.0], [math.log(1.05) * 2, 0.0, 7.0, 7.0]],
                        dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float64)
    adv = torch.tensor([1.0, 0.7], dtype=torch.float64)
    loss, stats = g.grpo_loss(logp, old, old, adv, mask, beta=0.0, epsilon=0.2, level="sequence")
    loss.backward()
    assert torch.equal(logp.grad[0], torch.zeros(4, dtype=torch.float64))
    expected = [-0.7 * 1.05 / 2 / 2] * 2 + [0.0, 0.0]  # -A rho / n on its n = 2 tokens, / B = 2; nothing after the end
    assert logp.grad[1].tolist() == pytest.approx(expected, rel=1e-12)
    assert stats["clip_ratio"].item() == pytest.approx(3 / 5)  # completion 0's three tokens of five


# ---------------------------------------------------------------- the critic path (PPO with a value model)
def shaped_rewards_reference(old, ref, scores, completions, beta):
    """Plain loops: -beta (old - ref) up to and including the first end token, the score added at that last token."""
    out = [[0.0] * len(row) for row in completions]
    for i, row in enumerate(completions):
        n = row.index(g.END) + 1 if g.END in row else len(row)
        for t in range(n):
            out[i][t] = -beta * (old[i][t] - ref[i][t])
        out[i][n - 1] += scores[i]
    return out


@pytest.mark.parametrize("gamma, lam", [(1.0, 0.95), (0.9, 0.7), (1.0, 1.0), (0.8, 0.0)])
def test_kl_shaped_rewards_and_completion_gae_match_token_loops(gamma, lam):
    torch.manual_seed(7)
    completions = [[1, 2, g.END, 3, g.END], [1, 2, 3, 4, g.END], [g.END, 1, 1, 1, 1], [4, 4, 4, 4, 4], [1, g.END, 2, 2, 2]]
    mask = g.completion_mask(torch.tensor(completions), g.END).double()
    old, ref, values = (torch.randn(5, 5, dtype=torch.float64) for _ in range(3))
    scores = torch.tensor([1.0, 0.0, 1.0, 0.5, 0.0], dtype=torch.float64)
    rewards = g.kl_shaped_rewards(old, ref, scores, mask, beta=0.1)
    expected_rewards = shaped_rewards_reference(old.tolist(), ref.tolist(), scores.tolist(), completions, 0.1)
    np.testing.assert_allclose(rewards.numpy(), expected_rewards, rtol=1e-12, atol=1e-15)
    adv, returns = g.completion_gae(rewards, values, mask, gamma, lam)
    # the reference walks each completion forward to its end; after the end nothing: terminal, value 0
    dones = np.zeros((5, 5))
    for i, row in enumerate(completions):
        dones[i, row.index(g.END) if g.END in row else 4] = 1
    ref_adv, ref_returns = gae_reference(np.array(expected_rewards).T, values.numpy().T, dones.T, np.zeros(5), gamma, lam)
    m = mask.numpy().astype(bool)
    np.testing.assert_allclose(adv.numpy()[m], ref_adv.T[m], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(returns.numpy()[m], ref_returns.T[m], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(returns[mask.bool()], (adv + values)[mask.bool()])
    assert not adv[~mask.bool()].any() and not returns[~mask.bool()].any()


def test_masked_whiten_normalizes_over_completion_tokens_only():
    torch.manual_seed(8)
    x = torch.randn(4, 6, dtype=torch.float64) * 3 + 2
    mask = g.completion_mask(torch.tensor([[1, g.END, 1, 1, 1, 1], [1] * 6, [1, 1, 1, g.END, 1, 1], [g.END] * 6]),
                             g.END).double()
    white = g.masked_whiten(x, mask)
    kept = white[mask.bool()].numpy()
    assert kept.mean() == pytest.approx(0, abs=1e-12) and np.std(kept, ddof=1) == pytest.approx(1, rel=1e-6)
    assert not white[~mask.bool()].any()
    junk = torch.where(mask.bool(), x, torch.full_like(x, 1e6))
    torch.testing.assert_close(g.masked_whiten(junk, mask), white, rtol=0, atol=0)


@pytest.mark.parametrize("value, loss, grad", [
    (0.1, 0.5 * 0.9 ** 2, -0.9),  # within 0.2 of V_old = 0: the plain squared error
    (0.5, 0.5 * 0.8 ** 2, 0.0),   # moved 0.5 toward R = 1: the clipped value 0.2 has the larger error, no gradient
    (-0.5, 0.5 * 1.5 ** 2, -1.5),  # moved away from R: the unclipped error is larger and keeps its gradient
])
def test_clipped_value_loss_at_hand_computed_points(value, loss, grad):
    values = torch.tensor([[value, 50.0]], dtype=torch.float64, requires_grad=True)  # the second token is masked out
    mask = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    out = g.clipped_value_loss(values, torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64),
                               mask, clip=0.2)
    out.backward()
    assert out.item() == pytest.approx(loss, rel=1e-12)
    assert values.grad.tolist() == [[pytest.approx(grad, rel=1e-12, abs=0), 0.0]]


def test_explained_variance_is_one_for_exact_values_and_zero_for_the_mean():
    torch.manual_seed(9)
    returns = torch.randn(3, 5, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.float64)
    junk = torch.where(mask.bool(), returns, torch.full_like(returns, 7.0))  # masked-out tokens do not count
    assert g.explained_variance(junk, returns, mask).item() == pytest.approx(1.0, abs=1e-12)
    mean = torch.where(mask.bool(), returns[mask.bool()].mean(), torch.full_like(returns, -7.0))
    assert g.explained_variance(mean, returns, mask).item() == pytest.approx(0.0, abs=1e-12)
    assert g.explained_variance(-returns, returns, mask).item() == pytest.approx(-3.0, rel=1e-12)


def loss_from_model(model, prompts, completions, adv, old, loss_type):
    seqs = torch.cat([prompts, completions], 1)
    logp = g.completion_logprobs(model(seqs), seqs, prompts.shape[1])
    loss, _ = g.grpo_loss(logp, old, old, adv, g.completion_mask(completions, g.END), 0.04, 0.2, loss_type=loss_type)
    return loss


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_tokens_after_the_end_token_do_not_change_the_loss_or_its_gradient(loss_type):
    model = tiny_model()
    prompts = g.make_prompts("sum", 3, torch.Generator().manual_seed(0))
    completions = torch.tensor([[4, g.END, 7, 7], [1, 2, 3, g.END], [g.END, 5, 5, 5]])
    adv, old = torch.tensor([1.0, -0.5, 2.0]), torch.full((3, 4), -2.0)
    loss = loss_from_model(model, prompts, completions, adv, old, loss_type)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    tail_changed = torch.tensor([[4, g.END, 0, 9], [1, 2, 3, g.END], [g.END, 9, g.BOS, 0]])
    loss2 = loss_from_model(model, prompts, tail_changed, adv, old, loss_type)
    assert loss2.item() == loss.item()
    for a, b in zip(grads, torch.autograd.grad(loss2, list(model.parameters()))):
        torch.testing.assert_close(a, b)
    head_changed = torch.tensor([[5, g.END, 7, 7], [1, 2, 3, g.END], [g.END, 5, 5, 5]])  # the check can fail
    assert loss_from_model(model, prompts, head_changed, adv, old, loss_type).item() != loss.item()


def test_prompt_positions_never_reach_the_completion_logprobs():
    model = tiny_model()
    prompts = g.make_prompts("sum", 5, torch.Generator().manual_seed(1))
    seqs = torch.cat([prompts, torch.randint(0, 10, (5, 4))], 1)
    logits = model(seqs).detach()
    tampered = logits.clone()
    tampered[:, : prompts.shape[1] - 1] = torch.randn_like(tampered[:, : prompts.shape[1] - 1]) * 10
    torch.testing.assert_close(g.completion_logprobs(tampered, seqs, 4), g.completion_logprobs(logits, seqs, 4),
                               rtol=0, atol=0)
    assert g.completion_logprobs(logits, seqs, 4).shape == (5, 4)


@pytest.mark.parametrize("task, temperature", [("sum", 1.0), ("sort", 0.7)])
def test_sampling_logprobs_equal_a_recomputed_forward_pass(task, temperature):
    model = tiny_model(task=task)
    spec = g.TASKS[task]
    prompts = g.make_prompts(task, 32, torch.Generator().manual_seed(2))
    torch.manual_seed(3)
    completions, sampled_logp = g.generate(model, prompts, spec["answer_len"] + 1, temperature)
    seqs = torch.cat([prompts, completions], 1)
    recomputed = g.completion_logprobs(model(seqs), seqs, spec["prompt_len"], temperature)
    torch.testing.assert_close(sampled_logp, recomputed, rtol=0, atol=1e-5)
    greedy, _ = g.generate(model, prompts, spec["answer_len"] + 1, greedy=True)
    seqs = torch.cat([prompts, greedy], 1)
    assert torch.equal(model(seqs)[:, spec["prompt_len"] - 1 : -1].argmax(-1), greedy)


def test_task_rewards():
    sum_prompts = torch.tensor([[g.BOS, 1, 2, g.SEP]] * 4)  # target 12
    answers = torch.tensor([[3, 4, 5, g.END], [3, 4, 6, g.END], [3, 4, 5, 5], [9, 3, 0, g.END]])
    assert g.task_reward("sum", sum_prompts, answers).tolist() == [1, 0, 0, 1]
    assert g.task_reward("sum", sum_prompts, answers, shaped=True).tolist() == pytest.approx([1, 26 / 27, 0, 1])
    sort_prompts = torch.tensor([[g.BOS, 3, 1, 2, 1, g.SEP]] * 3)
    answers = torch.tensor([[1, 1, 2, 3, g.END], [1, 2, 1, 3, g.END], [1, 1, 2, 3, 3]])
    assert g.task_reward("sort", sort_prompts, answers).tolist() == [1, 0, 0]


# ---------------------------------------------------------------- in-process runs
@pytest.mark.parametrize("cuda", DEVICES)
def test_tiny_run_logs_finite_metrics_and_saves_a_model(cuda):
    out = g.main(replace(TINY, cuda=cuda, save_model=True))
    assert os.path.basename(out["run_dir"]).startswith("sum__grpo_toy__1__")  # --task and --seed default to sum and 1
    metrics = read_metrics(out["run_dir"])
    assert_finite_scalars(metrics, TRAIN_SCALARS)
    assert [s for s, _ in metrics["charts/reward"]] == list(range(1, 7))
    assert [s for s, _ in metrics["eval/greedy_accuracy"]] == [0, 3, 6]
    assert read_args(out["run_dir"])["num_generations"] == 4
    assert [s for s, _ in out["episodic_returns"]] == list(range(1, 7))
    state = torch.load(os.path.join(out["run_dir"], "model.pt"), weights_only=True)
    assert state["script"] == "grpo_toy.py" and state["task"] == "sum" and state["args"]["total_steps"] == 6


@pytest.mark.parametrize("extra, scalars", [
    (dict(advantage="critic"), [*TRAIN_SCALARS, "losses/value_loss", "losses/explained_variance"]),
    (dict(importance_sampling_level="sequence", num_iterations=2), TRAIN_SCALARS),
    (dict(use_bias_correction_kl=True, scale_rewards="batch"), TRAIN_SCALARS),
], ids=["critic", "gspo", "bias-corrected-kl"])
def test_variant_runs_log_finite_metrics(extra, scalars):
    metrics = read_metrics(g.main(replace(TINY, **extra))["run_dir"])
    assert_finite_scalars(metrics, scalars)
    assert ("losses/value_loss" in metrics) == (extra.get("advantage") == "critic")


@pytest.mark.parametrize("field, value", [("gamma", 1.5), ("gae_lambda", math.nan), ("vf_coef", math.inf),
                                          ("cliprange_value", -0.1), ("gamma", -0.1)])
def test_critic_arguments_out_of_range_are_refused(field, value):
    with pytest.raises(g.UsageError, match="--gamma and --gae-lambda must be in"):
        g.check_args(replace(TINY, **{field: value}))


def test_the_critic_reads_each_tokens_value_where_the_token_is_predicted_and_trains_apart_from_the_policy(monkeypatch):
    """In a run: V_t given to the GAE equals the critic's output at the last position of the prefix that precedes
    token t (recomputed on truncated sequences, so a shifted slice fails), the critic shares no parameter with the
    policy, and the optimizer steps both."""
    import sys
    real_gae, checked = g.completion_gae, []

    def checking_gae(rewards, values, mask, gamma, lam):
        main = sys._getframe(1).f_locals
        critic, policy, seqs, n_prompt = main["critic"], main["policy"], main["seqs"], main["prompt_len"]
        with torch.no_grad():
            expected = torch.stack([critic(seqs[:, :n_prompt + t])[:, -1, 0] for t in range(values.shape[1])], dim=1)
        torch.testing.assert_close(values, expected, rtol=1e-5, atol=1e-5)
        assert not {id(p) for p in critic.parameters()} & {id(p) for p in policy.parameters()}
        stepped = {id(p) for group in main["optimizer"].param_groups for p in group["params"]}
        assert {id(p) for p in [*critic.parameters(), *policy.parameters()]} <= stepped
        checked.append(True)
        return real_gae(rewards, values, mask, gamma, lam)

    monkeypatch.setattr(g, "completion_gae", checking_gae)
    g.main(replace(TINY, advantage="critic", total_steps=2))
    assert len(checked) == 2


def test_seeded_runs_are_reproducible():
    args = replace(TINY, num_iterations=2, epsilon_high=0.28, loss_type="dr_grpo")
    a, b = read_metrics(g.main(args)["run_dir"]), read_metrics(g.main(args)["run_dir"])
    for name in ["charts/reward", "losses/loss", "losses/kl", "losses/clip_ratio", "losses/grad_norm",
                 "eval/sampled_accuracy"]:
        assert a[name] == b[name]
    assert a["losses/loss"] != read_metrics(g.main(replace(args, seed=2))["run_dir"])["losses/loss"]


def test_a_model_loaded_alone_is_evaluated_as_its_run_did():
    """Sizes, temperature and evaluation flags come from the checkpoint, and the evaluation draws its own samples."""
    run_args = replace(TINY, warmup_steps=30, total_steps=2, eval_frequency=2, eval_samples=4, d_model=32, n_head=2,
                       temperature=0.8, seed=3, save_model=True)
    out = g.main(run_args)
    assert 0 < out["after"]["eval/sampled_accuracy"] < 1  # sampling that used other draws would (likely) score otherwise
    loaded = g.main(g.Args(load_model=os.path.join(out["run_dir"], "model.pt"), cuda=False))
    assert loaded["after"] == out["after"]
    for a, b in zip(out["model"].state_dict().values(), loaded["model"].state_dict().values()):
        assert torch.equal(a, b)
    resolved = read_args(loaded["run_dir"])
    assert {k: resolved[k] for k in ("task", "seed", "d_model", "n_head", "temperature", "eval_samples")} == dict(
        task="sum", seed=3, d_model=32, n_head=2, temperature=0.8, eval_samples=4)


def test_a_non_finite_loss_stops_before_the_update_and_keeps_a_finite_model(monkeypatch):
    monkeypatch.setattr(g, "group_advantages", lambda rewards, *a, **k: torch.full_like(rewards, math.nan))
    with pytest.raises(FloatingPointError, match="the loss is not finite at step 1: training stopped"):
        g.main(replace(TINY, save_model=True))
    [run_dir] = glob.glob("runs/*")
    assert "charts/reward" not in read_metrics(run_dir)
    state = torch.load(os.path.join(run_dir, "model.pt"), weights_only=True)  # the warm-up model: no NaN update applied
    assert all(torch.isfinite(w).all() for w in state["model"].values())


def test_shaped_reward_rises_within_seconds():
    out = g.main(replace(TINY, shaped_reward=True, warmup_steps=20, total_steps=30, num_prompts=8,
                         num_generations=8, learning_rate=3e-3, eval_frequency=30))
    rewards = [r for _, r in out["episodic_returns"]]
    assert np.mean(rewards[-10:]) > np.mean(rewards[:10]) + 0.08  # ~0.69 -> ~0.84 on CPU


@pytest.mark.slow
def test_default_run_learns_the_sum_task():
    out = g.main(g.Args(cuda=False))
    assert out["before"]["eval/greedy_accuracy"] < 0.2
    assert out["after"]["eval/greedy_accuracy"] >= 0.9
