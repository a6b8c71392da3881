"""Face verification: same/different pair scores, ROC-AUC, EER, TAR@FAR.

Given embeddings and identity labels, every unordered pair of distinct
samples is scored by cosine similarity and labelled same (1) or different
(0) identity; `roc_auc` is the probability that a random same pair scores
above a random different pair (ties count one half: the Mann-Whitney U
statistic), the area under the ROC curve. Host-side numpy: pair counts grow
quadratically, the computation is a sort.
"""

import numpy as np


def pair_scores(embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
  """Cosine similarities and same-identity flags of all unordered pairs.

  Args:
    embeddings: [N, D] (N >= 2).
    labels: [N] identity labels.

  Returns:
    (scores [N(N-1)/2] float64, same [N(N-1)/2] bool).
  """
  e = np.asarray(embeddings, np.float64)
  y = np.asarray(labels)
  if e.ndim != 2 or e.shape[0] < 2 or y.shape != (e.shape[0],):
    raise ValueError(f"embeddings must be [N>=2, D] and labels [N], got "
                     f"{e.shape} and {y.shape}.")
  e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
  i, j = np.triu_indices(e.shape[0], k=1)
  return np.sum(e[i] * e[j], axis=1), y[i] == y[j]


def roc_auc(scores, positive) -> float:
  """Area under the ROC curve of `scores` for the boolean `positive`.

  Args:
    scores: [M] higher means more likely positive.
    positive: [M] bool, with at least one of each class.

  Returns:
    AUC in [0, 1] (0.5: chance), ties counted one half.
  """
  s = np.asarray(scores, np.float64)
  p = np.asarray(positive, bool)
  n_pos, n_neg = int(p.sum()), int((~p).sum())
  if s.shape != p.shape or n_pos == 0 or n_neg == 0:
    raise ValueError("roc_auc needs matching [M] arrays with both classes "
                     f"(got {s.shape}, {p.shape}, {n_pos} positive).")
  # Mid-ranks handle ties.
  order = np.argsort(s, kind="mergesort")
  sorted_s = s[order]
  ranks = np.empty_like(s)
  _, first, counts = np.unique(sorted_s, return_index=True,
                               return_counts=True)
  mid = first + (counts - 1) / 2.0 + 1.0
  ranks[order] = np.repeat(mid, counts)
  u = ranks[p].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))


def roc_curve(scores, positive) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(false accept rate, true accept rate, threshold) at every distinct score.

  Accept means score >= threshold; thresholds decrease, rates increase.
  """
  s = np.asarray(scores, np.float64)
  p = np.asarray(positive, bool)
  order = np.argsort(-s, kind="mergesort")
  s, p = s[order], p[order]
  last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
  tar = np.cumsum(p)[last] / max(p.sum(), 1)
  far = np.cumsum(~p)[last] / max((~p).sum(), 1)
  return far, tar, s[last]


def verification_report(embeddings, labels, *,
                        fars=(1e-2, 1e-3)) -> dict[str, float]:
  """AUC, equal error rate and TAR at the given FARs over all pairs.

  Returns:
    {"auc", "eer", "tar@far=<f>" for each f, "same_mean", "different_mean"
    (mean cosine of same / different pairs), "pairs_same",
    "pairs_different"}.
  """
  scores, same = pair_scores(embeddings, labels)
  far, tar, _ = roc_curve(scores, same)
  frr = 1.0 - tar
  k = int(np.argmin(np.abs(far - frr)))
  out = {"auc": roc_auc(scores, same), "eer": float((far[k] + frr[k]) / 2),
         "same_mean": float(scores[same].mean()),
         "different_mean": float(scores[~same].mean()),
         "pairs_same": int(same.sum()), "pairs_different": int((~same).sum())}
  for f in fars:
    ok = far <= f
    out[f"tar@far={f:g}"] = float(tar[ok].max()) if ok.any() else 0.0
  return out
