"""The real launcher in subprocesses: kill -9, SIGTERM, config typos, eval."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from testutil.harness import ROOT

_STEPS = 200
_ARGS = ["--config=configs/demo.py:runlocal", f"--config.total_steps={_STEPS}",
         "--config.checkpoint_every_steps=10", "--config.log_every_steps=50",
         "--config.progress_bar=False"]


def _env():
  env = dict(os.environ)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  env["JAX_PLATFORMS"] = "cpu"
  return env


def _cmd(script, workdir, *extra):
  return [sys.executable, str(ROOT / "launch" / script), *_ARGS,
          f"--workdir={workdir}", *extra]


def _run(script, workdir, *extra, check=True):
  proc = subprocess.run(_cmd(script, workdir, *extra), cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=300)
  if check and proc.returncode != 0:
    raise AssertionError(f"rc={proc.returncode}\n{proc.stderr[-3000:]}")
  return proc


def _fingerprint(stdout):
  match = re.search(r"step (\d+) fingerprint (\w+)", stdout)
  assert match, stdout
  return int(match.group(1)), match.group(2)


def _start_and_wait_for_checkpoint(workdir, step):
  proc = subprocess.Popen(_cmd("train.py", workdir), cwd=ROOT, env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  target = pathlib.Path(workdir) / "checkpoints" / str(step)
  deadline = time.time() + 240
  while not target.is_dir():
    if proc.poll() is not None or time.time() > deadline:
      proc.kill()
      raise AssertionError("run ended before checkpoint "
                           f"{step}:\n{proc.communicate()[1][-3000:]}")
    time.sleep(0.05)
  return proc


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("cli_straight")
  return _fingerprint(_run("train.py", workdir).stdout)


def test_kill_9_then_rerun_is_bit_identical(straight, tmp_path):
  proc = _start_and_wait_for_checkpoint(tmp_path, 20)
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()
                 if p.name.isdigit())
  assert saved and saved[-1] < _STEPS, "killed too late to test a resume"
  resumed = _run("train.py", tmp_path)
  assert "Resumed from" in resumed.stderr
  assert _fingerprint(resumed.stdout) == straight


def test_sigterm_saves_exits_cleanly_and_resumes(straight, tmp_path):
  proc = _start_and_wait_for_checkpoint(tmp_path, 10)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 0, stderr[-3000:]
  match = re.search(r"Termination signal \(SIGTERM\): saved step (\d+)",
                    stderr)
  assert match, stderr[-3000:]
  stopped = int(match.group(1))
  assert (tmp_path / "checkpoints" / str(stopped)).is_dir()
  if stopped < _STEPS:
    assert not (tmp_path / "metrics.json").exists()
  assert _fingerprint(_run("train.py", tmp_path).stdout) == straight


def test_config_typo_names_the_key(tmp_path):
  proc = _run("train.py", tmp_path, "--config.lerning_rate=1", check=False)
  assert proc.returncode == 2
  assert "lerning_rate" in proc.stderr
  assert "optim.learning_rate" in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_eval_command_writes_report(tmp_path):
  _run("train.py", tmp_path, "--config.total_steps=20")
  (tmp_path / "metrics.json").unlink()
  proc = _run("eval.py", tmp_path)
  assert "eval_mse" in proc.stdout
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["eval_examples"] == 64
  assert "step 20" in (tmp_path / "report.md").read_text()
