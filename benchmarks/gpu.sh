#!/usr/bin/env bash
# Ten minutes on a machine with one NVIDIA GPU and 16 CPU cores, in three parts:
#   1. the CUDA tests (the suite's tests marked `cuda`; they skip on a machine without a GPU);
#   2. benchmarks/speed.py on the GPU: this repository's scripts and Stable-Baselines3 at identical settings, both
#      on CUDA (skipped, with the pip command, when stable-baselines3 is not installed);
#   3. as many frames of the Pong run of the `atari` suite (its settings: the paper's 16 games x 5 steps, 10M frames)
#      as fit in what is left of the ten minutes: a2c_atari.py with its network on the GPU and the 16 games stepped
#      by ale-py's C++ vector env in 16 threads, one per core; stopped by SIGTERM it writes checkpoint.pt, and the
#      same command run again continues it (--resume).
#
#   bash benchmarks/gpu.sh                 # writes benchmarks/runs/gpu/ (logs, speed.md, the Pong run directory)
#   BUDGET=300 bash benchmarks/gpu.sh      # a shorter total, in seconds
set -u
cd "$(dirname "$0")/.."
python -c "import torch; print(torch.cuda.get_device_name())" 2>/dev/null \
    || { echo "gpu.sh: no CUDA GPU here; nothing run"; exit 2; }
out=benchmarks/runs/gpu
mkdir -p "$out"
budget=${BUDGET:-600}
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

echo "== 1. CUDA tests"
timeout 180 python -m pytest -q -m cuda -p no:cacheprovider 2>&1 | tee "$out/cuda_tests.txt" | tail -5

echo "== 2. speed.py on the GPU ($(left) s left)"
if python -c "import stable_baselines3" 2>/dev/null; then
    timeout $(( $(left) / 2 )) python benchmarks/speed.py --device cuda --reps 2 --out "$out/speed.md" \
        2>&1 | tail -12
else
    echo "stable-baselines3 is not installed: pip install stable-baselines3==2.9.2 (see benchmarks/speed.py); skipped"
fi

echo "== 3. Pong on the GPU until the ten minutes are up ($(left) s left)"
runs=$out/atari
stopped=$(ls -d "$runs"/PongNoFrameskip-v4__gpu_a2c_atari__1__*/ 2>/dev/null | tail -1)
if [ -n "$stopped" ] && [ -f "$stopped/checkpoint.pt" ]; then
    cmd=(python a2c_atari.py --resume "${stopped%/}")
else
    cmd=(python a2c_atari.py --env-id PongNoFrameskip-v4 --total-timesteps 2500000 --cuda --exp-name gpu_a2c_atari
         --runs-dir "$runs" --checkpoint-interval 60)
fi
if [ "$(left)" -gt 90 ]; then
    timeout -s TERM -k 60 $(( $(left) - 30 )) "${cmd[@]}" > "$out/pong.log" 2>&1
    grep -v "^step" "$out/pong.log"; grep "^step" "$out/pong.log" | tail -1
else
    echo "fewer than 90 s left: no Pong this time"
fi
echo "gpu.sh: done in $(( $(date +%s) - start )) s; results in $out"
