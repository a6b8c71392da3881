"""The MICC-style protocol of gcn_recon (methods/gcn_recon/micc.py)."""

import functools

import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.data import onthefly
from disent_jax.methods.gcn_recon import micc
from disent_jax.synthface import morphable as mm_lib
from disent_jax.synthface import sampling


@functools.lru_cache(maxsize=None)
def _data():
  return micc.generate(micc.Protocol(first_subject=500, num_subjects=2,
                                     size=32))


def test_views_are_the_subjects_own_neutral_faces_at_three_yaws():
  d = _data()
  assert d["images"].shape == (2, 2, 3, 32, 32, 3)
  assert d["scan"].shape[1] > d["neutral"].shape[1]  # Denser scans.
  np.testing.assert_array_equal(d["subject"], [500, 501])
  # The nose tip (landmark 30) moves with the yaw: left, centre, right.
  nose_x = d["landmarks_2d"][..., micc.NOSE_TIP, 0]
  assert np.all(np.diff(nose_x, axis=-1) != 0)
  assert np.all(np.sign(np.diff(nose_x, axis=-1))
                == np.sign(np.diff(nose_x, axis=-1))[..., :1])
  # The indoor condition's lights, occluders and framing differ.
  coop, indoor = d["images"][:, 0], d["images"][:, 1]
  assert not np.allclose(coop, indoor)
  # The scan is the exact neutral: the image-mesh neutral lies on it.
  err = micc.subject_errors(d["neutral"], _faces(), d)
  assert np.all(err < 0.3), err


def _faces():
  return np.asarray(onthefly.world_morphable("1k").faces)


def test_table_orders_exact_fit_and_template():
  d = _data()
  mm = onthefly.world_morphable("1k")
  fit = np.asarray(mm_lib.reconstruct(mm, *mm_lib.fit(
      mm, jnp.asarray(d["neutral"]))))
  per_subject = 2 * 3  # Conditions x views of one subject.
  table = micc.evaluate({
      "exact": lambda x: np.repeat(d["neutral"], per_subject, 0),
      "fit": lambda x: np.repeat(fit, per_subject, 0),
      "template": lambda x: np.repeat(np.asarray(mm.mean)[None], len(x), 0),
  }, _faces(), d)
  for cond in micc.CONDITIONS:
    exact, fit_e, tpl = (table[m][f"{cond}/mean"]
                         for m in ("exact", "fit", "template"))
    assert exact < fit_e < tpl, (cond, exact, fit_e, tpl)
    assert tpl > 3 * exact
  errs = micc.subject_errors(np.asarray(
      np.repeat(np.asarray(mm.mean)[None], 2, 0)), _faces(), d)
  assert table["template"]["cooperative/mean"] == pytest.approx(errs.mean())
  assert table["template"]["cooperative/std"] == pytest.approx(errs.std())
  md = micc.markdown(table)
  assert md.splitlines()[0].startswith("| Method | Cooperative Mean")
  assert len(md.splitlines()) == 2 + 3


def test_view_predictions_are_averaged_per_condition():
  d = _data()
  mm = onthefly.world_morphable("1k")
  tpl = np.asarray(mm.mean)
  # Views 0 and 2 off by a +-bump (not rigid, so ICP keeps it): their
  # mean is the exact neutral.
  delta = np.zeros_like(tpl)
  r2 = np.sum((tpl[:, :2] - tpl[:, :2].mean(0)) ** 2, axis=-1)
  delta[:, 2] = 4.0 * np.exp(-r2 / (2 * 25.0 ** 2))

  def shapes(x):
    out = np.repeat(d["neutral"], 6, 0).reshape(2, 2, 3, -1, 3).copy()
    out[:, :, 0] += delta
    out[:, :, 2] -= delta
    return out.reshape(-1, tpl.shape[0], 3)

  table = micc.evaluate({"offset": shapes}, _faces(), d)
  exact = micc.subject_errors(d["neutral"], _faces(), d).mean()
  assert table["offset"]["cooperative/mean"] == pytest.approx(exact, abs=1e-6)
  assert table["offset"]["cooperative/single_view_mean"] > exact


def test_scan_subjects_are_never_image_subjects():
  cfg = onthefly.CONFIGS["synthface_scans"]["tiny"]
  gen = onthefly.generator("synthface_scans", "tiny")
  scan_ids = np.stack([r["identity"] for r in gen.chunk(0)])[
      :cfg.num_subjects]
  image_ids = np.stack([np.asarray(sampling.subject_identity(cfg.seed, s))
                        for s in range(50)])
  d = np.linalg.norm(scan_ids[:, None] - image_ids[None], axis=-1)
  assert d.min() > 1.0
  np.testing.assert_allclose(
      scan_ids[0], sampling.subject_identity(cfg.seed, cfg.first_subject),
      rtol=1e-6)
