"""Two CPU processes on localhost (gloo collectives) train one model."""

import os
import re
import socket
import subprocess
import sys

from testutil.harness import ROOT


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _args(workdir):
  return [sys.executable, str(ROOT / "launch" / "train.py"),
          "--config=configs/demo.py:runlocal", "--config.total_steps=20",
          "--config.progress_bar=False", f"--workdir={workdir}"]


def _env(devices):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  return env


def _eval_mse(stdout):
  return float(re.search(r"'eval_mse': ([0-9.e-]+)", stdout).group(1))


def test_two_processes_agree_with_each_other_and_one_process(tmp_path):
  port = _free_port()
  procs = [
      subprocess.Popen(
          _args(tmp_path / "multi") + [
              "--distributed", f"--coordinator_address=localhost:{port}",
              "--num_processes=2", f"--process_id={i}"],
          cwd=ROOT, env=_env(1), stdout=subprocess.PIPE,
          stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outs = []
  for p in procs:
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    outs.append(out)
  prints = [re.search(r"fingerprint (\w+)", o).group(1) for o in outs]
  assert prints[0] == prints[1]
  # Both processes saved their input-iterator position.
  data = tmp_path / "multi" / "checkpoints" / "20" / "data"
  assert sorted(p.name for p in data.glob("process_*.json")) == [
      "process_0-of-2.json", "process_1-of-2.json"]

  single = subprocess.run(_args(tmp_path / "single"), cwd=ROOT, env=_env(2),
                          capture_output=True, text=True, timeout=300)
  assert single.returncode == 0, single.stderr[-3000:]
  # Same global batches and model: the same result up to reduction order.
  assert abs(_eval_mse(outs[0]) - _eval_mse(single.stdout)) < 1e-5
  assert _eval_mse(outs[0]) == _eval_mse(outs[1])
