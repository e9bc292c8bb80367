"""dpo_toy.py: the preference losses against closed forms and a tabular optimum, and short in-process runs."""
import copy
import decimal
import glob
import math
import os
import re
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

import dpo_toy as d
from helpers import DEVICES, assert_finite_scalars, read_args, read_metrics

STEP_SCALARS = ["losses/loss", "losses/grad_norm", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                "rewards/margins", "logps/chosen", "logps/rejected", "charts/learning_rate", "charts/epoch"]
EVAL_SCALARS = ["eval/greedy_accuracy", "eval/sampled_accuracy"]
# A run of a couple of seconds. `sum` because an untrained model already answers it by chance (~4 %), so
# eight samples per prompt give pairs without a long warm-up.
TINY = d.Args(task="sum", warmup_steps=10, num_train_prompts=48, samples_per_prompt=8, num_epochs=2,
              batch_size=8, eval_prompts=16, eval_samples=2, learning_rate=1e-3, cuda=False)


# ---------------------------------------------------------------- the losses at initialization
@pytest.mark.parametrize("beta", [0.01, 0.1, 0.5, 2.0])
def test_at_initialization_sigmoid_loss_is_log2_with_zero_rewards_and_gradients_beta_over_2(beta):
    torch.manual_seed(0)
    ref_c, ref_r = torch.randn(5) * 3 - 4, torch.randn(5) * 3 - 4
    pi_c, pi_r = ref_c.clone().requires_grad_(), ref_r.clone().requires_grad_()
    losses, reward_c, reward_r = d.dpo_loss(pi_c, pi_r, ref_c, ref_r, beta, "sigmoid")
    torch.testing.assert_close(losses, torch.full((5,), math.log(2)))
    assert torch.equal(reward_c, torch.zeros(5)) and torch.equal(reward_r, torch.zeros(5))
    assert torch.equal(reward_c - reward_r, torch.zeros(5))
    losses.sum().backward()
    torch.testing.assert_close(pi_c.grad, torch.full((5,), -beta / 2))
    torch.testing.assert_close(pi_r.grad, torch.full((5,), beta / 2))


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_at_initialization_ipo_is_one_over_four_beta_squared_and_hinge_is_one(beta):
    logps = torch.tensor([-3.0, -7.5, -0.2])
    ipo, _, _ = d.dpo_loss(logps, logps + 1, logps, logps + 1, beta, "ipo")
    hinge, _, _ = d.dpo_loss(logps, logps + 1, logps, logps + 1, beta, "hinge")
    torch.testing.assert_close(ipo, torch.full((3,), 1 / (4 * beta**2)))
    torch.testing.assert_close(hinge, torch.ones(3))


def test_losses_away_from_initialization_match_their_formulas():
    pi_c, pi_r, ref_c, ref_r = torch.tensor([-1.0]), torch.tensor([-4.0]), torch.tensor([-2.0]), torch.tensor([-3.0])
    beta = 0.3
    h = (-1 + 2) - (-4 + 3)  # = 2
    expected = {"sigmoid": math.log(1 + math.exp(-beta * h)), "ipo": (h - 1 / (2 * beta)) ** 2,
                "hinge": max(0, 1 - beta * h)}
    for loss_type, value in expected.items():
        losses, reward_c, reward_r = d.dpo_loss(pi_c, pi_r, ref_c, ref_r, beta, loss_type)
        assert losses.item() == pytest.approx(value, rel=1e-6)
    assert reward_c.item() == pytest.approx(beta * 1.0) and reward_r.item() == pytest.approx(beta * -1.0)


def test_tabular_dpo_recovers_the_kl_regularized_optimum():
    """Four answers, Bradley-Terry preferences P(i > j) = sigmoid(r_i - r_j) over every pair: the minimizer
    of the expected DPO loss over all policies is pi proportional to pi_ref * exp(r / beta)."""
    torch.manual_seed(0)
    beta = 0.5
    ref = torch.log_softmax(torch.randn(4, dtype=torch.float64), 0)
    r = torch.tensor([0.3, -0.2, 0.9, 0.0], dtype=torch.float64)
    i, j = torch.triu_indices(4, 4, offset=1)
    p_i_wins = torch.sigmoid(r[i] - r[j])
    theta = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([theta], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14)

    def expected_loss():
        optimizer.zero_grad()
        logpi = torch.log_softmax(theta, 0)
        i_wins, _, _ = d.dpo_loss(logpi[i], logpi[j], ref[i], ref[j], beta)
        j_wins, _, _ = d.dpo_loss(logpi[j], logpi[i], ref[j], ref[i], beta)
        loss = (p_i_wins * i_wins + (1 - p_i_wins) * j_wins).sum()
        loss.backward()
        return loss

    optimizer.step(expected_loss)
    optimum = torch.softmax(ref + r / beta, 0)
    torch.testing.assert_close(torch.softmax(theta, 0).detach(), optimum, rtol=0, atol=1e-6)
    assert (optimum - ref.exp()).abs().max() > 0.1  # the optimum is far from the reference: the check has teeth


# ---------------------------------------------------------------- KTO and ORPO
def two_models():
    """A policy and a reference that differ, for prompts of the `sort` task: two random initializations, the policy's
    weights doubled so that its log-probabilities depend visibly on the prompt."""
    torch.manual_seed(0)
    policy, ref = d.CausalTransformer(len(d.VOCAB), 11, 32, 2, 4), d.CausalTransformer(len(d.VOCAB), 11, 32, 2, 4)
    with torch.no_grad():
        for w in policy.parameters():
            w.mul_(2)
    return policy, ref


def test_kto_at_zero_log_ratio_and_z0_is_half_of_each_weight_and_raises_desirable_and_lowers_undesirable():
    beta, desirable_weight, undesirable_weight = 0.7, 2.0, 0.5
    chosen, rejected = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)  # unpaired: 3 and 2
    losses, reward_c, reward_r = d.kto_loss(chosen, rejected, torch.tensor(0.0), beta, desirable_weight, undesirable_weight)
    torch.testing.assert_close(losses, torch.tensor([1.0, 1.0, 1.0, 0.25, 0.25]))  # 0.5 times the weight
    assert torch.equal(reward_c, torch.zeros(3)) and torch.equal(reward_r, torch.zeros(2))
    losses.sum().backward()  # d/du of w (1 - sigmoid(beta u)) at 0 is -w beta / 4
    torch.testing.assert_close(chosen.grad, torch.full((3,), -desirable_weight * beta / 4))  # descent raises log pi(y_w)
    torch.testing.assert_close(rejected.grad, torch.full((2,), undesirable_weight * beta / 4))  # and lowers log pi(y_l)


def test_kto_losses_match_the_formula_and_each_depends_on_its_own_example_only():
    chosen, rejected, z0, beta = torch.tensor([1.0, -0.5]), torch.tensor([-2.0, 0.3]), torch.tensor(0.4), 0.3
    losses, reward_c, reward_r = d.kto_loss(chosen, rejected, z0, beta, 1.5, 0.8)
    sigmoid = lambda v: 1 / (1 + math.exp(-v))
    expected = [1.5 * (1 - sigmoid(beta * (u - 0.4))) for u in (1.0, -0.5)] + [
        0.8 * (1 - sigmoid(beta * (0.4 - u))) for u in (-2.0, 0.3)]
    assert losses.tolist() == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(reward_c, beta * chosen)
    torch.testing.assert_close(reward_r, beta * rejected)
    swapped, _, _ = d.kto_loss(chosen, rejected.flip(0), z0, beta, 1.5, 0.8)  # which y_l went with which y_w: no matter
    torch.testing.assert_close(swapped, torch.cat([losses[:2], losses[2:].flip(0)]))


@pytest.mark.parametrize("average", [False, True])
def test_kto_reference_point_is_the_clamped_mean_log_ratio_of_mismatched_pairs_without_gradient(average):
    policy, ref = two_models()
    prompts = d.make_prompts("sort", 4, torch.Generator().manual_seed(1))
    assert len(set(map(tuple, prompts.tolist()))) == 4
    completions = torch.tensor([[1, 2, d.END, 7, 7], [3, 3, 4, 5, d.END], [9, 8, 7, 6, 5], [0, 1, 2, 3, d.END]])

    def mean_log_ratio(a, b, pairs):  # reference: one (prompt, completion) at a time
        return sum((d.sequence_logprobs(a, prompts[[i]], completions[[j]], average)
                    - d.sequence_logprobs(b, prompts[[i]], completions[[j]], average)).item() for i, j in pairs) / len(pairs)

    mismatched = mean_log_ratio(policy, ref, [(i, (i - 1) % 4) for i in range(4)])  # each prompt, the previous completion
    assert abs(mismatched - mean_log_ratio(policy, ref, [(i, i) for i in range(4)])) > 0.5  # matched pairs would differ
    z0, z0_swapped = d.kto_reference_point(policy, ref, prompts, completions, average), d.kto_reference_point(
        ref, policy, prompts, completions, average)  # swapping the models flips the sign: one of the two clamps at 0
    assert z0.item() == pytest.approx(max(0.0, mismatched), abs=1e-5)
    assert z0_swapped.item() == pytest.approx(max(0.0, -mismatched), abs=1e-5)
    assert min(z0.item(), z0_swapped.item()) == 0.0 < max(z0.item(), z0_swapped.item())
    assert all(p.requires_grad for p in policy.parameters()) and not z0.requires_grad  # z0 carries no gradient


def exact_log_odds(logp: float) -> float:
    """log(P / (1 - P)) in 60-digit decimal arithmetic."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        p = decimal.Decimal(logp).exp()
        return float((p / (1 - p)).ln())


@pytest.mark.parametrize("orpo_lambda", [0.1, 1.0])
def test_orpo_with_equal_log_probabilities_is_the_nll_plus_lambda_log2_and_favours_the_chosen(orpo_lambda):
    avg = torch.tensor([-0.3, -1.2, -4.0])
    chosen, rejected = avg.clone().requires_grad_(), avg.clone().requires_grad_()
    losses, reward_c, reward_r, log_odds_ratio = d.orpo_loss(chosen, rejected, orpo_lambda)
    torch.testing.assert_close(losses, -avg + orpo_lambda * math.log(2))
    assert torch.equal(log_odds_ratio, torch.zeros(3))
    torch.testing.assert_close(reward_c, orpo_lambda * avg)
    torch.testing.assert_close(reward_r, orpo_lambda * avg)
    losses.sum().backward()  # d log odds / d log P = 1 / (1 - P); log sigmoid'(0) = 1/2
    odds_slope = orpo_lambda / (2 * (1 - avg.exp()))
    torch.testing.assert_close(chosen.grad, -1 - odds_slope)  # descent raises the chosen
    torch.testing.assert_close(rejected.grad, odds_slope)  # and lowers the rejected


def test_orpo_loss_at_a_hand_computed_point():
    losses, _, _, log_odds_ratio = d.orpo_loss(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.2)]), 0.25)
    assert log_odds_ratio.item() == pytest.approx(math.log(1 / 0.25), rel=1e-6)  # odds 1 against odds 1/4
    assert losses.item() == pytest.approx(math.log(2) - 0.25 * math.log(4 / 5), rel=1e-6)  # sigmoid(log 4) = 4/5


def test_log_odds_are_accurate_and_finite_with_finite_gradients_from_p_near_one_to_p_near_zero():
    logp = [-1e-30, -1e-20, -1e-7, -1e-3, -0.5, -math.log(2), -1.0, -30.0, -200.0, -1e4]
    got = d.log_odds(torch.tensor(logp))  # float32, against the exact value at each float32 input
    torch.testing.assert_close(got, torch.tensor([exact_log_odds(v) for v in torch.tensor(logp).tolist()]), rtol=1e-5,
                               atol=1e-7)
    naive = torch.tensor(logp) - torch.log(1 - torch.exp(torch.tensor(logp)))  # what the checks above have teeth against
    assert not torch.allclose(naive, got, rtol=1e-3) and not naive.isfinite().all()
    assert 80 < d.log_odds(torch.tensor([0.0])).item() < math.inf  # P rounded to 1: large, finite odds
    for near_one, near_zero in [(-1e-30, -1e4), (-1e-7, -30.0), (0.0, -200.0)]:  # as chosen or rejected: no NaN gradient
        chosen, rejected = torch.tensor([near_one, near_zero], requires_grad=True), torch.tensor(
            [near_zero, near_one], requires_grad=True)
        losses, _, _, _ = d.orpo_loss(chosen, rejected, 0.1)
        losses.sum().backward()
        assert losses.isfinite().all() and chosen.grad.isfinite().all() and rejected.grad.isfinite().all()


# ---------------------------------------------------------------- sequence log-probabilities and pairs
def test_sequence_logprobs_sum_token_logprobs_up_to_the_first_end_token_and_average_them():
    torch.manual_seed(0)
    model = d.CausalTransformer(len(d.VOCAB), 11, 32, 2, 4)
    prompts = d.make_prompts("sort", 3, torch.Generator().manual_seed(0))
    completions = torch.tensor([[1, 2, d.END, 7, 7], [1, 2, 3, 4, d.END], [1, 2, 3, 4, 5]])
    got, averaged = d.sequence_logprobs(model, prompts, completions), d.sequence_logprobs(model, prompts, completions, True)
    for row, length in zip(range(3), [3, 5, 5]):  # reference: one forward pass per prefix, stop after the end token
        total, count = 0.0, 0
        for t in range(5):
            prefix = torch.cat([prompts[row], completions[row, :t]])[None]
            total, count = total + torch.log_softmax(model(prefix)[0, -1], -1)[completions[row, t]].item(), count + 1
            if completions[row, t] == d.END:
                break
        assert count == length
        assert got[row].item() == pytest.approx(total, abs=1e-4)
        assert averaged[row].item() == pytest.approx(total / count, abs=1e-5)


def test_ipo_on_averaged_logprobs_regresses_the_summed_h_divided_by_the_common_length():
    policy, ref = two_models()
    prompts = d.make_prompts("sort", 6, torch.Generator().manual_seed(0))
    completions = torch.randint(0, 10, (6, 5), generator=torch.Generator().manual_seed(1))
    completions[:, 3] = d.END  # every completion four tokens long, end included (the digit after it does not count)
    beta = 0.5
    (pi_sum, ref_sum), (pi_avg, ref_avg) = ([d.sequence_logprobs(m, prompts, completions, average) for m in (policy, ref)]
                                            for average in (False, True))
    h = (pi_sum[:3] - ref_sum[:3]) - (pi_sum[3:] - ref_sum[3:])  # pairs: rows 0-2 chosen, 3-5 rejected
    ipo_averaged, _, _ = d.dpo_loss(pi_avg[:3], pi_avg[3:], ref_avg[:3], ref_avg[3:], beta, "ipo")
    ipo_summed, _, _ = d.dpo_loss(pi_sum[:3], pi_sum[3:], ref_sum[:3], ref_sum[3:], beta, "ipo")
    torch.testing.assert_close(ipo_averaged, (h / 4 - 1 / (2 * beta)) ** 2)
    torch.testing.assert_close(ipo_summed, (h - 1 / (2 * beta)) ** 2)
    assert (ipo_averaged - ipo_summed).abs().max() > 1e-3


def test_preference_pairs_take_a_correct_and_an_incorrect_sample_and_drop_ties():
    rewards = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 1, 0]])
    idx, chosen, rejected = d.preference_pairs(rewards)
    assert idx.tolist() == [0, 3]
    assert (rewards[idx, chosen] == 1).all() and (rewards[idx, rejected] == 0).all()


def test_sort_rewards_and_noisy_labels():
    prompts = torch.tensor([[d.BOS, 3, 1, 2, 1, d.SEP]] * 3)
    answers = torch.tensor([[1, 1, 2, 3, d.END], [1, 2, 1, 3, d.END], [1, 1, 2, 3, 3]])
    assert d.task_reward("sort", prompts, answers).tolist() == [1, 0, 0]
    gen = torch.Generator().manual_seed(0)
    for task in ("sort", "sum"):
        many = d.make_prompts(task, 4000, gen)
        right = d.task_reward(task, many, d.noisy_answers(task, many, 0.4, gen)).mean().item()
        assert 0.4 < right < 0.5  # 40 % correct by construction, plus wrong draws that happen to be right
        assert d.task_reward(task, many, d.noisy_answers(task, many, 1.0, gen)).mean().item() == 1.0


# ---------------------------------------------------------------- in-process runs
@pytest.mark.parametrize("cuda", DEVICES)
def test_tiny_run_logs_finite_metrics_and_accuracies_every_epoch(cuda):
    out = d.main(replace(TINY, cuda=cuda, save_model=True))
    assert os.path.basename(out["run_dir"]).startswith("sum__dpo_toy__1__")
    metrics = read_metrics(out["run_dir"])
    assert_finite_scalars(metrics, STEP_SCALARS + EVAL_SCALARS + ["charts/SPS"])
    steps = len(metrics["losses/loss"])
    assert steps == 2 * math.ceil(out["num_pairs"] / 8) and out["num_pairs"] > 0
    assert [s for s, _ in metrics["eval/sampled_accuracy"]] == [0, steps // 2, steps]  # before, after each epoch
    assert abs(metrics["rewards/margins"][0][1]) < 1e-6  # the first step sees policy == reference (other batch shapes)
    assert metrics["rewards/margins"][-1][1] > 0.0  # training separates chosen from rejected
    assert read_args(out["run_dir"])["beta"] == 0.5 and read_args(out["run_dir"])["seed"] == 1  # --seed's default
    assert len(out["episodic_returns"]) == 3
    assert torch.load(os.path.join(out["run_dir"], "model.pt"), weights_only=True)["script"] == "dpo_toy.py"


@pytest.mark.parametrize("loss_type,average,extra", [("ipo", True, []), ("kto", False, ["rewards/kl"]),
                                                     ("orpo", False, ["rewards/log_odds_ratio"])])
def test_tiny_runs_of_the_other_losses_log_finite_metrics_and_separate_chosen_from_rejected(loss_type, average, extra):
    out = d.main(replace(TINY, loss_type=loss_type, average_logprobs=average))
    metrics = read_metrics(out["run_dir"])
    assert_finite_scalars(metrics, STEP_SCALARS + EVAL_SCALARS + extra)
    assert metrics["rewards/margins"][-1][1] > metrics["rewards/margins"][0][1]
    assert (abs(metrics["rewards/margins"][0][1]) < 1e-6) == (loss_type != "orpo")  # orpo's rewards need no reference
    if loss_type == "kto":
        assert all(z0 >= 0 for _, z0 in metrics["rewards/kl"])
    if loss_type == "orpo":
        assert metrics["rewards/log_odds_ratio"][-1][1] > metrics["rewards/log_odds_ratio"][0][1]
    assert read_args(out["run_dir"])["loss_type"] == loss_type


def test_orpo_builds_no_reference_model_and_samples_its_pairs_from_the_policy_as_the_reference_would(monkeypatch):
    copied, sampled, scored = [], [], []  # deep copies made, (model, completions) sampled, models scored

    def generate(model, prompts, *a, **k):
        sampled.append((model, d_generate(model, prompts, *a, **k)))
        return sampled[-1][1]

    d_generate, d_logprobs = d.generate, d.sequence_logprobs
    monkeypatch.setattr(d, "copy", SimpleNamespace(deepcopy=lambda obj: copied.append(copy.deepcopy(obj)) or copied[-1]))
    monkeypatch.setattr(d, "generate", generate)
    monkeypatch.setattr(d, "sequence_logprobs", lambda model, *a: scored.append(model) or d_logprobs(model, *a))
    pairs = {}
    for loss_type in ("sigmoid", "orpo"):
        copied.clear(), sampled.clear(), scored.clear()
        policy = d.main(replace(TINY, loss_type=loss_type, num_epochs=1))["model"]
        [(model, pairs[loss_type])] = [(m, c) for m, c in sampled  # the pairs' samples, not the evaluation's
                                       if len(c) == TINY.num_train_prompts * TINY.samples_per_prompt]
        if loss_type == "orpo":
            assert copied == [] and model is policy and all(m is policy for m in scored)
        else:
            assert [type(m) for m in copied] == [d.CausalTransformer] and model is copied[0] is not policy
            assert sum(m is model for m in scored) == 2  # the reference scores chosen and rejected once
    assert torch.equal(pairs["sigmoid"], pairs["orpo"])  # the same weights and draws: the same samples


def test_the_rpo_term_on_averaged_log_probabilities_is_their_mean():
    """At the first step policy == reference: sigmoid's loss is log 2, the NLL term minus the logged mean averaged
    log-probability of the chosen completions (divided once, not twice, by their lengths)."""
    metrics = read_metrics(d.main(replace(TINY, average_logprobs=True, sft_weight=0.5))["run_dir"])
    assert metrics["losses/loss"][0][1] == pytest.approx(math.log(2) - 0.5 * metrics["logps/chosen"][0][1], rel=1e-5)


@pytest.mark.parametrize("change,fragment", [
    (dict(desirable_weight=math.nan), "--desirable-weight and --undesirable-weight must be finite and > 0"),
    (dict(undesirable_weight=0.0), "(got 1.0, 0.0, 0.1)"), (dict(desirable_weight=math.inf), "(got inf, 1.0, 0.1)"),
    (dict(orpo_lambda=-0.1), "--orpo-lambda finite and >= 0"), (dict(orpo_lambda=math.nan), "(got 1.0, 1.0, nan)"),
    (dict(loss_type="kto", batch_size=1), "--batch-size must be >= 2"),
    (dict(loss_type="orpo", sft_weight=1.0), "leave --sft-weight out")])
def test_bad_kto_and_orpo_arguments_are_refused_in_one_sentence(change, fragment):
    with pytest.raises(d.UsageError, match=re.escape(fragment)):
        d.check_args(replace(TINY, **change))
    d.check_args(replace(TINY, orpo_lambda=0.0, loss_type="kto", batch_size=2))  # the edges are allowed


def test_seeded_runs_are_reproducible():
    args = replace(TINY, loss_type="ipo", sft_weight=0.5)
    a, b = read_metrics(d.main(args)["run_dir"]), read_metrics(d.main(args)["run_dir"])
    for name in STEP_SCALARS + EVAL_SCALARS:
        assert a[name] == b[name]


def test_a_model_loaded_alone_is_evaluated_as_its_run_did():
    """Sizes, temperature and evaluation flags come from the checkpoint, and the evaluation draws its own samples."""
    out = d.main(replace(TINY, num_epochs=1, n_head=2, temperature=0.9, eval_samples=4, seed=2, save_model=True))
    assert 0 < out["after"]["eval/sampled_accuracy"] < 1  # sampling that used other draws would (likely) score otherwise
    loaded = d.main(d.Args(load_model=os.path.join(out["run_dir"], "model.pt"), cuda=False))
    assert loaded["after"] == out["after"]
    for a, b in zip(out["model"].state_dict().values(), loaded["model"].state_dict().values()):
        assert torch.equal(a, b)
    resolved = read_args(loaded["run_dir"])
    assert {k: resolved[k] for k in ("task", "seed", "n_head", "temperature", "eval_prompts", "eval_samples")} == dict(
        task="sum", seed=2, n_head=2, temperature=0.9, eval_prompts=16, eval_samples=4)


def test_a_non_finite_loss_stops_before_the_update_and_keeps_a_finite_model(monkeypatch):
    real = d.dpo_loss
    monkeypatch.setattr(d, "dpo_loss", lambda *a, **k: (real(*a, **k)[0] * math.nan, *real(*a, **k)[1:]))
    with pytest.raises(FloatingPointError, match="the loss is not finite at step 1: training stopped"):
        d.main(replace(TINY, save_model=True))
    [run_dir] = glob.glob("runs/*")
    assert "losses/loss" not in read_metrics(run_dir)
    state = torch.load(os.path.join(run_dir, "model.pt"), weights_only=True)  # the reference model: no NaN update applied
    assert all(torch.isfinite(w).all() for w in state["model"].values())


@pytest.mark.slow
def test_default_run_improves_true_accuracy_without_collapse():
    out = d.main(d.Args(cuda=False))
    assert out["before"]["eval/sampled_accuracy"] < 0.45
    assert out["after"]["eval/sampled_accuracy"] >= 0.7
    assert out["after"]["eval/greedy_accuracy"] >= out["before"]["eval/greedy_accuracy"] - 0.03
