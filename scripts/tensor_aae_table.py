"""Runs paper 000's SynthFace tables and writes them.

    python scripts/tensor_aae_table.py --root=runs/taae_table
    python scripts/tensor_aae_table.py --root=runs/taae_converged \\
        --variant=size=converged
    python scripts/tensor_aae_table.py --root=runs/taae_table \\
        --rows full nfe --seeds 0 1 2

Trains each row (`table.ROWS`: the full model, the [30]-style baseline and
the ablations), the plain autoencoder Z_0 and the [37]-style
decomposition for each seed with
`launch/train.py` (a run with a metrics.json is skipped; an interrupted
run resumes from its checkpoints), then writes ROOT/table.md and
ROOT/table.json. Runs go seed by seed, so the first seed's rows finish
first. `--table_only` just rebuilds the tables from the finished runs.
"""

import argparse
import ast
import json
import pathlib
import sys

from disent_jax.methods.tensor_aae import table
from disent_jax.train import config_utils
from disent_jax.train import jobs as jobs_lib

_REPO = pathlib.Path(__file__).resolve().parents[1]
_CONFIG = _REPO / "configs" / "tensor_aae.py"


def _arg(ablation: str, variant: str) -> str:
  return f"ablation={ablation}" + (f",{variant}" if variant else "")


def _train_job(row: table.Row, seed: int, root: pathlib.Path,
               variant: str, overrides: list[str]) -> jobs_lib.Job:
  workdir = table.run_dir(root, row.slug, seed)
  return jobs_lib.Job(workdir, (
      sys.executable, str(_REPO / "launch" / "train.py"),
      f"--config={_CONFIG}:{_arg(row.ablation, variant)}",
      f"--config.seed={seed}", f"--workdir={workdir}",
      "--config.progress_bar=False", *overrides))


def _baseline_job(name: str, seed: int, root: pathlib.Path, variant: str,
                  overrides: list[str]) -> jobs_lib.Job:
  workdir = table.run_dir(root, name, seed)
  return jobs_lib.Job(workdir, (
      sys.executable, str(pathlib.Path(__file__).resolve()),
      f"--root={root}", f"--variant={variant}", f"--baseline={name}",
      f"--baseline_seed={seed}", "--", *overrides))


_BASELINES = {table.PLAIN: table.plain_metrics,
              table.MLIN37: table.mlin37_metrics}


def _config(variant: str, seed: int, overrides: list[str]):
  """The full row's config with --config.KEY=VALUE overrides applied."""
  config = config_utils.load_config(_CONFIG, _arg("full", variant))
  config.seed = seed
  for flag in overrides:
    if not flag.startswith("--config.") or "=" not in flag:
      raise ValueError(f"override {flag!r}: expected --config.KEY=VALUE")
    key, text = flag[len("--config."):].split("=", 1)
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    if leaf not in node:
      raise ValueError(f"override {flag!r}: config has no key {key!r}")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    node[leaf] = value
  return config


def _write_json(path: pathlib.Path, data) -> None:
  tmp = path.with_name(f".{path.name}.tmp")
  tmp.write_text(json.dumps(data, indent=1))
  tmp.replace(path)


def main() -> int:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--root", required=True, help="Directory of the runs.")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--variant", default="",
                      help="Extra config variant, e.g. size=converged.")
  parser.add_argument("--rows", nargs="+", default=None,
                      choices=[r.slug for r in table.ROWS] +
                      sorted(_BASELINES),
                      help="Train only these rows (default: all).")
  parser.add_argument("--jobs", type=int, default=1,
                      help="Trainings at once.")
  parser.add_argument("--threads", type=int, default=0,
                      help="CPU threads per training (0: XLA's default).")
  parser.add_argument("--table_only", action="store_true")
  parser.add_argument("--baseline", choices=sorted(_BASELINES),
                      default=None,
                      help="Internal: fit and measure one baseline.")
  parser.add_argument("--baseline_seed", type=int, default=0)
  parser.add_argument("overrides", nargs="*",
                      help="Extra flags for every run, e.g. "
                      "--config.total_steps=3000 (after --).")
  args = parser.parse_args()
  root = pathlib.Path(args.root).expanduser()

  if args.baseline is not None:
    config = _config(args.variant, args.baseline_seed, args.overrides)
    metrics = _BASELINES[args.baseline](config)
    workdir = table.run_dir(root, args.baseline, args.baseline_seed)
    workdir.mkdir(parents=True, exist_ok=True)
    _write_json(workdir / "metrics.json", metrics)
    print(json.dumps(metrics, indent=1))
    return 0

  wanted = set(args.rows or [r.slug for r in table.ROWS] +
               sorted(_BASELINES))
  failed = []
  if not args.table_only:
    todo = []
    for seed in args.seeds:
      todo += [_train_job(r, seed, root, args.variant, args.overrides)
               for r in table.ROWS if r.slug in wanted]
      todo += [_baseline_job(name, seed, root, args.variant, args.overrides)
               for name in sorted(_BASELINES) if name in wanted]
    failed = jobs_lib.run_jobs(todo, parallel=args.jobs,
                               threads=args.threads, cwd=_REPO)
  runs, missing = table.collect(root, args.seeds,
                                [r.slug for r in table.ROWS])
  extra = {}
  for name in sorted(_BASELINES):
    found, gone = table.collect(root, args.seeds, [name])
    extra[name] = table.aggregate(found) if found else None
    missing += gone
  if not runs:
    print(f"no finished runs under {root}", file=sys.stderr)
    return 1
  agg = table.aggregate(runs)
  text = table.markdown(agg, extra[table.PLAIN], extra[table.MLIN37])
  (root / "table.md").write_text(text)
  _write_json(root / "table.json", {
      "variant": args.variant, "overrides": args.overrides,
      "rows": {k: {"seeds": v["seeds"],
                   "stats": {m: list(s) for m, s in v["stats"].items()}}
               for k, v in {**agg, **(extra[table.PLAIN] or {}),
                            **(extra[table.MLIN37] or {})}.items()}})
  print(text)
  if missing:
    print(f"not finished: {missing}", file=sys.stderr)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
