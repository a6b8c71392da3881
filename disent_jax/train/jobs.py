"""Runs a list of training commands as subprocesses, a few at a time.

The results-table scripts (`scripts/*_table*.py`) describe each run as a
`Job` (its workdir and command line); `run_jobs` skips a job whose
workdir already has the file that marks it finished, starts the rest (an
interrupted run resumes from its own checkpoints), logs each to
WORKDIR/train.log and reports the ones that failed.
"""

import dataclasses
import json
import os
import pathlib
import subprocess
import time
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class Job:
  """One run: its workdir, command and the file that marks it done."""
  workdir: pathlib.Path
  command: tuple[str, ...]
  done_file: str = "metrics.json"

  @property
  def done(self) -> bool:
    return (self.workdir / self.done_file).is_file()


def thread_env(threads: int) -> dict[str, str]:
  """The environment with XLA's CPU threads limited to `threads` (0: as
  it is)."""
  env = dict(os.environ)
  if threads > 0:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_cpu_multi_thread_eigen=false"
                        f" intra_op_parallelism_threads={threads}").strip()
  return env


def run_jobs(jobs: Sequence[Job], *, parallel: int = 1, threads: int = 0,
             cwd: str | pathlib.Path | None = None,
             poll_s: float = 2.0) -> list[str]:
  """Runs the unfinished jobs in order, `parallel` at once.

  Returns:
    The workdirs of the jobs that exited non-zero.
  """
  todo = [j for j in jobs if not j.done]
  running: list[tuple[subprocess.Popen, Job, float]] = []
  failed = []
  while todo or running:
    while todo and len(running) < max(1, parallel):
      job = todo.pop(0)
      job.workdir.mkdir(parents=True, exist_ok=True)
      log = open(job.workdir / "train.log", "a")  # pylint: disable=consider-using-with
      print(f"start {job.workdir.name}: {' '.join(job.command[1:])}",
            flush=True)
      running.append((subprocess.Popen(list(job.command), stdout=log,
                                       stderr=log, env=thread_env(threads),
                                       cwd=cwd), job, time.time()))
    time.sleep(poll_s)
    for entry in list(running):
      proc, job, start = entry
      if proc.poll() is None:
        continue
      running.remove(entry)
      took = (time.time() - start) / 60
      if proc.returncode == 0:
        print(f"done  {job.workdir.name} in {took:.1f} min", flush=True)
      else:
        print(f"FAILED {job.workdir.name} (exit {proc.returncode}); see "
              f"{job.workdir / 'train.log'}", flush=True)
        failed.append(str(job.workdir))
  return failed


def read_metrics(path: str | pathlib.Path, *, required: Sequence[str],
                 what: str) -> dict[str, float]:
  """A finished run's `metrics.json` as {name: float}.

  Raises:
    FileNotFoundError: if it is missing; ValueError, naming the file, if
    it is not JSON or lacks a `required` key (`what` names the evaluation
    that writes them).
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no metrics.json (has the run "
                            "finished its evaluation?)")
  try:
    data = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from e
  missing = [k for k in required
             if not isinstance(data, dict) or k not in data]
  if missing:
    raise ValueError(f"{path}: missing metrics {missing}; expected {what}'s "
                     "keys")
  return {k: float(v) for k, v in data.items()
          if isinstance(v, (int, float))}
