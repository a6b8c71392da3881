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
from typing import Any, Mapping

import numpy as np

from disent_jax.metrics import linear
from disent_jax.metrics import mesh_errors

# The linear models live in `metrics.linear`; these names stay importable.
LinearMap = linear.LinearMap
fit_ridge = linear.fit_ridge
fit_pca = linear.fit_pca
select_ridge = linear.select_ridge


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
    sub = linear.principal_subspace(x)
    return cls(mean_face=sub.mean.reshape(-1, 3),
               pca=fit_pca(x, components=components, subspace=sub),
               ridge_neutral=linear.ridge_on_subspace(sub, y_neu, alpha_neu),
               ridge_subject_mean=linear.ridge_on_subspace(sub, y_mean,
                                                           alpha_mean),
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
