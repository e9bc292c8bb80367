"""Bad input and faults, tried on every script as a user would type them, and what each script did.

    python benchmarks/bad_inputs.py                   # every case, each a fresh `python SCRIPT ...` process
    python benchmarks/bad_inputs.py --scripts ppo.py  # one script's cases

A case is a command line plus a fragment its refusal must contain (usually the flag's name). Each runs in a fresh
working folder with a tiny budget, so an input that is wrongly accepted trains briefly and exits 0 instead of hanging.
The outcome is one of:

    refused      exit status 2, one line on stderr `SCRIPT: error: ...` naming the fragment, no run directory
    traceback    a Python traceback on stderr (an internal error reached the user)
    accepted     exit status 0: the nonsense was trained on
    left files   refused, but a run directory was left behind
    other        anything else (the line is printed)

tests/test_family.py runs the same CASES in-process (fast) and a few as processes (the one-line format).
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["ppo.py", "a2c.py", "ppo_continuous.py", "sac.py", "td3.py", "a2c_atari.py", "grpo_toy.py", "dpo_toy.py"]

# The budget each script gets, so that an accepted case ends in seconds.
TINY = {
    "ppo.py": "--total-timesteps 512 --num-envs 2 --num-steps 64 --eval-episodes 1",
    "a2c.py": "--total-timesteps 400 --eval-episodes 1",
    "ppo_continuous.py": "--env-id Pendulum-v1 --total-timesteps 512 --num-steps 256 --num-minibatches 4 "
                         "--update-epochs 1 --eval-episodes 1",
    "sac.py": "--env-id Pendulum-v1 --total-timesteps 300 --learning-starts 100 --batch-size 32 --buffer-size 1000 "
              "--hidden-size 32 --eval-episodes 1",
    "td3.py": "--env-id Pendulum-v1 --total-timesteps 300 --learning-starts 100 --batch-size 32 --buffer-size 1000 "
              "--hidden-size 32 --eval-episodes 1",
    "a2c_atari.py": "--env-id BreakoutNoFrameskip-v4 --num-envs 2 --total-timesteps 600 --log-interval 5 --eval-episodes 1",
    "grpo_toy.py": "--warmup-steps 2 --total-steps 3 --num-prompts 2 --num-generations 2 --eval-frequency 1 "
                   "--eval-prompts 4 --eval-samples 1 --d-model 16 --n-layer 1 --n-head 2",
    "dpo_toy.py": "--task sum --warmup-steps 20 --warmup-learning-rate 0.01 --num-train-prompts 48 --samples-per-prompt 8 "
                  "--num-epochs 1 --batch-size 2 --eval-prompts 4 --eval-samples 1 --d-model 16 --n-layer 1 --n-head 2",
}

# Files a case may name: {empty}, {text}, {truncated}, {foreign}, {notadict}, {file} (a plain file as --runs-dir),
# {older} (a run directory whose checkpoint.pt predates the resume format);
# {lr}: the script's learning-rate flag.
EVERY_SCRIPT = [
    ("--seed -1", "--seed"),
    ("--seed 4294967296", "--seed"),
    ("--torch-threads -1", "--torch-threads"),
    ("{lr} nan", "{lr}"),
    ("{lr} inf", "{lr}"),
    ("{lr} 0", "{lr}"),
    ("--runs-dir {file}", "--runs-dir"),
    ("--load-model missing/model.pt", "--load-model missing/model.pt"),
    ("--load-model {empty}", "cannot be read"),
    ("--load-model {text}", "cannot be read"),
    ("--load-model {truncated}", "cannot be read"),
    ("--load-model {notadict}", "not saved by"),
    ("--load-model {foreign}", "not saved by"),
]
RL = ["ppo.py", "a2c.py", "ppo_continuous.py", "sac.py", "td3.py", "a2c_atari.py"]
SPECIFIC = [
    *[(s, "--env-id NoSuchEnv-v0", "NoSuchEnv-v0") for s in RL],
    *[(s, "--gamma 1.5", "--gamma") for s in RL],
    *[(s, "--gamma nan", "--gamma") for s in RL],
    *[(s, "--eval-episodes -1", "--eval-episodes") for s in RL],
    *[(s, "--total-timesteps 0", "--total-timesteps") for s in RL],
    *[(s, "--num-envs 0", "--num-envs") for s in RL],
    *[(s, "--checkpoint-interval 0", "--checkpoint-interval") for s in RL],
    *[(s, "--checkpoint-interval nan", "--checkpoint-interval") for s in RL],
    *[(s, "--resume missing/run", "--resume missing/run/checkpoint.pt cannot be read") for s in RL],
    *[(s, "--resume {older}", "or by an older one") for s in RL],
    *[(s, "--max-grad-norm -1", "--max-grad-norm") for s in ["ppo.py", "a2c.py", "ppo_continuous.py", "a2c_atari.py",
                                                              "grpo_toy.py", "dpo_toy.py"]],
    *[(s, "--max-grad-norm nan", "--max-grad-norm") for s in ["ppo.py", "a2c.py", "grpo_toy.py"]],
    *[(s, "--gae-lambda 2", "--gae-lambda") for s in ["ppo.py", "a2c.py", "ppo_continuous.py", "a2c_atari.py"]],
    *[(s, "--ent-coef nan", "--ent-coef") for s in ["ppo.py", "a2c.py", "ppo_continuous.py", "a2c_atari.py"]],
    *[(s, "--vf-coef inf", "--vf-coef") for s in ["ppo.py", "a2c.py", "ppo_continuous.py", "a2c_atari.py"]],
    *[(s, "--clip-coef 0", "--clip-coef") for s in ["ppo.py", "ppo_continuous.py"]],
    *[(s, "--clip-coef -0.2", "--clip-coef") for s in ["ppo.py", "ppo_continuous.py"]],
    *[(s, "--update-epochs 0", "--update-epochs") for s in ["ppo.py", "ppo_continuous.py"]],
    *[(s, "--num-minibatches 3", "--num-minibatches") for s in ["ppo.py", "ppo_continuous.py"]],
    *[(s, "--target-kl -0.01", "--target-kl") for s in ["ppo.py", "ppo_continuous.py"]],
    *[(s, "--target-kl nan", "--target-kl") for s in ["ppo.py", "ppo_continuous.py"]],
    ("ppo.py", "--env-id Pendulum-v1", "discrete actions"),
    ("ppo.py", "--env-id ALE/Pong-v5", "ALE/Pong-v5"),
    ("ppo.py", "--env-id Blackjack-v1", "Box or Discrete observations"),
    ("a2c.py", "--rmsprop-alpha 1.5", "--rmsprop-alpha"),
    ("a2c.py", "--optimizer-eps nan", "--optimizer-eps"),
    ("a2c_atari.py", "--rmsprop-alpha 1.5", "--rmsprop-alpha"),
    ("a2c_atari.py", "--env-id CartPole-v1", "CartPole-v1"),
    ("a2c_atari.py", "--seed 2147483647", "--seed"),
    ("a2c_atari.py", "--rmsprop-alpha 1", "--rmsprop-alpha"),
    ("a2c_atari.py", "--optimizer-eps nan", "--optimizer-eps"),
    ("a2c_atari.py", "--log-interval 0", "--log-interval"),
    ("a2c_atari.py", "--capture-video", "--capture-video"),
    ("ppo_continuous.py", "--env-id CartPole-v1", "CartPole-v1"),
    *[(s, "--env-id CartPole-v1", "CartPole-v1") for s in ["sac.py", "td3.py"]],
    *[(s, "--batch-size 512 --buffer-size 100", "--batch-size") for s in ["sac.py", "td3.py"]],
    *[(s, "--tau 0", "--tau") for s in ["sac.py", "td3.py"]],
    *[(s, "--tau 1.5", "--tau") for s in ["sac.py", "td3.py"]],
    *[(s, "--policy-frequency 0", "--policy-frequency") for s in ["sac.py", "td3.py"]],
    *[(s, "--learning-starts 10", "--learning-starts") for s in ["sac.py", "td3.py"]],
    *[(s, "--hidden-size 0", "--hidden-size") for s in ["sac.py", "td3.py"]],
    *[(s, "--tau nan", "--tau") for s in ["sac.py", "td3.py"]],
    ("sac.py", "--target-network-frequency 0", "--target-network-frequency"),
    ("sac.py", "--policy-lr nan", "--policy-lr"),
    ("sac.py", "--alpha inf", "--alpha"),
    ("td3.py", "--exploration-noise inf", "--exploration-noise"),
    ("td3.py", "--policy-noise nan", "--policy-noise"),
    ("a2c.py", "--log-interval 0", "--log-interval"),
    ("sac.py", "--alpha 0", "--alpha"),
    ("sac.py", "--alpha nan", "--alpha"),
    ("sac.py", "--q-lr inf", "--q-lr"),
    ("td3.py", "--exploration-noise nan", "--exploration-noise"),
    ("td3.py", "--policy-noise -1", "--policy-noise"),
    ("td3.py", "--noise-clip inf", "--noise-clip"),
    *[(s, "--temperature inf", "--temperature") for s in ["grpo_toy.py", "dpo_toy.py"]],
    *[(s, "--temperature 0", "--temperature") for s in ["grpo_toy.py", "dpo_toy.py"]],
    *[(s, "--beta nan", "--beta") for s in ["grpo_toy.py", "dpo_toy.py"]],
    *[(s, "--warmup-learning-rate inf", "--warmup-learning-rate") for s in ["grpo_toy.py", "dpo_toy.py"]],
    *[(s, "--n-head 3", "--n-head") for s in ["grpo_toy.py", "dpo_toy.py"]],
    ("grpo_toy.py", "--num-generations 1", "--num-generations"),
    ("grpo_toy.py", "--epsilon -0.1", "--epsilon"),
    ("grpo_toy.py", "--epsilon inf", "--epsilon"),
    ("grpo_toy.py", "--total-steps 0", "--total-steps"),
    ("dpo_toy.py", "--beta 0", "--beta"),
    ("dpo_toy.py", "--warmup-correct-frac 1.5", "--warmup-correct-frac"),
    ("dpo_toy.py", "--num-epochs 0", "--num-epochs"),
    ("dpo_toy.py", "--sft-weight -1", "--sft-weight"),
    ("grpo_toy.py", "--advantage critic --gamma 1.5", "--gamma"),
    ("grpo_toy.py", "--gae-lambda nan", "--gae-lambda"),
    ("grpo_toy.py", "--vf-coef inf", "--vf-coef"),
    ("grpo_toy.py", "--cliprange-value -0.2", "--cliprange-value"),
    ("grpo_toy.py", "--advantage critic --scale-rewards none", "--scale-rewards"),
    ("grpo_toy.py", "--advantage critic --use-bias-correction-kl", "--use-bias-correction-kl"),
    ("dpo_toy.py", "--loss-type kto --desirable-weight 0", "--desirable-weight"),
    ("dpo_toy.py", "--undesirable-weight nan", "--undesirable-weight"),
    ("dpo_toy.py", "--loss-type orpo --orpo-lambda inf", "--orpo-lambda"),
    ("dpo_toy.py", "--loss-type orpo --sft-weight 1", "--sft-weight"),
    ("dpo_toy.py", "--loss-type kto --batch-size 1", "--batch-size"),
]
LEARNING_RATE = {"sac.py": "--q-lr"}  # the others' is --learning-rate
CASES = [(s, flags.replace("{lr}", LEARNING_RATE.get(s, "--learning-rate")),
          fragment.replace("{lr}", LEARNING_RATE.get(s, "--learning-rate"))) for s in SCRIPTS for flags, fragment in EVERY_SCRIPT]
CASES += SPECIFIC


def make_files(folder: Path, script: str) -> dict:
    """The files the cases name, in `folder`: empty, text, a truncated checkpoint, a foreign one, a tensor, an old run."""
    files = {"empty": folder / "empty.pt", "text": folder / "notes.pt", "truncated": folder / "truncated.pt",
             "foreign": folder / "foreign.pt", "notadict": folder / "tensor.pt", "file": folder / "a_file"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("these are my notes, not a model\n")
    files["file"].write_text("")
    other = "sac.py" if script != "sac.py" else "ppo.py"
    torch.save({"script": other, "env_id": "Pendulum-v1", "args": {"env_id": "Pendulum-v1", "seed": 1},
                "model": {"w": torch.zeros(3)}}, files["foreign"])
    torch.save({"script": script, "model": {"w": torch.randn(20_000)}}, files["truncated"])
    data = files["truncated"].read_bytes()
    files["truncated"].write_bytes(data[:len(data) // 2])
    torch.save(torch.zeros(3), files["notadict"])
    files["older"] = folder / "older_run"  # everything but the size of metrics.csv at the checkpoint
    files["older"].mkdir()
    torch.save({"script": script, "env_id": "Pendulum-v1", "args": {"env_id": "Pendulum-v1", "seed": 1}, "model": {},
                "global_step": 8, "elapsed": 1.0}, files["older"] / "checkpoint.pt")
    return files


def command_line(script: str, flags: str, files: dict) -> list[str]:
    return [*TINY[script].split(), *flags.format(**files).split(), "--no-cuda"]


def classify(script: str, returncode: int, stderr: str, fragment: str, left_run_dir: bool) -> str:
    lines = stderr.strip().splitlines()
    if "Traceback" in stderr:
        return "traceback"
    if returncode == 0:
        return "accepted"
    if returncode == 2 and len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and fragment in lines[0]:
        return "left files" if left_run_dir else "refused"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scripts", nargs="+", default=SCRIPTS)
    opts = parser.parse_args()
    counts = collections.Counter()
    print("| script | input | outcome | what the user saw (stderr, first line) |\n|---|---|---|---|")
    for script, flags, fragment in CASES:
        if script not in opts.scripts:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            files = make_files(Path(tmp), script)
            done = subprocess.run([sys.executable, str(ROOT / script), *command_line(script, flags, files)], cwd=tmp,
                                  capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
            outcome = classify(script, done.returncode, done.stderr, fragment, (Path(tmp) / "runs").exists())
        counts[outcome] += 1
        first = (done.stderr.strip().splitlines() or [""])[0 if outcome != "traceback" else -1][:150]
        shown = flags.replace("{", "<").replace("}", ">")
        print(f"| {script} | `{shown}` | {outcome} | {first.replace('|', '/')} |", flush=True)
    print("\n" + ", ".join(f"{k}: {counts[k]}" for k in ["refused", "traceback", "accepted", "left files", "other"])
          + f" (of {sum(counts.values())})")


if __name__ == "__main__":
    main()
