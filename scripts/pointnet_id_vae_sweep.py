"""Trains paper 002 at several config points and tabulates their metrics.

The method README's sweeps (encoder, learning rate, lambda_3, ...) are
runs of this script; each point is a name and `--config.*` overrides:

    python scripts/pointnet_id_vae_sweep.py --root=runs/sweep_encoder \
        --variant=id_dis=False \
        --point="pointnet:" \
        --point="chebconv:--config.model.encoder=chebconv" \
        --common="--config.total_steps=1000"
    python scripts/pointnet_id_vae_sweep.py --root=runs/sweep_lambda3 \
        --point="l3_5e-4:" --point="l3_5e-2:--config.loss.adversarial=5e-2"

A point whose ROOT/NAME/metrics.json exists is not run again (an
interrupted one resumes from its checkpoints). Writes ROOT/sweep.md and
ROOT/sweep.json: the final test metrics, the baselines, and the last
logged training values of D_ID's accuracy and each loss term.
"""

import argparse
import json
import pathlib
import subprocess
import sys

_REPO = pathlib.Path(__file__).resolve().parents[1]
_TEST = ("E_rec/mean", "AVD_neu/mean", "AVD_neu_expressive/mean",
         "E_dis/mean", "rank1_identity_code/cross_expression",
         "rank1_expression_code/cross_expression")
_BASELINES = ("baseline_pca/E_rec/mean",
              "baseline_input_as_neutral/AVD_neu/mean",
              "baseline_ridge_neutral/AVD_neu/mean",
              "baseline_ridge_subject_mean/AVD_neu/mean")
_TRAIN = ("recon", "d_accuracy", "d_accuracy_fake", "adv", "kl_id", "lap")


def parse_point(text: str) -> tuple[str, list[str]]:
  """"name:--a=1 --b=2" -> ("name", ["--a=1", "--b=2"])."""
  name, sep, rest = text.partition(":")
  if not sep or not name or "/" in name:
    raise ValueError(f"--point {text!r}: expected NAME:[--config.key=value "
                     "...] with a name without '/'")
  return name, rest.split()


def last_train_values(metrics_jsonl: pathlib.Path) -> dict[str, float]:
  """The last logged value of each `_TRAIN` key."""
  out = {}
  if not metrics_jsonl.is_file():
    return out
  for line in metrics_jsonl.read_text().splitlines():
    row = json.loads(line)
    out.update({f"train/{k}": row[k] for k in _TRAIN if k in row})
  return out


def run_point(root: pathlib.Path, name: str, overrides: list[str],
              variant: str) -> dict[str, float] | None:
  workdir = root / name
  result = workdir / "metrics.json"
  if not result.is_file():
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(_REPO / "launch" / "train.py"),
           f"--config={_REPO / 'configs' / 'pointnet_id_vae.py'}"
           + (f":{variant}" if variant else ""),
           f"--workdir={workdir}", "--config.progress_bar=False", *overrides]
    (workdir / "command.txt").write_text(" ".join(cmd[1:]) + "\n")
    print("run", name, " ".join(cmd[1:]), flush=True)
    with open(workdir / "train.log", "a") as log:
      if subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT) != 0:
        print(f"{name} failed: see {workdir / 'train.log'}", flush=True)
        return None
  metrics = json.loads(result.read_text())
  metrics = metrics.get("eval", metrics)
  row = {k: metrics[k] for k in _TEST + _BASELINES if k in metrics}
  row.update(last_train_values(workdir / "metrics.jsonl"))
  return row


def table(rows: dict[str, dict[str, float]]) -> str:
  keys = [k for k in _TEST + tuple(f"train/{t}" for t in _TRAIN)
          if any(k in r for r in rows.values())]
  lines = ["| point | " + " | ".join(keys) + " |",
           "|---|" + "---|" * len(keys)]
  for name, r in rows.items():
    lines.append(f"| {name} | " + " | ".join(
        f"{r[k]:.4g}" if k in r else "" for k in keys) + " |")
  first = next(iter(rows.values()), {})
  base = [f"{k} = {first[k]:.3f}" for k in _BASELINES if k in first]
  if base:
    lines += ["", "Baselines (mm, same data): " + "; ".join(base)]
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--root", required=True, type=pathlib.Path)
  p.add_argument("--variant", default="",
                 help="config variant string for every point")
  p.add_argument("--point", action="append", required=True,
                 help="NAME:[--config.key=value ...] (repeatable)")
  p.add_argument("--common", default="",
                 help="overrides for every point, before its own")
  args = p.parse_args(argv)
  points = [(name, args.common.split() + overrides)
            for name, overrides in (parse_point(t) for t in args.point)]
  rows = {}
  for name, overrides in points:
    row = run_point(args.root, name, overrides, args.variant)
    if row is not None:
      rows[name] = row
  args.root.mkdir(parents=True, exist_ok=True)
  (args.root / "sweep.json").write_text(json.dumps(
      {"variant": args.variant, "points": dict(points), "rows": rows},
      indent=1))
  (args.root / "sweep.md").write_text(table(rows))
  print(table(rows))
  return 0 if len(rows) == len(points) else 1


if __name__ == "__main__":
  sys.exit(main())
