"""Side-by-side panels in the papers' figure formats.

All panels take images ([..., H, W, 3] floats in [0, 1]); for meshes, render
them first with `viz.mesh_render.render_meshes`.

* `comparison_panel`: one row per sample, named columns, e.g.
  input | reconstruction | identity | expression (papers 000, 002).
* `transfer_matrix`: expression (or pose) transfer: sources along the top,
  targets down the left, result (t, s) in the cell (paper 000 Fig. 8,
  paper 002 Fig. 9).
* `interpolation_strip`: one row per interpolation, columns labelled by the
  interpolation weight (paper 000 supplementary, paper 002 Fig. 10).
* `relighting_rows`: input then the same face under each light (paper 001
  Fig. 8, paper 003 Fig. 5).
"""

from typing import Mapping, Optional, Sequence

import numpy as np

from disent_jax.viz import grids


def comparison_panel(path: str, columns: Mapping[str, np.ndarray], *,
                     row_labels: Optional[Sequence[str]] = None,
                     title: Optional[str] = None) -> str:
  """Rows of samples, one labelled column per entry of `columns`.

  Args:
    path: output PNG.
    columns: ordered name -> [N, H, W(, 3)] images, e.g. {"input": x,
      "reconstruction": x_hat, "identity": x_id, "expression": x_exp}.
    row_labels: N labels.
    title: figure title.

  Returns:
    `path`.
  """
  if not columns:
    raise ValueError("comparison_panel needs at least one column.")
  arrays = [np.asarray(v) for v in columns.values()]
  n = arrays[0].shape[0]
  if any(a.shape[0] != n for a in arrays):
    raise ValueError("all columns need the same number of samples.")
  rows = [[a[i] for a in arrays] for i in range(n)]
  return grids.image_grid(path, rows, col_labels=list(columns),
                          row_labels=row_labels, title=title)


def transfer_matrix(path: str, sources, targets, results, *,
                    title: Optional[str] = "expression transfer",
                    source_label: str = "source",
                    target_label: str = "target") -> str:
  """A transfer matrix: cell (t, s) shows target t with source s's factor.

  Args:
    path: output PNG.
    sources: [S, H, W(, 3)] images whose factor is transferred.
    targets: [T, H, W(, 3)] images that receive it.
    results: [T, S, H, W(, 3)] transferred images.
    title: figure title.
    source_label: prefix for the column labels.
    target_label: prefix for the row labels.

  Returns:
    `path`.
  """
  sources, targets = np.asarray(sources), np.asarray(targets)
  results = np.asarray(results)
  s, t = sources.shape[0], targets.shape[0]
  if results.shape[:2] != (t, s):
    raise ValueError(f"results must be [T={t}, S={s}, ...], got "
                     f"{results.shape}.")
  rows = [[None] + list(sources)]
  rows += [[targets[i]] + list(results[i]) for i in range(t)]
  return grids.image_grid(
      path, rows, title=title,
      col_labels=[""] + [f"{source_label} {j}" for j in range(s)],
      row_labels=[""] + [f"{target_label} {i}" for i in range(t)])


def interpolation_strip(path: str, images, *, alphas=None,
                        row_labels: Optional[Sequence[str]] = None,
                        title: Optional[str] = "interpolation") -> str:
  """Rows of interpolations, columns labelled by the weight alpha.

  Args:
    path: output PNG.
    images: [R, K, H, W(, 3)], or [K, H, W, 3] / [K, H, W] for one strip.
    alphas: K interpolation weights (default linspace(0, 1, K)).
    row_labels: R labels.
    title: figure title.

  Returns:
    `path`.
  """
  images = np.asarray(images)
  # One strip: [K, H, W, 3|4] colour or [K, H, W] greyscale.
  if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (3, 4)):
    images = images[None]
  if images.ndim not in (4, 5):
    raise ValueError(f"images must be [R, K, H, W(, 3)], got {images.shape}.")
  k = images.shape[1]
  alphas = np.linspace(0.0, 1.0, k) if alphas is None else np.asarray(alphas)
  if alphas.shape != (k,):
    raise ValueError(f"{alphas.size} alphas for {k} columns.")
  return grids.image_grid(path, images, row_labels=row_labels,
                          col_labels=[f"α={a:.2g}" for a in alphas],
                          title=title)


def relighting_rows(path: str, inputs, relit, *,
                    light_labels: Optional[Sequence[str]] = None,
                    row_labels: Optional[Sequence[str]] = None,
                    title: Optional[str] = "relighting") -> str:
  """Each row: the input, then the face under each of L lights.

  Args:
    path: output PNG.
    inputs: [R, H, W(, 3)] input images.
    relit: [R, L, H, W(, 3)] relit images.
    light_labels: L labels (default "light 0", ...).
    row_labels: R labels.
    title: figure title.

  Returns:
    `path`.
  """
  inputs, relit = np.asarray(inputs), np.asarray(relit)
  r, l = relit.shape[:2]
  if inputs.shape[0] != r:
    raise ValueError(f"{inputs.shape[0]} inputs for {r} rows.")
  labels = list(light_labels) if light_labels is not None else [
      f"light {j}" for j in range(l)]
  if len(labels) != l:
    raise ValueError(f"{len(labels)} light labels for {l} lights.")
  rows = [[inputs[i]] + list(relit[i]) for i in range(r)]
  return grids.image_grid(path, rows, col_labels=["input"] + labels,
                          row_labels=row_labels, title=title)
