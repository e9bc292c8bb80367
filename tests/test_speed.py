"""benchmarks/speed.py without Stable-Baselines3: the summary statistics against hand computations, our runs at
SETTINGS taking the intended number of optimizer steps, and the SB3 arguments agreeing with our Args and networks."""
import dataclasses
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import speed  # noqa: E402


def test_summary_takes_medians_and_the_median_of_per_rep_ratios():
    # per rep: ours wall SPS, ours CPU SPS, SB3 wall SPS, SB3 CPU SPS
    reps = [(100, 50, 100, 100), (200, 80, 50, 40), (300, 90, 400, 90)]
    s = speed.summarize(reps)
    assert (s["ours_sps"], s["sb3_sps"]) == (200, 100)
    # wall ratios 1, 4, 0.75: the median is 1, where the ratio of the medians would be 2
    assert (s["ratio"], s["ratio_min"], s["ratio_max"]) == pytest.approx((1.0, 0.75, 4.0))
    # CPU ratios 0.5, 2, 1: the median is 1, where the ratio of the medians would be 80 / 90
    assert (s["ours_cpu_sps"], s["sb3_cpu_sps"]) == (80, 90)
    assert (s["cpu_ratio"], s["cpu_ratio_min"], s["cpu_ratio_max"]) == pytest.approx((1.0, 0.5, 2.0))
    table = speed.markdown_table({"td3": s}, {"td3": 1200})
    assert "| `td3.py` / TD3 | Pendulum-v1 | 1,200 | 200.0 | 100.0 | 1.00 (0.75-4.00) | 80.0 | 90.0 | 1.00 (0.50-2.00) |" in table


def test_report_names_the_machine_threads_and_versions(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchmarks/speed.py", "--reps", "3", "--threads", "2"])
    opts = speed.argparse.Namespace(reps=3, threads=2, learning_starts=200)
    s = speed.summarize([(100, 50, 100, 100)])
    text = speed.report(opts, {"sac": s}, {"sac": 1200}, 1.5, "9.9.9")
    cpu_models = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    assert cpu_models and cpu_models[0] in text
    assert "benchmarks/speed.py --reps 3 --threads 2`" in text and "(--threads 2)" in text
    assert f"- machine: {len(speed.os.sched_getaffinity(0))} CPUs (nproc)" in text
    assert "stable-baselines3 9.9.9" in text and "3 repetitions" in text and "| `sac.py` / SAC | Pendulum-v1 | 1,200 |" in text


def test_threads_are_parsed_before_the_rest():
    assert speed.THREADS_PARSER.parse_known_args(["--algos", "sac", "--threads", "3", "--reps", "2"])[0].threads == 3
    assert speed.THREADS_PARSER.parse_known_args(["--threads=4"])[0].threads == 4
    assert speed.THREADS_PARSER.parse_known_args(["--algos", "ppo"])[0].threads == 1


def test_step_counts_must_allow_equal_work():
    with pytest.raises(SystemExit, match="multiple of the rollout, 512 steps"):
        speed.check_steps("ppo", 1000, 200)
    with pytest.raises(SystemExit, match="learning-starts 200 must be between 1 and the steps"):
        speed.check_steps("sac", 200, 200)
    for algo in speed.ALGOS:  # the defaults pass
        speed.check_steps(algo, speed.DEFAULT_STEPS[algo], speed.LEARNING_STARTS)


# The benchmark measures the scripts as shipped; only these settings are its own choices.
NOT_DEFAULTS = {"ppo": set(), "a2c": set(), "ppo_continuous": {"env_id"}, "sac": {"env_id", "q_lr", "policy_frequency"},
                "td3": {"env_id"}}


# Args fields that say how to run, not what to compute; every other field must be in SETTINGS, so that a new
# hyperparameter of a script cannot go unnoticed by the SB3 side.
RUN_FIELDS = {"exp_name", "seed", "torch_deterministic", "cuda", "track", "wandb_project_name", "wandb_entity", "resume",
              "capture_video", "save_model", "eval_episodes", "load_model", "runs_dir", "torch_threads", "log_interval",
              "total_timesteps", "buffer_size", "learning_starts", "checkpoint_interval"}


@pytest.mark.parametrize("algo", speed.ALGOS)
def test_settings_cover_every_hyperparameter_and_are_the_scripts_defaults_except_the_benchmarks_choices(algo):
    defaults = speed.MODULES[algo].Args()
    speed.MODULES[algo].check_args(defaults)  # fills in what Args leaves None (env_id), as a run does
    assert {f.name for f in dataclasses.fields(defaults)} - RUN_FIELDS == set(speed.SETTINGS[algo])
    assert {k for k, v in speed.SETTINGS[algo].items() if getattr(defaults, k) != v} == NOT_DEFAULTS[algo]


def mlp_shape(seq: nn.Sequential) -> tuple[list[int], set]:
    """(hidden widths, activation types) of a Linear-act-...-Linear stack."""
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    return [m.out_features for m in linears[:-1]], {type(m) for m in seq if not isinstance(m, nn.Linear)}


def annealed_lr_checks(args, lr_schedule, steps: int) -> None:
    """Our update k of K uses lr * (1 - (k - 1) / K); SB3 calls the schedule with 1 - k / K before update k."""
    k_total = steps // (args.num_envs * args.num_steps)
    ours = [args.learning_rate * (1 - (k - 1) / k_total) for k in range(1, k_total + 1)]
    assert [lr_schedule(1 - k / k_total) for k in range(1, k_total + 1)] == pytest.approx(ours)
    assert lr_schedule(1.0) == args.learning_rate  # SB3 builds the optimizer with the schedule's value at 1


@pytest.mark.parametrize("algo", speed.ON_POLICY)
def test_on_policy_sb3_arguments_agree_with_our_args_and_networks(algo):
    steps = speed.DEFAULT_STEPS[algo]
    args = speed.ours_args(algo, steps, speed.LEARNING_STARTS, 1, "unused")
    cfg = speed.sb3_config(algo, steps, speed.LEARNING_STARTS)
    kw = cfg.kwargs
    assert (cfg.env_id, cfg.n_envs, kw["n_steps"]) == (args.env_id, args.num_envs, args.num_steps)
    assert (args.total_timesteps, args.eval_episodes, args.cuda) == (steps, 0, False)
    assert (kw["gamma"], kw["gae_lambda"], kw["ent_coef"], kw["vf_coef"], kw["max_grad_norm"]) == \
        (args.gamma, args.gae_lambda, args.ent_coef, args.vf_coef, args.max_grad_norm)
    assert kw["normalize_advantage"] == args.norm_adv
    assert getattr(args, "bootstrap_truncation", True)  # SB3 bootstraps truncated episodes with V(final observation)
    if args.anneal_lr:
        annealed_lr_checks(args, kw["learning_rate"], steps)
    else:
        assert kw["learning_rate"] == args.learning_rate

    pk = kw["policy_kwargs"]
    if algo == "a2c":
        assert "batch_size" not in kw  # SB3's A2C: one gradient step on the whole rollout, as ours
        assert pk["optimizer_class"] is speed.torch.optim.RMSprop and args.optimizer == "rmsprop"
        assert (pk["optimizer_kwargs"]["alpha"], pk["optimizer_kwargs"]["eps"]) == (args.rmsprop_alpha, args.optimizer_eps)
    else:
        assert kw["batch_size"] * args.num_minibatches == args.num_envs * args.num_steps
        assert kw["n_epochs"] == args.update_epochs
        assert (kw["clip_range"], kw["clip_range_vf"], kw["target_kl"]) == \
            (args.clip_coef, args.clip_coef if args.clip_vloss else None, args.target_kl)
        assert pk["optimizer_class"] is speed.torch.optim.Adam and pk["optimizer_kwargs"] == {"eps": 1e-5}

    env = gym.make(args.env_id)
    obs_dim, space = env.observation_space.shape[0], env.action_space
    if algo == "ppo":
        agent = speed.ppo.Agent(obs_dim, space.n)
        actor, critic = agent.actor, agent.critic
    elif algo == "a2c":
        agent = speed.a2c.Agent(obs_dim, space.n, continuous=False)
        actor, critic = agent.actor, agent.critic
    else:
        agent = speed.ppo_continuous.Agent(obs_dim, space.shape[0])
        actor, critic = agent.actor_mean, agent.critic
        assert (agent.actor_logstd == pk["log_std_init"]).all()
        vn = cfg.vec_normalize
        assert (vn["norm_obs"], vn["norm_reward"], vn["gamma"]) == (True, True, args.gamma)  # ours always normalizes both
        clipped = speed.ppo_continuous.normalize_obs(speed.ppo_continuous.RunningMeanStd(shape=(1,)), np.array([[1e9], [-1e9]]))
        assert clipped[:, 0].tolist() == [vn["clip_obs"], -vn["clip_obs"]]
    assert mlp_shape(actor) == (pk["net_arch"]["pi"], {pk["activation_fn"]})
    assert mlp_shape(critic) == (pk["net_arch"]["vf"], {pk["activation_fn"]})
    # orthogonal init with SB3's gains: sqrt(2) hidden, 0.01 policy head, 1 value head (singular values = gain)
    assert pk["ortho_init"]
    for seq, head_gain in ((actor, 0.01), (critic, 1.0)):
        linears = [m for m in seq if isinstance(m, nn.Linear)]
        for layer, gain in zip(linears, [math.sqrt(2)] * (len(linears) - 1) + [head_gain]):
            assert speed.torch.linalg.svdvals(layer.weight.detach()).max().item() == pytest.approx(gain, rel=1e-4)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_off_policy_sb3_arguments_agree_with_our_args_and_networks(algo):
    steps, starts = speed.DEFAULT_STEPS[algo], speed.LEARNING_STARTS
    args = speed.ours_args(algo, steps, starts, 1, "unused")
    cfg = speed.sb3_config(algo, steps, starts)
    kw = cfg.kwargs
    assert (cfg.env_id, cfg.n_envs) == (args.env_id, args.num_envs)
    assert (kw["batch_size"], kw["buffer_size"], kw["learning_starts"]) == \
        (args.batch_size, args.buffer_size, args.learning_starts)
    assert (args.buffer_size, args.learning_starts, args.total_timesteps, args.eval_episodes) == (steps, starts, steps, 0)
    assert (kw["gamma"], kw["tau"], kw["train_freq"], kw["gradient_steps"]) == (args.gamma, args.tau, 1, args.num_envs)
    if algo == "sac":
        assert kw["learning_rate"] == args.policy_lr == args.q_lr  # SB3: one rate for actor, critics and alpha
        assert args.policy_frequency == 1 and kw["target_update_interval"] == args.target_network_frequency
        assert args.autotune and kw["ent_coef"] == f"auto_{args.alpha}" and kw["target_entropy"] == "auto"
    else:
        assert kw["learning_rate"] == args.learning_rate
        assert (kw["policy_delay"], kw["target_policy_noise"], kw["target_noise_clip"], cfg.action_noise_std) == \
            (args.policy_frequency, args.policy_noise, args.noise_clip, args.exploration_noise)

    env = gym.make(args.env_id)
    space = env.action_space
    actor = speed.MODULES[algo].Actor(env.observation_space.shape[0], space.shape[0], args.hidden_size, space.low, space.high)
    qf = speed.MODULES[algo].QNetwork(env.observation_space.shape[0], space.shape[0], args.hidden_size)
    widths, acts = mlp_shape(actor.net)
    assert widths == kw["policy_kwargs"]["net_arch"] and kw["policy_kwargs"]["activation_fn"] in acts
    assert mlp_shape(qf.net) == (kw["policy_kwargs"]["net_arch"], {kw["policy_kwargs"]["activation_fn"]})


# Tiny runs: our side at SETTINGS, counting optimizer steps (the number of gradient steps per rollout that the
# module docstring states, and that --check-updates compares with SB3's).
TINY = {"ppo": 512, "a2c": 80, "ppo_continuous": 2048, "sac": speed.LEARNING_STARTS + 40, "td3": speed.LEARNING_STARTS + 40}


@pytest.mark.parametrize("algo", speed.ALGOS)
def test_our_runs_take_the_stated_optimizer_steps_and_time_positive(algo):
    steps, starts = TINY[algo], speed.LEARNING_STARTS
    counted = []
    wall, cpu = speed.timed(lambda: counted.append(speed.count_optimizer_steps(speed.ours_train, algo, steps, starts, 1)))
    returns, counts = counted[0]
    s = speed.SETTINGS[algo]
    if algo in speed.ON_POLICY:
        per_rollout = 1 if algo == "a2c" else s["update_epochs"] * s["num_minibatches"]
        assert [k for _, _, k in counts] == [steps // speed.rollout_size(algo) * per_rollout]
    else:
        updates = steps - starts
        actor_steps = [updates // s["policy_frequency"]] * (2 if algo == "sac" else 1)  # sac: the actor's and alpha's
        assert sorted(k for _, _, k in counts) == sorted([updates, *actor_steps])
    assert all(math.isfinite(r) for r in returns)
    assert 0 < wall < 60 and 0 < cpu < 60 and math.isfinite(wall) and math.isfinite(cpu)
