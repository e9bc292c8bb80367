"""dpo_toy.py: the preference losses against closed forms and a tabular optimum, and short in-process runs."""
import glob
import math
import os
from dataclasses import replace

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


# ---------------------------------------------------------------- sequence log-probabilities and pairs
def test_sequence_logprobs_sum_token_logprobs_up_to_the_first_end_token():
    torch.manual_seed(0)
    model = d.CausalTransformer(len(d.VOCAB), 11, 32, 2, 4)
    prompts = d.make_prompts("sort", 3, torch.Generator().manual_seed(0))
    completions = torch.tensor([[1, 2, d.END, 7, 7], [1, 2, 3, 4, d.END], [1, 2, 3, 4, 5]])
    got = d.sequence_logprobs(model, prompts, completions)
    for row in range(3):  # reference: one forward pass per prefix, stop after the end token
        total = 0.0
        for t in range(5):
            prefix = torch.cat([prompts[row], completions[row, :t]])[None]
            total += torch.log_softmax(model(prefix)[0, -1], -1)[completions[row, t]].item()
            if completions[row, t] == d.END:
                break
        assert got[row].item() == pytest.approx(total, abs=1e-4)


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
    assert metrics["rewards/margins"][0][1] == 0.0  # the first step sees policy == reference
    assert metrics["rewards/margins"][-1][1] > 0.0  # training separates chosen from rejected
    assert read_args(out["run_dir"])["beta"] == 0.5 and read_args(out["run_dir"])["seed"] == 1  # --seed's default
    assert len(out["episodic_returns"]) == 3
    assert torch.load(os.path.join(out["run_dir"], "model.pt"), weights_only=True)["script"] == "dpo_toy.py"


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
