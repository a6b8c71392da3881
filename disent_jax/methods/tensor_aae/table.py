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

import math
import pathlib
from typing import Mapping, NamedTuple, Sequence

import ml_collections
import numpy as np

from disent_jax.methods.tensor_aae import baselines
from disent_jax.methods.tensor_aae import data as data_lib
from disent_jax.methods.tensor_aae import editing
from disent_jax.methods.tensor_aae import evaluation
from disent_jax.methods.tensor_aae import multilinear_baseline as mlin
from disent_jax.metrics import normals as normal_metrics
from disent_jax.metrics import probes
from disent_jax.train import jobs


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
_SHORT = {"identity": "id", "expression": "exp", "pose": "p", "light": "l"}
MLIN37 = "mlin37"  # The [37]-style decomposition's run directories.
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
  return jobs.read_metrics(path, required=("recon/mse",),
                           what="the tensor_aae evaluation")


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


def near_frontal_table(table: Mapping[str, dict],
                       mlin37: Mapping[str, dict] | None = None) -> str:
  """Normal error on the near-frontal test images, where the [37]-style
  decomposition applies: stream 2 and eq. 5's constant-light normals of
  each row, [37]'s and the mean map's."""
  cols = (("mean", "mean error (°)"), ("under_35", "< 35°"),
          ("under_40", "< 40°"))
  header = ["model", "seeds"] + [f"stream 2: {t}" for _, t in cols] + [
      f"eq. 5: {t}" for _, t in cols]
  lines = []
  for row, agg in _rows(table):
    st = agg["stats"]
    lines.append([row.label, str(len(agg["seeds"]))] + [
        _cell(st, f"normals_near/{k}", 2 if k == "mean" else 3)
        for k, _ in cols] + [
            _cell(st, f"frontal_normals/{k}", 2 if k == "mean" else 3)
            for k, _ in cols])
  if mlin37:
    agg = mlin37[MLIN37]
    lines.append(["baseline: [37]-style decomposition",
                  str(len(agg["seeds"]))] + [
                      _cell(agg["stats"], f"normals_near/{k}",
                            2 if k == "mean" else 3) for k, _ in cols] +
                 ["", "", ""])
  rows = _rows(table)
  base = rows[0][1]["stats"] if rows else {}
  lines.append(["baseline: mean normal map", "—"] + [
      _cell(base, f"baseline_mean_normals_near/{k}", 2 if k == "mean"
            else 3) for k, _ in cols] + ["", "", ""])
  return _table(header, lines)


def frontal_probes_table(table: Mapping[str, dict],
                         mlin37: Mapping[str, dict] | None = None) -> str:
  """Table 3: z_id, z_exp, z_l on the grid's frontal subset, beside the
  [37]-style decomposition's C, E, L."""
  header = ["model", "seeds"] + [f"z_{_SHORT[lat]} → {f}"
                                 for lat, f in evaluation.FRONTAL_PROBES]
  lines = []
  for row, agg in _rows(table):
    lines.append([row.label, str(len(agg["seeds"]))] + [
        _cell(agg["stats"], f"probe_frontal/z_{lat}/{f}")
        for lat, f in evaluation.FRONTAL_PROBES])
  if mlin37:
    agg = mlin37[MLIN37]
    lines.append(["baseline: [37]-style decomposition (C, E, L)",
                  str(len(agg["seeds"]))] + [
                      _cell(agg["stats"], f"probe_frontal/z_{lat}/{f}")
                      for lat, f in evaluation.FRONTAL_PROBES])
  rows = _rows(table)
  base = rows[0][1]["stats"] if rows else {}
  lines.append(["chance", "—"] + [_cell(base, f"probe/chance/{f}")
                                  for _, f in evaluation.FRONTAL_PROBES])
  return _table(header, lines)


def probes_table(table: Mapping[str, dict],
                 plain: Mapping[str, dict] | None = None) -> str:
  """Own-factor accuracies of z_id, z_exp, z_p, z_l per row, beside the
  PCA, the plain autoencoder Z_0 (whose one latent is probed for every
  factor) and chance."""
  factors = evaluation.FACTORS
  header = ["latent → factor", "seeds"] + [f"z_{_SHORT[f]} → {f}"
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


def cluster_table(table: Mapping[str, dict],
                  plain: Mapping[str, dict] | None = None) -> str:
  """Figs. 14-15 as numbers: silhouette and 5-NN accuracy of z_exp by
  expression and z_p by pose, beside Z_0's latent."""
  header = ["model", "seeds"]
  for lat, f in evaluation.CLUSTERS:
    header += [f"z_{_SHORT[lat]} by {f}: silhouette", "5-NN"]
  lines = []
  for row, agg in _rows(table):
    lines.append([row.label, str(len(agg["seeds"]))] + [
        _cell(agg["stats"], f"cluster/z_{lat}/{f}/{m}")
        for lat, f in evaluation.CLUSTERS for m in ("silhouette", "knn5")])
  if plain:
    agg = plain[PLAIN]
    lines.append(["baseline: plain autoencoder Z_0",
                  str(len(agg["seeds"]))] + [
                      _cell(agg["stats"], f"cluster/z_plain/{f}/{m}")
                      for _, f in evaluation.CLUSTERS
                      for m in ("silhouette", "knn5")])
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
             plain: Mapping[str, dict] | None = None,
             mlin37: Mapping[str, dict] | None = None) -> str:
  """Every table, each under a heading."""
  if not table:
    raise ValueError("markdown: no rows (no finished runs)")
  parts = [
      "### Normal error on held-out subjects (Table 1)\n",
      normals_table(table),
      "\n### Normal error on the near-frontal held-out images\n",
      near_frontal_table(table, mlin37),
      "\n### Frontal grid: z_id, z_exp, z_l (Table 3)\n",
      frontal_probes_table(table, mlin37),
      "\n### Probes: own-factor accuracy, 10-fold linear SVM "
      "(Tables 2-3)\n", probes_table(table, plain),
      "\n### Clustering on the grid (Figs. 14-15)\n",
      cluster_table(table, plain),
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
  for _, f in evaluation.CLUSTERS:
    metrics.update(evaluation.cluster_metrics("z_plain", codes,
                                              grid[f"{f}_label"], f))
  return metrics


def mlin37_metrics(config: ml_collections.ConfigDict) -> dict[str, float]:
  """Fits the [37]-style decomposition of a config and measures it.

  Q and the latents are fitted on the near-frontal training images (the
  fitted rotation's flag, as E_f and E_n use), with the method's k_exp and
  k_id and the 9 SH light coefficients; evaluation is on the near-frontal
  test images (true pose) and the grid's frontal subset, where [37] applies.

  Returns:
    normals_near/* (as `evaluation`), recon/mse on those images,
    probe_frontal/z_{latent}/{factor}, and train/final_loss.
  """
  dcfg = data_lib.DataConfig.from_config(config.data)
  sources = data_lib.make_sources(dcfg)
  train, test = sources.train_arrays, sources.test_arrays
  sel = train["near_frontal"] > 0.5
  dec = mlin.fit_multilinear(
      train["image"][sel], mlin.grey_light(train["fit_sh"][sel]),
      expression=int(config.model.expression),
      identity=int(config.model.identity), seed=int(config.seed))
  near = test["gt_near_frontal"] > 0.5
  lat = dec.encode(test["image"][near])
  normals = dec.normals(lat["expression"], lat["identity"])
  stats = normal_metrics.normal_error_stats(
      normals, test["normals"][near], test["face_mask"][near][..., 0],
      thresholds=evaluation.THRESHOLDS)
  metrics = {f"normals_near/{k}": v for k, v in stats.items()}
  recon = dec.reconstruct(lat)
  metrics["recon/mse"] = float(np.mean(np.square(
      recon - test["image"][near])))
  metrics["train/final_loss"] = float(dec.losses[-1])
  grid = evaluation.probe_grid_arrays(
      resolution=dcfg.resolution, render_size=dcfg.render_size,
      num_identities=int(config.eval.probe_identities), seed=dcfg.seed + 1,
      downsample=lambda x: data_lib.downsample_images(x, size=dcfg.size))
  frontal = editing.frontal_rows(grid)
  codes = dec.encode(grid["image"][frontal])
  for lat_name, factor in evaluation.FRONTAL_PROBES:
    acc = probes.probe_accuracy(codes[lat_name],
                                grid[f"{factor}_label"][frontal],
                                num_folds=int(config.eval.probe_folds))
    metrics[f"probe_frontal/z_{lat_name}/{factor}"] = acc["mean"]
    metrics[f"probe_frontal/z_{lat_name}/{factor}/std"] = acc["std"]
  return metrics
