"""Runs paper 002's Table IV on SynthFace and writes the table.

    python scripts/pointnet_id_vae_table4.py --root=runs/table4
    python scripts/pointnet_id_vae_table4.py --root=runs/table4_full \
        --variant=size=full --jobs=1

Trains the four settings (±ne-gt × ±id-dis) for each seed with
`launch/train.py` (a run that already has its metrics.json is skipped; an
interrupted run resumes from its checkpoints), then writes ROOT/table.md and
ROOT/table.json. `--jobs=N` runs N trainings at once, each limited to
`--threads` CPU threads. `--table_only` just rebuilds the table from the
finished runs.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

from disent_jax.methods.pointnet_id_vae import table

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _command(setting: table.Setting, seed: int, variant: str,
             workdir: pathlib.Path, overrides: list[str]) -> list[str]:
  arg = setting.variant + (f",{variant}" if variant else "")
  return [sys.executable, str(_REPO / "launch" / "train.py"),
          f"--config={_REPO / 'configs' / 'pointnet_id_vae.py'}:{arg}",
          f"--config.seed={seed}", f"--workdir={workdir}",
          "--config.progress_bar=False", *overrides]


def _env(threads: int) -> dict[str, str]:
  env = dict(os.environ)
  if threads > 0:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_cpu_multi_thread_eigen=false"
                        f" intra_op_parallelism_threads={threads}").strip()
  return env


def run_all(root: pathlib.Path, seeds: list[int], variant: str, jobs: int,
            threads: int, overrides: list[str],
            settings: tuple[table.Setting, ...] = table.SETTINGS
            ) -> list[str]:
  """Trains every unfinished run, seed by seed (all settings of the first
  seed come first); returns the directories that failed."""
  todo = [(s, seed) for seed in seeds for s in settings
          if not (table.run_dir(root, s, seed) / "metrics.json").is_file()]
  running: list[tuple[subprocess.Popen, pathlib.Path, float]] = []
  failed = []
  while todo or running:
    while todo and len(running) < jobs:
      setting, seed = todo.pop(0)
      workdir = table.run_dir(root, setting, seed)
      workdir.mkdir(parents=True, exist_ok=True)
      log = open(workdir / "train.log", "a")  # pylint: disable=consider-using-with
      cmd = _command(setting, seed, variant, workdir, overrides)
      print(f"start {workdir.name}: {' '.join(cmd[1:])}", flush=True)
      running.append((subprocess.Popen(cmd, stdout=log, stderr=log,
                                       env=_env(threads), cwd=_REPO),
                      workdir, time.time()))
    time.sleep(2.0)
    for entry in list(running):
      proc, workdir, start = entry
      if proc.poll() is None:
        continue
      running.remove(entry)
      took = (time.time() - start) / 60
      if proc.returncode == 0:
        print(f"done  {workdir.name} in {took:.1f} min", flush=True)
      else:
        print(f"FAILED {workdir.name} (exit {proc.returncode}); see "
              f"{workdir / 'train.log'}", flush=True)
        failed.append(str(workdir))
  return failed


def main() -> int:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--root", required=True, help="Directory of the runs.")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--variant", default="",
                      help="Extra config variant, e.g. size=full.")
  parser.add_argument("--jobs", type=int, default=1,
                      help="Trainings at once.")
  parser.add_argument("--threads", type=int, default=0,
                      help="CPU threads per training (0: XLA's default).")
  parser.add_argument("--settings", nargs="+", default=None,
                      choices=[s.slug for s in table.SETTINGS],
                      help="Train only these settings (default: all four).")
  parser.add_argument("--table_only", action="store_true")
  parser.add_argument("overrides", nargs="*",
                      help="Extra flags for every run, e.g. "
                      "--config.total_steps=3000 (after --).")
  args = parser.parse_args()
  root = pathlib.Path(args.root)
  failed = [] if args.table_only else run_all(
      root, args.seeds, args.variant, max(1, args.jobs), args.threads,
      args.overrides,
      tuple(s for s in table.SETTINGS
            if args.settings is None or s.slug in args.settings))
  runs, missing = table.collect(root, args.seeds)
  if not runs:
    print(f"no finished runs under {root}", file=sys.stderr)
    return 1
  rows = table.aggregate(runs)
  text = table.markdown(rows)
  (root / "table.md").write_text(text)
  (root / "table.json").write_text(json.dumps(
      [{"setting": r.setting.label, "seeds": list(r.seeds),
        "stats": {k: list(v) for k, v in r.stats.items()}} for r in rows],
      indent=1))
  print(text)
  if missing:
    print(f"not finished: {missing}", file=sys.stderr)
  return 1 if failed or missing else 0


if __name__ == "__main__":
  sys.exit(main())
