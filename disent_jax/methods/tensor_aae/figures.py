"""Paper 000's qualitative figures from a trained state.

  * `decomposition`: held-out faces and their stream-2 decomposition
    (x̂, normals, the exact normals, albedo, shading, mask; Figs. 11, 13);
  * `transfers`: expression, pose and light moved from a donor onto a
    target of the probe grid, beside the grid's ground-truth re-render
    (Figs. 8, 10, 11);
  * `interpolation`: one factor's latent from one face to another in 0.1
    steps (App. D, Figs. 18-19).

Each takes the method's applications (`Method.applications`) and writes a
PNG; `scripts/tensor_aae_figures.py` makes all three for a run directory,
and `colabs/tensor_aae.ipynb` shows them.
"""

from typing import Any, Callable, Mapping

import jax
import numpy as np

from disent_jax.methods.tensor_aae import editing
from disent_jax.viz import panels

Apps = Mapping[str, Callable[..., Any]]


def decomposition(path: str, apps: Apps, state: Any,
                  images: np.ndarray, true_normals: np.ndarray | None = None
                  ) -> tuple[str, dict[str, np.ndarray]]:
  """Rows of faces [N, S, S, 3]: input, x̂, normals ((n + 1) / 2), the
  exact normals when given, albedo, shading (scaled to its maximum), mask.

  Returns:
    (path, the decoder outputs).
  """
  parts = jax.device_get(apps["decompose"](state, images))
  columns = {"input": images, "x̂": parts["image"],
             "normals": (parts["normals"] + 1) / 2}
  if true_normals is not None:
    columns["true normals"] = (np.asarray(true_normals) + 1) / 2
  columns["albedo"] = parts["albedo"]
  columns["shading"] = parts["shading"] / max(
      float(np.max(parts["shading"])), 1e-6)
  columns["mask"] = parts["mask"][..., 0]
  return panels.comparison_panel(path, columns), parts


def transfers(path: str, apps: Apps, state: Any,
              grid: Mapping[str, np.ndarray], *, seed: int = 3,
              pairs: int = 2) -> str:
  """Per edited factor, `pairs` rows: target, donor, edit, ground truth."""
  rows = {"target": [], "donor": [], "edit": [], "ground truth": []}
  labels = []
  for factor in editing.EDITS:
    t, d, g = editing.edit_pairs(grid, factor, num_pairs=pairs, seed=seed)
    out = apps["transfer"](state, grid["image"][t], grid["image"][d],
                           factors=(factor,))
    for name, img in zip(rows, (grid["image"][t], grid["image"][d],
                                np.asarray(out["image"]),
                                grid["image"][g])):
      rows[name].extend(list(img))
    labels += [factor] * pairs
  return panels.comparison_panel(
      path, {k: np.stack(v) for k, v in rows.items()}, row_labels=labels)


def interpolation(path: str, apps: Apps, state: Any, image_a: np.ndarray,
                  image_b: np.ndarray, *,
                  factors: tuple[str, ...] = ("expression", "identity",
                                              "light")) -> tuple[str,
                                                                 np.ndarray]:
  """One strip per factor, α = 0, 0.1, ..., 1 from a to b.

  Returns:
    (path, the strips [F, 11, S, S, 3]).
  """
  strips = np.stack([np.asarray(apps["interpolate"](
      state, image_a, image_b, factor=f, steps=11)) for f in factors])
  return panels.interpolation_strip(path, strips,
                                    row_labels=list(factors)), strips
