"""Paper 002's Table IV: the four ±ne-gt × ±id-dis settings over seeds.

`aggregate` turns the `metrics.json` of each run (written by the harness
evaluation) into one row per setting with the mean and standard deviation
over seeds; `markdown` lays the rows out like the paper's Table IV, with the
baselines (`baselines.py`: input as its own neutral, mean face, PCA, ridge
regressions) and the ratios to the input-as-neutral one.
`scripts/pointnet_id_vae_table4.py` runs the settings and calls both.
"""

import math
import pathlib
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from disent_jax.train import jobs


class Setting(NamedTuple):
  """One row of Table IV."""
  ne_gt: bool
  id_dis: bool

  @property
  def label(self) -> str:
    return (f"{'+' if self.ne_gt else '-'}ne-gt "
            f"{'+' if self.id_dis else '-'}id-dis")

  @property
  def variant(self) -> str:
    """The config variant, e.g. "ne_gt=False,id_dis=True"."""
    return f"ne_gt={self.ne_gt},id_dis={self.id_dis}"

  @property
  def slug(self) -> str:
    """A directory name, e.g. "nogt_dis"."""
    return (f"{'gt' if self.ne_gt else 'nogt'}_"
            f"{'dis' if self.id_dis else 'nodis'}")


# The paper's row order: without ground-truth neutrals first.
SETTINGS = (Setting(False, False), Setting(False, True),
            Setting(True, False), Setting(True, True))

# (metrics.json key, column title) of the table, in the paper's order.
COLUMNS = (
    ("AVD_neu/mean", "AVD_neu mean"),
    ("AVD_neu/std", "AVD_neu std"),
    ("AVD_neu/median", "AVD_neu median"),
    ("E_dis/mean", "E_dis mean"),
    ("E_dis/median", "E_dis median"),
    ("E_rec/mean", "E_rec mean"),
    ("E_rec/std", "E_rec std"),
    ("E_rec/median", "E_rec median"),
)
BASELINE = "baseline_input_as_neutral/"
# Every baseline row of the table: (metrics prefix, label).
BASELINES = (
    (BASELINE, "baseline: input as its own neutral"),
    ("baseline_mean_face/", "baseline: mean face"),
    ("baseline_pca/", "baseline: PCA, k = both latents"),
    ("baseline_ridge_neutral/", "baseline: ridge face → GT neutral "
     "(+ne-gt analogue)"),
    ("baseline_ridge_subject_mean/", "baseline: ridge face → subject mean "
     "(−ne-gt analogue)"),
)
RATIOS = (("AVD_neu/mean", "AVD_neu"), ("E_dis/mean", "E_dis"))


class Row(NamedTuple):
  """A setting's results over seeds: key -> (mean, std) and the seeds."""
  setting: Setting
  seeds: tuple[int, ...]
  stats: dict[str, tuple[float, float]]


def run_dir(root: str | pathlib.Path, setting: Setting, seed: int
            ) -> pathlib.Path:
  """The workdir of one run: ROOT/<slug>_seed<seed>."""
  return pathlib.Path(root) / f"{setting.slug}_seed{seed}"


def load_metrics(path: str | pathlib.Path) -> dict[str, float]:
  """A run's final `metrics.json`; a clear error if missing or malformed."""
  return jobs.read_metrics(path, required=[k for k, _ in COLUMNS],
                           what="the pointnet_id_vae evaluation")


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  v = np.asarray(values, np.float64)
  return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def aggregate(runs: Mapping[Setting, Mapping[int, Mapping[str, float]]]
              ) -> list[Row]:
  """Rows of Table IV from per-seed metrics.

  Args:
    runs: setting -> seed -> that run's metrics (`load_metrics`).

  Returns:
    One `Row` per setting present, in `SETTINGS` order; each statistic is
    (mean, sample std) over seeds, for the table's columns, the baseline's
    AVD_neu / E_dis and the baseline ratios.
  """
  rows = []
  for setting in SETTINGS:
    per_seed = runs.get(setting)
    if not per_seed:
      continue
    seeds = tuple(sorted(per_seed))
    keys = [k for k, _ in COLUMNS]
    # The baselines' columns, where every run reports them.
    keys += [prefix + k for prefix, _ in BASELINES for k, _ in COLUMNS
             if all(prefix + k in per_seed[s] for s in seeds)]
    stats = {}
    for k in keys:
      stats[k] = _mean_std([per_seed[s][k] for s in seeds])
    for k, _ in RATIOS:
      stats["ratio/" + k] = _mean_std(
          [per_seed[s][BASELINE + k] / max(per_seed[s][k], 1e-12)
           for s in seeds])
    rows.append(Row(setting, seeds, stats))
  return rows


def _cell(stat: tuple[float, float], digits: int = 3) -> str:
  mean, std = stat
  if not math.isfinite(mean):
    return "—"
  return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(rows: Sequence[Row]) -> str:
  """Table IV layout: one row per setting, cells "mean ± std over seeds".

  Arrows mark where +id-dis is lower than -id-dis at the same ne-gt
  setting, as the paper's ↓.
  """
  if not rows:
    raise ValueError("markdown: no rows (no finished runs)")
  by_setting = {r.setting: r for r in rows}
  header = (["setting", "seeds"] + [t for _, t in COLUMNS] +
            [f"baseline / ours ({t})" for _, t in RATIOS])
  lines = ["| " + " | ".join(header) + " |",
           "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
  for r in rows:
    partner = by_setting.get(Setting(r.setting.ne_gt, False))
    cells = [r.setting.label, str(len(r.seeds))]
    for k, _ in COLUMNS:
      cell = _cell(r.stats[k])
      if (r.setting.id_dis and partner is not None and
          not k.endswith("/std") and
          r.stats[k][0] < partner.stats[k][0]):
        cell += " ↓"
      cells.append(cell)
    cells += [_cell(r.stats["ratio/" + k], 2) + "×" for k, _ in RATIOS]
    lines.append("| " + " | ".join(cells) + " |")
  # Baselines depend on the data only: the same for every run of a seed
  # (shown: their mean over the first row's seeds).
  base = rows[0].stats
  for prefix, label in BASELINES:
    if not any(prefix + k in base for k, _ in COLUMNS):
      continue
    cells = [label, "—"]
    for k, _ in COLUMNS:
      key = prefix + k
      cells.append(f"{base[key][0]:.3f}" if key in base else "—")
    cells += ["1×", "1×"] if prefix == BASELINE else ["", ""]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def collect(root: str | pathlib.Path, seeds: Sequence[int]
            ) -> tuple[dict[Setting, dict[int, dict[str, float]]],
                       list[str]]:
  """Reads every finished run under `root`.

  Returns:
    (setting -> seed -> metrics, the run directories without metrics).
  """
  runs: dict[Setting, dict[int, dict[str, float]]] = {}
  missing = []
  for setting in SETTINGS:
    for seed in seeds:
      path = run_dir(root, setting, seed) / "metrics.json"
      if path.is_file():
        runs.setdefault(setting, {})[seed] = load_metrics(path)
      else:
        missing.append(str(path.parent))
  return runs, missing
