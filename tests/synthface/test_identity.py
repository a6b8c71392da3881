"""Tests of SynthFace identity: parameters -> neutral faces in mm."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import interpolate

from disent_jax.synthface import identity as idn
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl


@pytest.fixture(scope="module")
def t1k():
  return tpl.template("1k")


@pytest.fixture(scope="module")
def population(t1k):
  params = jax.vmap(sampling.subject_identity, in_axes=(None, 0))(
      0, jnp.arange(32))
  neutral = jax.jit(jax.vmap(lambda p: idn.neutral(p, t1k)))(params)
  return np.asarray(params), np.asarray(neutral)


def test_subjects_are_deterministic_and_distinct():
  a = np.asarray(sampling.subject_identity(3, 7))
  b = np.asarray(jax.jit(sampling.subject_identity)(3, 7))
  np.testing.assert_array_equal(a, b)
  assert a.shape == (idn.NUM_IDENTITY,)
  assert 20 <= idn.NUM_IDENTITY <= 40
  assert not np.allclose(a, sampling.subject_identity(3, 8))
  assert not np.allclose(a, sampling.subject_identity(4, 7))
  assert np.all(np.abs(a) <= sampling.IDENTITY_TRUNCATION)


def test_physical_is_mean_plus_std():
  z = np.linspace(-1.0, 1.0, idn.NUM_IDENTITY).astype(np.float32)
  p = idn.physical(z)
  for i, name in enumerate(list(p)):
    mean, std = idn._PHYSICAL[name]
    np.testing.assert_allclose(p[name], mean + std * z[i], rtol=1e-6)
  with pytest.raises(ValueError, match="shape"):
    idn.physical(np.zeros(3))


def test_pchip_matches_scipy_inside():
  xk = np.array([-1.1, -1.0, -0.56, -0.34, 0.2, 0.37, 1.0, 1.1])
  yk = np.array([-120.0, -112.0, -70.0, -50.0, 0.0, 15.0, 72.0, 80.0])
  x = np.linspace(-1.0, 1.0, 301)
  ours = np.asarray(idn._pchip(jnp.asarray(x, jnp.float32),
                               jnp.asarray(xk, jnp.float32),
                               jnp.asarray(yk, jnp.float32)))
  ref = interpolate.PchipInterpolator(xk, yk)(x)
  np.testing.assert_allclose(ours, ref, atol=2e-4)
  assert np.all(np.diff(ours) > 0)


def test_neutral_jit_matches_eager(t1k):
  p = sampling.subject_identity(0, 1)
  eager = np.asarray(idn.neutral(p, t1k))
  jitted = np.asarray(jax.jit(lambda q: idn.neutral(q, t1k))(p))
  np.testing.assert_allclose(eager, jitted, atol=1e-3)
  assert np.all(np.isfinite(eager))


def test_closed_form_feature_placement(t1k, population):
  params, neutral = population
  lm = t1k.landmarks
  face = ~t1k.cavity
  uv = jnp.asarray(t1k.uv)
  for z, v in zip(params[:8], neutral[:8]):
    p = {k: float(x) for k, x in idn.physical(z).items()}
    xy = np.asarray(idn.warp(uv, z))
    height = p["face_height"] * (
        p["nose_length"] + p["philtrum_length"] + p["chin_length"]
        + p["brow_height"] + p["forehead_height"])
    np.testing.assert_allclose(xy[face, 1].max() - xy[lm[8], 1], height,
                               atol=0.5)
    np.testing.assert_allclose(xy[lm[8], 1], -p["face_height"] * (
        p["nose_length"] + p["philtrum_length"] + p["chin_length"]),
                               atol=0.2)
    feats = np.asarray(idn.features(z))
    np.testing.assert_allclose(feats[idn.EYE_CENTRE_R, 0], p["eye_spacing"],
                               atol=0.5)
    eye_x = 0.5 * (v[lm[42], 0] + v[lm[45], 0])
    assert abs(eye_x - p["eye_spacing"]) < 0.15 * p["eye_spacing"]
    # The nose tip is the most projecting point.
    assert np.argmax(v[face, 2]) in np.flatnonzero(
        np.linalg.norm(v[face, :2] - v[lm[30], :2], axis=1) < 8.0)


def test_neutral_surface_faces_the_viewer(t1k):
  rng = np.random.default_rng(1)
  trunc = sampling.IDENTITY_TRUNCATION
  params = trunc * np.sign(rng.normal(size=(48, idn.NUM_IDENTITY)))
  verts = np.asarray(jax.jit(jax.vmap(lambda p: idn.neutral(p, t1k)))(
      jnp.asarray(params, jnp.float32)), np.float64)
  f = t1k.faces[:t1k.num_face_faces]
  tri = verts[:, f]
  n = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
  # Every triangle of the face surface looks towards +z (a graph surface
  # with tilted profile parts), none is degenerate.
  assert (n[..., 2] / np.linalg.norm(n, axis=-1)).min() > 0.0
  assert 0.5 * np.linalg.norm(n, axis=-1).min() > 0.05


def test_proportions_in_human_ranges(t1k, population):
  _, neutral = population
  lm = t1k.landmarks
  face = neutral[:, ~t1k.cavity]
  height = face[..., 1].max(1) - face[..., 1].min(1)
  width = face[..., 0].max(1) - face[..., 0].min(1)
  dist = lambda a, b: np.linalg.norm(neutral[:, lm[a]] - neutral[:, lm[b]],
                                     axis=-1)
  inter_ocular = dist(36, 45)
  intercanthal = dist(39, 42)
  eye_width = 0.5 * (dist(36, 39) + dist(42, 45))
  mouth = dist(48, 54)
  nose = dist(31, 35)
  assert abs(height.mean() - 190.0) < 10.0
  assert abs(width.mean() - 140.0) < 8.0
  assert np.all((height > 160) & (height < 220))
  assert np.all((width > 115) & (width < 170))
  assert np.all((height / width > 1.1) & (height / width < 1.6))
  assert np.all((inter_ocular / width > 0.55) & (inter_ocular / width < 0.8))
  # Rule of fifths: the gap between the eyes is about one eye wide.
  assert np.all((intercanthal / eye_width > 0.6) &
                (intercanthal / eye_width < 1.6))
  assert np.all((mouth / nose > 1.2) & (mouth / nose < 2.8))


def test_neutral_is_symmetric(t1k, population):
  _, neutral = population
  mirrored = neutral[:, t1k.mirror] * np.array([-1.0, 1.0, 1.0])
  np.testing.assert_allclose(mirrored, neutral, atol=1e-3)


def test_warp_never_folds(t1k):
  rng = np.random.default_rng(0)
  trunc = sampling.IDENTITY_TRUNCATION
  corners = trunc * np.sign(rng.normal(size=(48, idn.NUM_IDENTITY)))
  params = np.concatenate([corners, trunc * np.ones((1, idn.NUM_IDENTITY)),
                           -trunc * np.ones((1, idn.NUM_IDENTITY))])
  xy = jax.jit(jax.vmap(lambda p: idn.warp(jnp.asarray(t1k.uv), p)))(
      jnp.asarray(params, jnp.float32))
  xy = np.asarray(xy, np.float64)
  f = t1k.faces[:t1k.num_face_faces]
  a, b, c = xy[:, f[:, 0]], xy[:, f[:, 1]], xy[:, f[:, 2]]
  area = ((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
          - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))
  assert area.min() > 0.0


def test_identity_acts_nonlinearly(t1k, population):
  params, neutral = population
  mid = np.asarray(jax.jit(jax.vmap(lambda p: idn.neutral(p, t1k)))(
      0.5 * (params[:16] + params[16:])))
  chord = 0.5 * (neutral[:16] + neutral[16:])
  defect = np.linalg.norm(mid - chord, axis=-1).mean(axis=1)
  spread = np.linalg.norm(neutral[:16] - neutral[16:], axis=-1).mean(axis=1)
  # Clearly nonlinear (float noise is ~1e-5 mm), but mostly explained by the
  # chord.
  assert np.all(defect > 0.02)
  assert np.all(defect < 0.2 * spread)
