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
import pathlib
import sys

from disent_jax.methods.pointnet_id_vae import table
from disent_jax.train import jobs as jobs_lib

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _command(setting: table.Setting, seed: int, variant: str,
             workdir: pathlib.Path, overrides: list[str]) -> list[str]:
  arg = setting.variant + (f",{variant}" if variant else "")
  return [sys.executable, str(_REPO / "launch" / "train.py"),
          f"--config={_REPO / 'configs' / 'pointnet_id_vae.py'}:{arg}",
          f"--config.seed={seed}", f"--workdir={workdir}",
          "--config.progress_bar=False", *overrides]


def run_all(root: pathlib.Path, seeds: list[int], variant: str, jobs: int,
            threads: int, overrides: list[str],
            settings: tuple[table.Setting, ...] = table.SETTINGS
            ) -> list[str]:
  """Trains every unfinished run, seed by seed (all settings of the first
  seed come first); returns the directories that failed."""
  todo = [jobs_lib.Job(table.run_dir(root, s, seed),
                       tuple(_command(s, seed, variant,
                                      table.run_dir(root, s, seed),
                                      overrides)))
          for seed in seeds for s in settings]
  return jobs_lib.run_jobs(todo, parallel=jobs, threads=threads, cwd=_REPO)


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
