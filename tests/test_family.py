"""What every script promises on the command line, checked once for all eight: a user error (an argument out of
range, a checkpoint that is not there) is one line on stderr, `X.py: error: ...`, and exit status 2, as tyro's own
parse errors are; no traceback, and no run directory left behind."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["ppo.py", "a2c.py", "ppo_continuous.py", "sac.py", "td3.py", "a2c_atari.py", "grpo_toy.py", "dpo_toy.py"]


@pytest.mark.parametrize("flags,message", [(["--seed", "-1"], "--seed must be in [0, 2**32)"),
                                           (["--load-model", "missing/model.pt"], "--load-model missing/model.pt does not exist")])
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_user_error_is_one_line_and_exit_status_2(script, flags, message, tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / script), *flags, "--no-cuda"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and message in lines[0], lines
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "runs").exists()
