"""Tests of SynthFace albedo."""

import jax
import numpy as np
import pytest

from disent_jax.synthface import albedo as alb
from disent_jax.synthface import identity as idn
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl


@pytest.fixture(scope="module")
def t1k():
  return tpl.template("1k")


@pytest.fixture(scope="module")
def albedo_fn(t1k):
  return jax.jit(lambda p: alb.albedo(p, t1k))


def test_symmetric_and_in_range(t1k, albedo_fn):
  for s in range(4):
    a = np.asarray(albedo_fn(sampling.subject_identity(0, s)))
    assert a.shape == (t1k.num_vertices, 3)
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_allclose(a[t1k.mirror], a, atol=1e-6)


def test_depends_on_appearance_parameters_only(albedo_fn):
  p = np.asarray(sampling.subject_identity(0, 1))
  q = p.copy()
  q[:idn.NUM_GEOMETRY] = -q[:idn.NUM_GEOMETRY]
  np.testing.assert_array_equal(np.asarray(albedo_fn(p)),
                                np.asarray(albedo_fn(q)))
  r = p.copy()
  r[idn.IDENTITY_PARAMS.index("skin_tone")] += 1.0
  assert np.abs(np.asarray(albedo_fn(r)) - np.asarray(albedo_fn(p))).max(
  ) > 0.05


def test_patterns_where_expected(t1k, albedo_fn):
  a = np.asarray(albedo_fn(np.zeros(idn.NUM_IDENTITY, np.float32)))
  lm = t1k.landmarks
  names = tpl.REGION_NAMES
  skin = np.median(a[t1k.regions == names.index("forehead")], axis=0)
  lips = a[lm[[50, 52, 57, 62, 66]]]
  # Lips are redder than skin: lower green/red ratio.
  assert np.all(lips[:, 1] / lips[:, 0] < skin[1] / skin[0] - 0.05)
  brows = a[lm[[19, 20, 23, 24]]]
  assert np.all(brows.mean(1) < skin.mean() - 0.1)
  # Eye centres show iris/pupil: much darker than the sclera corners.
  eye_c = np.argmin(np.linalg.norm(
      t1k.uv - np.array([tpl.U_EYE, tpl.V_EYE]), axis=1))
  assert a[eye_c].mean() < 0.2
  teeth = t1k.teeth > 0.9
  assert teeth.any() and np.all(a[teeth].mean(1) > 0.7)
  cavity = t1k.cavity & (t1k.teeth < 0.05)
  assert np.all(a[cavity].mean(1) < 0.3)
