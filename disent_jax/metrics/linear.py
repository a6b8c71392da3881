"""Linear baselines: ridge regression and PCA on a principal subspace.

Host-only numpy, shared by the methods' baseline rows ("what does a linear
model of the same data get?"):

  * `fit_ridge(x, y, alpha=...)`: ridge regression y ~ x, solved on the
    centred inputs' principal subspace (thin SVD through the smaller Gram
    matrix), with the penalty relative to the mean squared singular value;
  * `select_ridge`: that strength chosen on groups (subjects) held out from
    the fit;
  * `fit_pca`: projection on the first k principal directions.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

RIDGE_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclasses.dataclass(frozen=True)
class LinearMap:
  """y = mean_y + (x - mean_x) W, fitted in the principal subspace of x.

  Attributes:
    mean_x: [D] input mean.
    mean_y: [D'] target mean.
    basis: [D, r] orthonormal principal directions of the inputs.
    weights: [r, D'] regression from subspace coordinates to targets.
  """
  mean_x: np.ndarray
  mean_y: np.ndarray
  basis: np.ndarray
  weights: np.ndarray

  def __call__(self, x: np.ndarray) -> np.ndarray:
    """[N, D] -> [N, D']."""
    return self.mean_y + ((x - self.mean_x) @ self.basis) @ self.weights


class Subspace(NamedTuple):
  """Thin SVD of centred inputs: x - mean = u diag(s) v^T."""
  mean: np.ndarray
  u: np.ndarray
  s: np.ndarray
  v: np.ndarray


def principal_subspace(x: np.ndarray) -> Subspace:
  """The SVD through the smaller Gram matrix (3x faster than `svd` here);
  directions below 1e-6 of the largest singular value are dropped."""
  x = np.asarray(x, np.float64)
  mean = x.mean(axis=0)
  xc = x - mean
  small_n = xc.shape[0] <= xc.shape[1]
  w, vecs = np.linalg.eigh(xc @ xc.T if small_n else xc.T @ xc)
  order = np.argsort(w)[::-1]
  s = np.sqrt(np.maximum(w[order], 0.0))
  keep = s > s[0] * 1e-6
  s, vecs = s[keep], vecs[:, order[keep]]
  if small_n:
    u, v = vecs, (xc.T @ vecs) / s
  else:
    u, v = (xc @ vecs) / s, vecs
  return Subspace(mean, u, s, v)


def ridge_on_subspace(sub: Subspace, y: np.ndarray, alpha: float
                      ) -> LinearMap:
  """Ridge regression of targets y [N, D'] on the inputs of `sub`."""
  mean_y = y.mean(axis=0)
  lam = alpha * np.mean(sub.s ** 2)
  # In subspace coordinates c = (x - mean) V = U S: W = (S^2 + lam)^-1 S U^T y.
  weights = (sub.s / (sub.s ** 2 + lam))[:, None] * (sub.u.T @ (y - mean_y))
  return LinearMap(sub.mean, mean_y, sub.v, weights)


def fit_ridge(x: np.ndarray, y: np.ndarray, *, alpha: float) -> LinearMap:
  """Ridge regression y ~ x with penalty alpha * mean squared singular value.

  Args:
    x: [N, D] inputs.
    y: [N, D'] targets.
    alpha: relative ridge strength (0: least squares on the full subspace).

  Returns:
    The `LinearMap`.
  """
  return ridge_on_subspace(principal_subspace(x), np.asarray(y, np.float64),
                           alpha)


def fit_pca(x: np.ndarray, *, components: int,
            subspace: Subspace | None = None) -> LinearMap:
  """Projection of [N, D] inputs on their first `components` principal
  directions (a reconstruction map D -> D)."""
  sub = principal_subspace(x) if subspace is None else subspace
  v = sub.v[:, :components]
  return LinearMap(sub.mean, sub.mean, v, v.T)


def select_ridge(x: np.ndarray, targets: tuple[np.ndarray, ...],
                 groups: np.ndarray, *,
                 grid: tuple[float, ...] = RIDGE_GRID,
                 holdout_fraction: float = 0.2) -> tuple[float, ...]:
  """For each target, the ridge strength with the lowest held-out error.

  Args:
    x: [N, D] inputs; targets: arrays [N, D'] to regress.
    groups: [N] subject labels; a `holdout_fraction` of them (every k-th)
      is held out from the fit.
    grid: candidate relative strengths.
    holdout_fraction: fraction of groups held out.

  Returns:
    The best strength of `grid` per target.
  """
  names = np.unique(groups)
  step = max(2, int(round(1 / holdout_fraction)))
  held = np.isin(groups, names[::step])
  if held.all() or not held.any():
    return tuple(grid[len(grid) // 2] for _ in targets)
  sub = principal_subspace(x[~held])
  best = []
  for y in targets:
    y = np.asarray(y, np.float64)
    errors = [np.mean((ridge_on_subspace(sub, y[~held], a)(x[held])
                       - y[held]) ** 2)
              for a in grid]
    best.append(grid[int(np.argmin(errors))])
  return tuple(best)
