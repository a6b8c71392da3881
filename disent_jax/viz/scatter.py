"""2-D scatter plots of latents coloured by a factor (PCA or t-SNE).

`pca_2d` is an SVD projection; `tsne_2d` is an exact t-SNE (van der Maaten
and Hinton 2008: perplexity-calibrated Gaussian affinities, Student-t
embedding, early exaggeration, momentum gradient descent) in numpy, meant
for the few thousand points of an evaluation split (cost O(N^2) per
iteration).
"""

from typing import Optional, Sequence

import matplotlib
import numpy as np

from disent_jax.viz import grids


def pca_2d(latents) -> np.ndarray:
  """Projection of [N, D] latents on their first two principal axes.

  Returns:
    [N, 2] coordinates (zero-padded when D < 2).
  """
  z = np.asarray(latents, np.float64)
  if z.ndim != 2:
    raise ValueError(f"latents must be [N, D], got {z.shape}.")
  zc = z - z.mean(0)
  _, _, vt = np.linalg.svd(zc, full_matrices=False)
  out = zc @ vt[:2].T
  if out.shape[1] < 2:
    out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
  return out


def _affinities(z, perplexity):
  d2 = np.sum((z[:, None] - z[None]) ** 2, -1)
  n = z.shape[0]
  p = np.zeros((n, n))
  target = np.log(perplexity)
  for i in range(n):
    di = np.delete(d2[i], i)
    lo, hi, beta = 0.0, np.inf, 1.0
    for _ in range(60):
      w = np.exp(-(di - di.min()) * beta)
      s = w.sum()
      h = np.log(s) + beta * np.sum((di - di.min()) * w) / s
      if abs(h - target) < 1e-5:
        break
      if h > target:
        lo, beta = beta, beta * 2 if hi == np.inf else (beta + hi) / 2
      else:
        hi, beta = beta, (beta + lo) / 2
    p[i, np.arange(n) != i] = w / s
  p = (p + p.T) / (2 * n)
  return np.maximum(p, 1e-12)


def tsne_2d(latents, *, perplexity: float = 30.0, num_steps: int = 500,
            learning_rate: float = 200.0, seed: int = 0) -> np.ndarray:
  """Exact t-SNE of [N, D] latents to [N, 2].

  Args:
    latents: [N, D] (N >= 5).
    perplexity: effective neighbour count (clipped to (N - 1) / 3).
    num_steps: gradient steps (the first 100 with exaggeration 12).
    learning_rate: step size.
    seed: initialisation seed.

  Returns:
    [N, 2] embedding.
  """
  z = np.asarray(latents, np.float64)
  if z.ndim != 2 or z.shape[0] < 5:
    raise ValueError(f"latents must be [N>=5, D], got {z.shape}.")
  z = (z - z.mean(0)) / max(z.std(), 1e-12)
  n = z.shape[0]
  p = _affinities(z, min(perplexity, (n - 1) / 3.0))
  y = np.random.default_rng(seed).normal(scale=1e-4, size=(n, 2))
  vel = np.zeros_like(y)
  gains = np.ones_like(y)
  for step in range(num_steps):
    exag = 12.0 if step < 100 else 1.0
    diff = y[:, None] - y[None]
    num = 1.0 / (1.0 + np.sum(diff ** 2, -1))
    np.fill_diagonal(num, 0.0)
    q = np.maximum(num / num.sum(), 1e-12)
    grad = 4.0 * np.sum(((exag * p - q) * num)[..., None] * diff, axis=1)
    momentum = 0.5 if step < 250 else 0.8
    gains = np.where(np.sign(grad) != np.sign(vel), gains + 0.2,
                     gains * 0.8).clip(0.01)
    vel = momentum * vel - learning_rate * gains * grad
    y = y + vel
    y -= y.mean(0)
  return y


def latent_scatter(path: str, latents, labels, *, method: str = "pca",
                   title: Optional[str] = None,
                   label_name: str = "factor",
                   class_names: Optional[Sequence[str]] = None,
                   max_legend: int = 20, seed: int = 0,
                   dpi: int = 100) -> str:
  """Scatter of latents in 2-D coloured by a factor; writes a PNG.

  Args:
    path: output PNG.
    latents: [N, D] codes (e.g. z_id).
    labels: [N] factor values: integers/strings are drawn as classes (a
      legend up to `max_legend` classes), floats with a colour bar.
    method: "pca" or "tsne".
    title: figure title (default "<method> of latents by <label_name>").
    label_name: name of the factor.
    class_names: optional names for the sorted unique labels.
    max_legend: the largest number of classes given a legend.
    seed: t-SNE seed.
    dpi: output resolution.

  Returns:
    `path`.
  """
  if method == "pca":
    xy = pca_2d(latents)
  elif method == "tsne":
    xy = tsne_2d(latents, seed=seed)
  else:
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")
  labels = np.asarray(labels)
  if labels.shape != (xy.shape[0],):
    raise ValueError(f"labels must be [{xy.shape[0]}], got {labels.shape}.")
  fig = grids.new_figure((5.2, 4.4))
  ax = fig.subplots()
  if np.issubdtype(labels.dtype, np.floating):
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, s=8, cmap="viridis")
    fig.colorbar(sc, ax=ax, label=label_name)
  else:
    classes, idx = np.unique(labels, return_inverse=True)
    cmap = matplotlib.colormaps["tab20" if len(classes) > 10 else "tab10"]
    for k, cls in enumerate(classes):
      name = class_names[k] if class_names is not None else str(cls)
      ax.scatter(xy[idx == k, 0], xy[idx == k, 1], s=8,
                 color=cmap(k % cmap.N), label=name)
    if len(classes) <= max_legend:
      ax.legend(title=label_name, fontsize=7, markerscale=1.5,
                loc="center left", bbox_to_anchor=(1.0, 0.5))
  ax.set_title(title or f"{method.upper()} of latents by {label_name}",
               fontsize=10)
  ax.set_xticks([])
  ax.set_yticks([])
  fig.tight_layout()
  return grids.save_figure(fig, path, dpi=dpi)
