"""Verification metrics against brute-force pair counting."""

import numpy as np
import pytest

from disent_jax.metrics import verification


def _auc_brute(scores, positive):
  pos, neg = scores[positive], scores[~positive]
  diff = pos[:, None] - neg[None, :]
  return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def test_auc_matches_brute_force_with_ties():
  rng = np.random.default_rng(0)
  scores = np.round(rng.normal(size=300), 1)  # many ties
  positive = rng.uniform(size=300) < 0.3
  scores[positive] += 0.5
  assert verification.roc_auc(scores, positive) == pytest.approx(
      _auc_brute(scores, positive), abs=1e-12)


def test_auc_extremes_and_errors():
  s = np.arange(10.0)
  assert verification.roc_auc(s, s >= 5) == 1.0
  assert verification.roc_auc(-s, s >= 5) == 0.0
  assert verification.roc_auc(np.zeros(10), s >= 5) == 0.5
  with pytest.raises(ValueError, match="both classes"):
    verification.roc_auc(s, np.ones(10, bool))


def test_pairs_and_report_on_separable_clusters():
  rng = np.random.default_rng(1)
  centres = rng.normal(size=(5, 16)) * 3
  labels = np.repeat(np.arange(5), 4)
  emb = centres[labels] + rng.normal(size=(20, 16)) * 0.1
  scores, same = verification.pair_scores(emb, labels)
  assert scores.shape == (190,) and same.sum() == 5 * 6
  i, j = np.triu_indices(20, 1)
  k = 7
  ref = emb[i[k]] @ emb[j[k]] / np.linalg.norm(emb[i[k]]) / np.linalg.norm(
      emb[j[k]])
  assert scores[k] == pytest.approx(ref)
  rep = verification.verification_report(emb, labels)
  assert rep["auc"] == 1.0 and rep["eer"] == 0.0
  assert rep["tar@far=0.01"] == 1.0
  # Random embeddings: chance.
  rep = verification.verification_report(rng.normal(size=(60, 8)),
                                         np.repeat(np.arange(12), 5))
  assert 0.35 < rep["auc"] < 0.65


def test_roc_curve_is_monotone():
  rng = np.random.default_rng(2)
  s = rng.normal(size=100)
  p = rng.uniform(size=100) < 0.5
  far, tar, thr = verification.roc_curve(s, p)
  assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)
  assert np.all(np.diff(thr) < 0) and far[-1] == 1.0 and tar[-1] == 1.0
  # Trapezoid area equals the rank AUC.
  area = np.trapezoid(np.r_[0, tar], np.r_[0, far])
  assert area == pytest.approx(verification.roc_auc(s, p), abs=1e-12)
