"""Paper 000's tables on SynthFace: the model, its baselines and ablations.

Each row is a config variant (`configs/tensor_aae.py`) trained over seeds;
`aggregate` reduces the `metrics.json` of every run to mean ± std over
seeds and `markdown` writes four tables:

  * normals (Table 1): the stream-2 normal error of each row, beside the
    3DMM-fit, mean and flat normal maps;
  * probes (Tables 2-3): each latent's accuracy on its own factor, beside
    the PCA of the same size and the plain autoencoder Z_0, then the full
    model's latent x factor matrix (leakage);
  * editing (R6, R7, R9): expression and pose transfer and relighting
    against the grid's re-renders, beside no edit and the copy answers;
  * reconstruction: x_hat against the mean image, the PCA and Z_0.

`scripts/tensor_aae_table.py` trains the rows and calls both.
"""

import json
import math
import pathlib
from typing import Mapping, NamedTuple, Sequence

import ml_collections
import numpy as np

from disent_jax.methods.tensor_aae import baselines
from disent_jax.methods.tensor_aae import data as data_lib
from disent_jax.methods.tensor_aae import editing
from disent_jax.methods.tensor_aae import evaluation
from disent_jax.metrics import probes


class Row(NamedTuple):
  """A config variant of the table."""
  slug: str
  ablation: str
  label: str


ROWS = (
    Row("full", "full", "full model"),
    Row("nfe", "nfe", "[30]-style (NFE) baseline"),
    Row("no_multilinear", "no_multilinear", "− multilinear losses"),
    Row("no_rotation", "no_rotation", "− rotation (concat pose)"),
    Row("no_pseudo", "no_pseudo", "− pseudo-supervision"),
    Row("no_adv", "no_adv", "− adversarial term"),
)
PLAIN = "plain"  # The plain autoencoder's run directories.
NORMAL_COLUMNS = (("mean", "mean error (°)"), ("std", "std over images"),
                  ("under_20", "< 20°"), ("under_30", "< 30°"),
                  ("under_35", "< 35°"), ("under_40", "< 40°"))
NORMAL_BASELINES = (("baseline_fit_normals", "3DMM-fit normals (pseudo GT)"),
                    ("baseline_mean_normals", "mean normal map"),
                    ("baseline_flat_normals", "flat normal (0, 0, 1)"))


def run_dir(root: str | pathlib.Path, slug: str, seed: int) -> pathlib.Path:
  """The workdir of one run: ROOT/<slug>_seed<seed>."""
  return pathlib.Path(root) / f"{slug}_seed{seed}"


def load_metrics(path: str | pathlib.Path) -> dict[str, float]:
  """A run's `metrics.json`; a clear error if it is missing or malformed."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no metrics.json (has the run "
                            "finished its evaluation?)")
  try:
    data = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from e
  if not isinstance(data, dict) or "recon/mse" not in data:
    raise ValueError(f"{path}: expected the tensor_aae evaluation's metrics "
                     "(no recon/mse)")
  return {k: float(v) for k, v in data.items()
          if isinstance(v, (int, float))}


def collect(root: str | pathlib.Path, seeds: Sequence[int],
            slugs: Sequence[str]) -> tuple[dict[str, dict[int, dict]],
                                           list[str]]:
  """Reads every finished run: (slug -> seed -> metrics, unfinished dirs)."""
  runs: dict[str, dict[int, dict]] = {}
  missing = []
  for slug in slugs:
    for seed in seeds:
      path = run_dir(root, slug, seed) / "metrics.json"
      if path.is_file():
        runs.setdefault(slug, {})[seed] = load_metrics(path)
      else:
        missing.append(str(path.parent))
  return runs, missing


def aggregate(runs: Mapping[str, Mapping[int, Mapping[str, float]]]
              ) -> dict[str, dict]:
  """slug -> {"seeds": [...], "stats": {key: (mean, sample std)}} over the
  keys every seed of the row reports."""
  out = {}
  for slug, per_seed in runs.items():
    seeds = sorted(per_seed)
    keys = set.intersection(*(set(per_seed[s]) for s in seeds))
    stats = {}
    for k in sorted(keys):
      v = np.asarray([per_seed[s][k] for s in seeds], np.float64)
      stats[k] = (float(v.mean()), float(v.std(ddof=1)) if v.size > 1
                  else 0.0)
    out[slug] = {"seeds": seeds, "stats": stats}
  return out


def _cell(stats: Mapping[str, tuple[float, float]], key: str,
          digits: int = 3) -> str:
  if key not in stats or not math.isfinite(stats[key][0]):
    return "—"
  mean, std = stats[key]
  return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
  out = ["| " + " | ".join(header) + " |",
         "|---|" + "---:|" * (len(header) - 1)]
  out += ["| " + " | ".join(cells) + " |" for cells in lines]
  return "\n".join(out)


def _rows(table: Mapping[str, dict]) -> list[tuple[Row, dict]]:
  return [(r, table[r.slug]) for r in ROWS if r.slug in table]


def normals_table(table: Mapping[str, dict]) -> str:
  """Table 1's layout: normal error of each row and the baselines."""
  header = ["model", "seeds"] + [t for _, t in NORMAL_COLUMNS]
  lines = []
  for row, agg in _rows(table):
    lines.append([row.label, str(len(agg["seeds"]))] + [
        _cell(agg["stats"], f"normals/{k}", 2 if k in ("mean", "std")
              else 3) for k, _ in NORMAL_COLUMNS])
  base = _rows(table)[0][1]["stats"] if table else {}
  for prefix, label in NORMAL_BASELINES:
    lines.append([f"baseline: {label}", "—"] + [
        _cell(base, f"{prefix}/{k}", 2 if k in ("mean", "std") else 3)
        for k, _ in NORMAL_COLUMNS])
  return _table(header, lines)


def probes_table(table: Mapping[str, dict],
                 plain: Mapping[str, dict] | None = None) -> str:
  """Own-factor accuracies of z_id, z_exp, z_p, z_l per row, beside the
  PCA, the plain autoencoder Z_0 (whose one latent is probed for every
  factor) and chance."""
  factors = evaluation.FACTORS
  short = {"identity": "id", "expression": "exp", "pose": "p", "light": "l"}
  header = ["latent → factor", "seeds"] + [f"z_{short[f]} → {f}"
                                          for f in factors]
  lines = []
  for row, agg in _rows(table):
    lines.append([row.label, str(len(agg["seeds"]))] + [
        _cell(agg["stats"], f"probe/z_{f}/{f}") for f in factors])
  rows = _rows(table)
  base = rows[0][1]["stats"] if rows else {}
  lines.append(["baseline: PCA, same size", "—"] + [
      _cell(base, f"probe/baseline_pca/{f}") for f in factors])
  if plain:
    agg = plain[PLAIN]
    lines.append(["baseline: plain autoencoder Z_0",
                  str(len(agg["seeds"]))] + [
                      _cell(agg["stats"], f"probe/z_plain/{f}")
                      for f in factors])
  lines.append(["chance", "—"] + [_cell(base, f"probe/chance/{f}")
                                  for f in factors])
  return _table(header, lines)


def leakage_table(table: Mapping[str, dict], slug: str = "full") -> str:
  """One row's latent x factor probe matrix (diagonal: own factor)."""
  if slug not in table:
    return ""
  stats = table[slug]["stats"]
  header = ["latent"] + list(evaluation.FACTORS)
  lines = [[f"z_{lat}"] + [_cell(stats, f"probe/z_{lat}/{f}")
                           for f in evaluation.FACTORS]
           for lat in evaluation.LATENTS]
  lines.append(["chance"] + [_cell(stats, f"probe/chance/{f}")
                             for f in evaluation.FACTORS])
  return _table(header, lines)


def editing_table(table: Mapping[str, dict]) -> str:
  """Masked MSE (x 100) of each edit and of no edit against the grid's
  re-renders, and the change ratio (`editing.editing_metrics`; < 1 moves
  the right way, 1 is no change)."""
  header = ["model", "seeds"]
  for f in editing.EDITS:
    header += [f"{f}: edit", f"{f}: no edit", f"{f}: change ratio"]
  lines = []

  def scaled(stats, key):
    if key not in stats:
      return "—"
    m, s = stats[key]
    return f"{100 * m:.3f} ± {100 * s:.3f}"

  for row, agg in _rows(table):
    cells = [row.label, str(len(agg["seeds"]))]
    for f in editing.EDITS:
      cells += [scaled(agg["stats"], f"edit/{f}/mse"),
                scaled(agg["stats"], f"edit/{f}/no_edit/mse"),
                _cell(agg["stats"], f"edit/{f}/change_ratio")]
    lines.append(cells)
  rows = _rows(table)
  base = rows[0][1]["stats"] if rows else {}
  for name in ("copy_target", "copy_donor"):
    cells = [f"baseline: {name.replace('_', ' ')}", "—"]
    for f in editing.EDITS:
      cells += [scaled(base, f"edit/{f}/{name}/mse"), "", ""]
    lines.append(cells)
  return _table(header, lines)


def recon_table(table: Mapping[str, dict],
                plain: Mapping[str, dict] | None = None) -> str:
  """Test reconstruction MSE (x 100) of each row and the baselines."""
  def scaled(stats, key):
    if key not in stats:
      return "—"
    m, s = stats[key]
    return f"{100 * m:.3f} ± {100 * s:.3f}"

  lines = [[row.label, str(len(agg["seeds"])),
            scaled(agg["stats"], "recon/mse")]
           for row, agg in _rows(table)]
  rows = _rows(table)
  base = rows[0][1]["stats"] if rows else {}
  lines.append(["baseline: mean image", "—",
                scaled(base, "baseline_mean_image/recon/mse")])
  lines.append(["baseline: PCA, same size", "—",
                scaled(base, "baseline_pca/recon/mse")])
  if plain:
    agg = plain[PLAIN]
    lines.append(["baseline: plain autoencoder Z_0", str(len(agg["seeds"])),
                  scaled(agg["stats"], "recon/mse")])
  return _table(["model", "seeds", "test MSE × 100"], lines)


def markdown(table: Mapping[str, dict],
             plain: Mapping[str, dict] | None = None) -> str:
  """All four tables, each under a heading."""
  if not table:
    raise ValueError("markdown: no rows (no finished runs)")
  parts = [
      "### Normal error on held-out subjects (Table 1)\n",
      normals_table(table),
      "\n### Probes: own-factor accuracy, 10-fold linear SVM "
      "(Tables 2-3)\n", probes_table(table, plain),
      "\n### Leakage: every latent against every factor (full model)\n",
      leakage_table(table),
      "\n### Editing against the grid's re-renders, masked MSE × 100\n",
      editing_table(table),
      "\n### Reconstruction\n", recon_table(table, plain)]
  return "\n".join(parts) + "\n"


def plain_metrics(config: ml_collections.ConfigDict) -> dict[str, float]:
  """Trains the plain autoencoder Z_0 of a config and measures it.

  Z_0 has the method's encoder and decoder widths and one latent as large
  as all of the method's latents (`baselines.plain_latent_size`), and
  trains on E_recon for the config's steps, batch size, learning rate and
  seed.

  Returns:
    recon/mse on the test split, probe/z_plain/{factor} (and /std) and
    probe/chance/{factor} on the probe grid, and train/final_loss.
  """
  dcfg = data_lib.DataConfig.from_config(config.data)
  sources = data_lib.make_sources(dcfg)
  m = config.model
  fitted = baselines.fit_plain_autoencoder(
      sources.train_arrays["image"], widths=tuple(m.widths), code=m.code,
      latent=baselines.plain_latent_size(m), steps=int(config.total_steps),
      batch_size=int(config.batch_size),
      learning_rate=float(config.optim.learning_rate),
      seed=int(config.seed), b1=float(config.optim.b1))
  test = sources.test_arrays["image"]
  recon = fitted.reconstruct(test)
  metrics = {"recon/mse": float(np.mean(np.square(recon - test))),
             "train/final_loss": float(fitted.losses[-50:].mean())}
  grid = evaluation.probe_grid_arrays(
      resolution=dcfg.resolution, render_size=dcfg.render_size,
      num_identities=int(config.eval.probe_identities), seed=dcfg.seed + 1,
      downsample=lambda x: data_lib.downsample_images(x, size=dcfg.size))
  codes = fitted.encode(grid["image"])
  for f in evaluation.FACTORS:
    labels = grid[f"{f}_label"]
    acc = probes.probe_accuracy(codes, labels,
                                num_folds=int(config.eval.probe_folds))
    metrics[f"probe/z_plain/{f}"] = acc["mean"]
    metrics[f"probe/z_plain/{f}/std"] = acc["std"]
    metrics[f"probe/chance/{f}"] = float(1.0 / len(np.unique(labels)))
  return metrics
