"""Plots training curves of one or more runs from their metrics.jsonl.

    python scripts/plot_training_curves.py --out=curves.png \
        --metrics=d_accuracy,d_accuracy_fake,recon,adv,lap,neu \
        runs/table4/nogt_dis_seed0 runs/table4/nogt_nodis_seed0

One panel per metric, one line per run (labelled by its directory name);
a run without a metric is left out of that panel. Loss terms that span
decades are drawn on a log axis (`--log=recon,lap`).
"""

import argparse
import json
import pathlib
import sys


def read_curves(workdir: pathlib.Path, metrics: list[str]
                ) -> dict[str, tuple[list[int], list[float]]]:
  """metric -> (steps, values) from WORKDIR/metrics.jsonl (training rows,
  i.e. rows with that metric)."""
  path = workdir / "metrics.jsonl"
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no metrics.jsonl (is {workdir} a run "
                            "directory?)")
  out: dict[str, tuple[list[int], list[float]]] = {m: ([], []) for m in
                                                   metrics}
  for number, line in enumerate(path.read_text().splitlines(), start=1):
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}:{number}: not JSON ({e})") from e
    for m in metrics:
      if m in row and "step" in row:
        out[m][0].append(int(row["step"]))
        out[m][1].append(float(row[m]))
  return out


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("runs", nargs="+", type=pathlib.Path)
  p.add_argument("--out", required=True, type=pathlib.Path)
  p.add_argument("--metrics", default="d_accuracy,recon,adv")
  p.add_argument("--log", default="recon,lap,ne_gt",
                 help="metrics drawn on a log axis")
  args = p.parse_args(argv)
  metrics = [m for m in args.metrics.split(",") if m]
  log = set(args.log.split(","))
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(metrics), squeeze=False,
                           figsize=(3.6 * len(metrics), 3.0))
  for run in args.runs:
    curves = read_curves(run, metrics)
    for ax, m in zip(axes[0], metrics):
      steps, values = curves[m]
      if m in log:  # Zeros (e.g. padding before a phase starts) off a log axis.
        kept = [(s, v) for s, v in zip(steps, values) if v > 0]
        steps, values = [s for s, _ in kept], [v for _, v in kept]
      if steps:
        ax.plot(steps, values, label=run.name, linewidth=1)
  for ax, m in zip(axes[0], metrics):
    ax.set_title(m, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    if m in log:
      ax.set_yscale("log")
  axes[0][0].legend(fontsize=6)
  fig.tight_layout()
  args.out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(args.out, dpi=110)
  print(args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
