"""Quantitative editing on the probe grid (spec §7.2, R6, R7, R9).

The probe grid is a full factorial of unseen identities x expressions x
yaws x lights, so the ground truth of every edit is in it: moving the
donor's expression onto the target gives the grid image with the target's
identity, yaw and light and the donor's expression, and likewise for pose
and light (eq. 19-20, §5.2). Each edit's error is measured inside the
union of the target's and the ground truth's face masks, beside the
model's reconstruction of the unedited target and the two trivial answers
R9 names: copying the target and copying the donor.
"""

from typing import Any, Callable, Mapping

import numpy as np

# The edited factors (named as the grid's labels).
EDITS = ("expression", "pose", "light")
_FACTORS = ("identity", "expression", "pose", "light")


def grid_lookup(grid: Mapping[str, np.ndarray]) -> dict[tuple, int]:
  """{(identity, expression, pose, light) labels: row} of a grid."""
  labels = np.stack([np.asarray(grid[f"{f}_label"]) for f in _FACTORS], 1)
  table = {tuple(int(v) for v in row): i for i, row in enumerate(labels)}
  if len(table) != len(labels):
    raise ValueError("grid: two rows share all four factor labels")
  return table


def edit_pairs(grid: Mapping[str, np.ndarray], factor: str, *,
               num_pairs: int, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Random (target, donor, ground truth) rows [P] for editing `factor`.

  Target and donor are of different identities and differ in `factor`;
  the ground truth has the target's labels with the donor's `factor`.

  Raises:
    ValueError: if `factor` is not an edit or the grid lacks a combination.
  """
  if factor not in EDITS:
    raise ValueError(f"factor {factor!r}: expected one of {list(EDITS)}")
  table = grid_lookup(grid)
  lab = {f: np.asarray(grid[f"{f}_label"]) for f in _FACTORS}
  rng = np.random.default_rng(seed)
  n = len(lab["identity"])
  targets, donors, truth = [], [], []
  tries = 0
  while len(targets) < num_pairs:
    tries += 1
    if tries > 100 * num_pairs:
      raise ValueError(f"grid: too few identities or {factor} values for "
                       f"{num_pairs} edit pairs")
    t, d = rng.integers(n, size=2)
    if (lab["identity"][t] == lab["identity"][d]
        or lab[factor][t] == lab[factor][d]):
      continue
    key = tuple(int(lab[f][d] if f == factor else lab[f][t])
                for f in _FACTORS)
    if key not in table:
      raise ValueError(f"grid: no row with labels {key}; it must be a full "
                       "factorial")
    targets.append(t)
    donors.append(d)
    truth.append(table[key])
  return np.asarray(targets), np.asarray(donors), np.asarray(truth)


def _masked_mse(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray
                ) -> np.ndarray:
  """[P] mean squared error over the pixels of mask [P, S, S]."""
  m = mask[..., None].astype(np.float64)
  sq = np.square(np.asarray(pred, np.float64) - truth) * m
  return sq.sum(axis=(1, 2, 3)) / np.maximum(3.0 * m.sum(axis=(1, 2, 3)),
                                             1.0)


def editing_metrics(edit: Callable[[Any, np.ndarray, np.ndarray, str],
                                   np.ndarray],
                    state: Any, grid: Mapping[str, np.ndarray], *,
                    num_pairs: int = 200, seed: int = 0,
                    batch_size: int = 64) -> dict[str, float]:
  """Masked MSE and PSNR of each edit against the grid's ground truth.

  Args:
    edit: `(state, targets, donors, factor) -> edited images`, all
      [B, S, S, 3] (e.g. `method.transfer` with ("light",) for relighting).
    state: the train state.
    grid: `evaluation.probe_grid_arrays` output (image, mask and labels).
    num_pairs: pairs per edited factor.
    seed: the pairs' seed.
    batch_size: images per `edit` call.

  Returns:
    edit/{factor}/{mse, psnr}; edit/{factor}/no_edit/{mse, psnr} of the
    model's own reconstruction of the target (the edit's reference: an edit
    that moves the factor beats it); for the trivial answers,
    edit/{factor}/copy_{target, donor}/{mse, psnr}; the change ratio
    edit/{factor}/change_ratio = masked MSE of (edit - no edit) against
    (ground truth - target), over that of the ground truth's change itself
    (< 1: the edit moves the image the right way; an edit that changes
    nothing scores 1, whatever the reconstruction error); also
    edit/{factor}/mse_{frontal, profile} splitting the model's error by
    whether the target's yaw is 0 (R6).
  """
  images = np.asarray(grid["image"], np.float32)
  masks = np.asarray(grid["mask"]) > 0.5
  frontal_all = frontal_rows(grid)
  metrics = {}
  for factor in EDITS:
    t, d, g = edit_pairs(grid, factor, num_pairs=num_pairs, seed=seed)
    def run(donors):
      return np.concatenate([
          np.asarray(edit(state, images[t[i:i + batch_size]],
                          images[donors[i:i + batch_size]], factor))
          for i in range(0, len(t), batch_size)])
    out, same = run(d), run(t)
    truth = images[g]
    mask = masks[t] | masks[g]
    answers = {"": out, "no_edit/": same, "copy_target/": images[t],
               "copy_donor/": images[d]}
    for name, pred in answers.items():
      mse = _masked_mse(pred, truth, mask)
      metrics[f"edit/{factor}/{name}mse"] = float(mse.mean())
      metrics[f"edit/{factor}/{name}psnr"] = float(np.mean(
          -10.0 * np.log10(np.maximum(mse, 1e-10))))
    # The edit's change against the true change: reconstruction error
    # cancels, and an edit that changes nothing scores 1.
    change = _masked_mse(out - same, truth - images[t], mask)
    metrics[f"edit/{factor}/change_ratio"] = float(
        change.mean() / max(metrics[f"edit/{factor}/copy_target/mse"],
                            1e-12))
    mse = _masked_mse(out, truth, mask)
    frontal = frontal_all[t]
    if frontal.any():
      metrics[f"edit/{factor}/mse_frontal"] = float(mse[frontal].mean())
    if (~frontal).any():
      metrics[f"edit/{factor}/mse_profile"] = float(mse[~frontal].mean())
  return metrics


def frontal_rows(grid: Mapping[str, np.ndarray]) -> np.ndarray:
  """[N] bool: the grid's rows at the yaw nearest 0 (from grid["pose"]
  [N, 3] Euler angles; Table 3's subset)."""
  yaw = np.abs(np.asarray(grid["pose"])[:, 1])
  labels = np.asarray(grid["pose_label"])
  return labels == labels[np.argmin(yaw)]
