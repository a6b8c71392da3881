"""Baselines beside every paper 002 result, fitted on the training set.

Each one answers "what does a trivial or linear model of the same data
get?", in the metrics of the table (mm):

  * `input_as_neutral`: each input face is its own neutral (AVD_neu, E_dis);
  * `mean_face`: the training mean face for everything (E_rec, AVD_neu;
    E_dis = 0, which is why E_dis alone is no evidence);
  * `pca`: the input projected on the first k principal components of the
    training faces, k = the model's latent size (E_rec);
  * `ridge_neutral`: a ridge regression from a face to its ground-truth
    neutral (the +ne-gt analogue; AVD_neu, E_dis);
  * `ridge_subject_mean`: a ridge regression from a face to the mean of its
    subject's training faces, which needs no neutrals (the -ne-gt
    analogue; AVD_neu, E_dis).

Regressions are fitted on the centred faces' principal subspace (thin SVD
of at most `max_examples` training faces, through the Gram matrix); the
ridge strength is chosen on training subjects held out from the fit.
Host-only numpy.
"""

import dataclasses
from typing import Any, Mapping, NamedTuple

import numpy as np

from disent_jax.metrics import mesh_errors

_RIDGE_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def read_arrays(source: Any, *, max_examples: int | None = None,
                keys: tuple[str, ...] = ("vertices", "neutral", "subject")
                ) -> dict[str, np.ndarray]:
  """Stacks `keys` of (at most `max_examples`, evenly spaced) examples."""
  n = len(source)
  if n == 0:
    raise ValueError("baselines: the source is empty")
  if max_examples is None or n <= max_examples:
    idx = np.arange(n)
  else:
    idx = np.unique(np.linspace(0, n - 1, max_examples).round().astype(int))
  rows = [source[int(i)] for i in idx]
  return {k: np.stack([np.asarray(r[k]) for r in rows]) for k in keys}


def subject_means(vertices: np.ndarray, subjects: np.ndarray) -> np.ndarray:
  """Each example's subject mean face: [N, V, 3] -> [N, V, 3]."""
  out = np.empty_like(vertices, dtype=np.float64)
  for s in np.unique(subjects):
    mask = subjects == s
    out[mask] = vertices[mask].mean(axis=0)
  return out


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


class _Subspace(NamedTuple):
  """Thin SVD of centred inputs: x - mean = u diag(s) v^T."""
  mean: np.ndarray
  u: np.ndarray
  s: np.ndarray
  v: np.ndarray


def _subspace(x: np.ndarray) -> _Subspace:
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
  return _Subspace(mean, u, s, v)


def _ridge(sub: _Subspace, y: np.ndarray, alpha: float) -> LinearMap:
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
  return _ridge(_subspace(x), np.asarray(y, np.float64), alpha)


def fit_pca(x: np.ndarray, *, components: int,
            subspace: _Subspace | None = None) -> LinearMap:
  """Projection of [N, D] inputs on their first `components` principal
  directions (a reconstruction map D -> D)."""
  sub = _subspace(x) if subspace is None else subspace
  v = sub.v[:, :components]
  return LinearMap(sub.mean, sub.mean, v, v.T)


def select_ridge(x: np.ndarray, targets: tuple[np.ndarray, ...],
                 groups: np.ndarray, *,
                 grid: tuple[float, ...] = _RIDGE_GRID,
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
  sub = _subspace(x[~held])
  best = []
  for y in targets:
    y = np.asarray(y, np.float64)
    errors = [np.mean((_ridge(sub, y[~held], a)(x[held]) - y[held]) ** 2)
              for a in grid]
    best.append(grid[int(np.argmin(errors))])
  return tuple(best)


def _flat(v: np.ndarray) -> np.ndarray:
  return np.asarray(v, np.float64).reshape(len(v), -1)


@dataclasses.dataclass(frozen=True)
class Baselines:
  """The fitted baselines; `metrics(test)` gives their table rows.

  Attributes:
    mean_face: [V, 3] training mean face (mm).
    pca: the PCA reconstruction map.
    ridge_neutral: face -> ground-truth neutral.
    ridge_subject_mean: face -> subject mean face.
    components: the PCA size.
    alphas: the chosen ridge strengths.
  """
  mean_face: np.ndarray
  pca: LinearMap
  ridge_neutral: LinearMap
  ridge_subject_mean: LinearMap
  components: int
  alphas: tuple[float, float]

  @classmethod
  def fit(cls, train: Any, *, components: int,
          max_examples: int = 4000) -> "Baselines":
    """Fits every baseline on a training source (or a dict of arrays with
    "vertices", "neutral" [N, V, 3] mm and "subject" [N])."""
    a = (train if isinstance(train, Mapping) else
         read_arrays(train, max_examples=max_examples))
    x = _flat(a["vertices"])
    subjects = np.asarray(a["subject"])
    y_neu = _flat(a["neutral"])
    y_mean = _flat(subject_means(np.asarray(a["vertices"], np.float64),
                                 subjects))
    alpha_neu, alpha_mean = select_ridge(x, (y_neu, y_mean), subjects)
    sub = _subspace(x)
    return cls(mean_face=sub.mean.reshape(-1, 3),
               pca=fit_pca(x, components=components, subspace=sub),
               ridge_neutral=_ridge(sub, y_neu, alpha_neu),
               ridge_subject_mean=_ridge(sub, y_mean, alpha_mean),
               components=components, alphas=(alpha_neu, alpha_mean))

  def predictions(self, vertices: np.ndarray
                  ) -> dict[str, dict[str, np.ndarray]]:
    """Each baseline's "face" and/or "identity" for faces [N, V, 3] (mm)."""
    x = _flat(vertices)
    shape = np.shape(vertices)
    mean = np.broadcast_to(self.mean_face, shape)
    return {
        "input_as_neutral": {"identity": np.asarray(vertices)},
        "mean_face": {"face": mean, "identity": mean},
        "pca": {"face": self.pca(x).reshape(shape)},
        "ridge_neutral": {"identity": self.ridge_neutral(x).reshape(shape)},
        "ridge_subject_mean": {
            "identity": self.ridge_subject_mean(x).reshape(shape)},
    }

  def metrics(self, test: Mapping[str, np.ndarray], *,
              align: str | None = None) -> dict[str, float]:
    """`baseline_<name>/<metric>` for test "vertices", "neutral",
    "subject" (and AVD_neu on non-neutral faces, `AVD_neu_expressive`)."""
    out = {}
    for name, pred in self.predictions(test["vertices"]).items():
      out.update(prediction_metrics(name, pred, test, align=align))
    return out


def prediction_metrics(name: str, pred: Mapping[str, np.ndarray],
                       test: Mapping[str, np.ndarray], *,
                       align: str | None = None) -> dict[str, float]:
  """`baseline_<name>/<metric>` of one baseline's "face" and/or "identity"
  [N, V, 3] against test "vertices", "neutral" and "subject": E_rec only
  with a face, AVD_neu (all and non-neutral faces) and E_dis only with an
  identity."""
  row = mesh_errors.mesh_metrics(
      pred.get("face", test["vertices"]), test["vertices"],
      identity=pred.get("identity"), neutral=test["neutral"],
      subject_ids=test["subject"], align=align)
  if "face" not in pred:  # The input itself: E_rec is 0 by definition.
    row = {k: v for k, v in row.items() if not k.startswith("E_rec")}
  if "identity" in pred:
    row.update(expressive_avd(
        pred["identity"], test["neutral"],
        expressive_mask(test["vertices"], test["neutral"]), align=align))
  else:
    row = {k: v for k, v in row.items() if k.startswith("E_rec")}
  return {f"baseline_{name}/{k}": v for k, v in row.items()}


def expressive_mask(vertices: np.ndarray, neutral: np.ndarray, *,
                    threshold_mm: float = 1e-3) -> np.ndarray:
  """[N] True where a face differs from its neutral (mean per-vertex
  distance above `threshold_mm`)."""
  d = np.linalg.norm(np.asarray(vertices, np.float64) -
                     np.asarray(neutral, np.float64), axis=-1).mean(axis=-1)
  return d > threshold_mm


def expressive_avd(identity: np.ndarray, neutral: np.ndarray,
                   mask: np.ndarray, *, align: str | None = None
                   ) -> dict[str, float]:
  """AVD_neu over the faces in `mask` only (`AVD_neu_expressive/mean`)."""
  if not np.any(mask):
    return {}
  row = mesh_errors.mesh_metrics(identity[mask], neutral[mask],
                                 identity=identity[mask],
                                 neutral=neutral[mask], align=align)
  return {"AVD_neu_expressive/mean": row["AVD_neu/mean"]}
