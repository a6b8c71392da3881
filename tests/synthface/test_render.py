"""Tests of SynthFace rendering and its ground-truth maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import transform

from disent_jax.synthface import albedo as alb
from disent_jax.synthface import identity as idn
from disent_jax.synthface import morphable
from disent_jax.synthface import occluder as occ
from disent_jax.synthface import render as rnd
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl
from disent_jax.synthface import world as world_lib

SIZE = 64


@pytest.fixture(scope="module")
def scene():
  t = tpl.template("1k")
  p = sampling.subject_identity(0, 2)
  neutral = np.asarray(jax.jit(lambda q: idn.neutral(q, t))(p))
  colours = np.asarray(jax.jit(lambda q: alb.albedo(q, t))(p))
  o_verts, o_col = jax.jit(occ.occluder_mesh)(p, 2, jnp.zeros(4))
  _, o_faces, _ = occ.topology()
  faces = np.concatenate([t.faces, o_faces + t.num_vertices])
  sh = sampling.sample_sh(jax.random.PRNGKey(3))
  bg = sampling.sample_background(jax.random.PRNGKey(4), SIZE)

  def run(verts, cols, pose, shift):
    return rnd.render(verts, cols, faces, landmarks=t.landmarks,
                      num_face_faces=t.faces.shape[0], pose=pose, sh=sh,
                      background=bg, centre=rnd.framing(verts[:len(neutral)]),
                      size=SIZE, scale_factor=1.0, shift=shift)

  return dict(t=t, neutral=neutral, colours=colours,
              o_verts=np.asarray(o_verts), o_col=np.asarray(o_col),
              faces=faces, sh=sh, bg=np.asarray(bg), run=jax.jit(run))


def _render(scene, pose, *, glasses=False, shift=(0.0, 0.0)):
  o_verts = scene["o_verts"]
  if not glasses:
    o_verts = np.broadcast_to(o_verts[:1], o_verts.shape)
  verts = np.concatenate([scene["neutral"], o_verts]).astype(np.float32)
  cols = np.concatenate([scene["colours"], scene["o_col"]])
  out = scene["run"](verts, cols, jnp.asarray(pose, jnp.float32),
                     jnp.asarray(shift, jnp.float32))
  return verts, {k: np.asarray(v) for k, v in out.items()}


def _numpy_screen(verts, centre, pose, shift):
  pitch, yaw, roll = pose
  rot = transform.Rotation.from_euler("ZYX", [roll, yaw, pitch]).as_matrix()
  s = rnd.FACE_FRACTION * SIZE / rnd.FACE_HEIGHT_MM
  p = (verts - centre) @ rot.T * s
  t = SIZE * (0.5 + np.asarray(shift))
  return np.stack([p[:, 0] + t[0], t[1] - p[:, 1], -p[:, 2]], 1)


def _coverage(screen, faces):
  """Pixel centres inside some non-degenerate triangle, with a margin."""
  ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5
  px, py = xs.ravel()[:, None], ys.ravel()[:, None]
  tri = screen[faces][:, :, :2]
  a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
  area = ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
          - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
  keep = np.abs(area) > 1e-9
  a, b, c, area = a[keep], b[keep], c[keep], area[keep]

  def edge(p, q):
    return ((q[:, 0] - p[:, 0])[None] * (py - p[:, 1][None])
            - (q[:, 1] - p[:, 1])[None] * (px - p[:, 0][None]))

  sign = np.sign(area)[None]
  lengths = [np.hypot(*(q - p).T)[None] for p, q in ((b, c), (c, a), (a, b))]
  ws = [edge(b, c) * sign / lengths[0], edge(c, a) * sign / lengths[1],
        edge(a, b) * sign / lengths[2]]
  inside_in = np.all([w >= 1e-3 for w in ws], axis=0).any(1)
  inside_out = np.all([w >= -1e-3 for w in ws], axis=0).any(1)
  return inside_in.reshape(SIZE, SIZE), inside_out.reshape(SIZE, SIZE)


@pytest.mark.parametrize("pose", [(0.0, 0.0, 0.0), (0.2, -0.5, 0.15)])
def test_landmarks_are_projected_landmark_vertices(scene, pose):
  verts, out = _render(scene, pose, shift=(0.03, -0.02))
  centre = np.asarray(rnd.framing(jnp.asarray(scene["neutral"])))
  screen = _numpy_screen(verts.astype(np.float64), centre, pose,
                         (0.03, -0.02))
  lm = scene["t"].landmarks
  np.testing.assert_allclose(out["landmarks_2d"], screen[lm, :2], atol=1e-3)
  np.testing.assert_allclose(out["screen"], screen, atol=1e-3)


def test_mask_equals_rasterizer_coverage(scene):
  pose = (0.1, 0.4, -0.1)
  verts, out = _render(scene, pose)
  centre = np.asarray(rnd.framing(jnp.asarray(scene["neutral"])))
  screen = _numpy_screen(verts.astype(np.float64), centre, pose, (0, 0))
  sure, maybe = _coverage(screen, scene["faces"])
  mask = out["mask"]
  assert np.all(mask[sure]) and not np.any(mask[~maybe])
  assert sure.sum() > 0.3 * SIZE * SIZE
  np.testing.assert_array_equal(out["face_mask"], mask)
  assert not out["occluder_mask"].any()


def test_maps_are_consistent(scene):
  _, out = _render(scene, (0.0, 0.3, 0.0))
  m = out["mask"]
  n = out["normals"]
  np.testing.assert_allclose(np.linalg.norm(n[m], axis=-1), 1.0, atol=1e-4)
  assert np.all(n[~m] == 0) and np.all(out["depth"][~m] == 0)
  assert np.mean(n[m][:, 2] > 0) > 0.98
  expected = np.clip(out["albedo"] * out["shading"], 0, 1)
  np.testing.assert_allclose(out["image"][m], expected[m], atol=1e-5)
  np.testing.assert_allclose(out["image"][~m], scene["bg"][~m], atol=1e-6)
  assert out["albedo"][m].min() >= 0 and out["albedo"][m].max() <= 1


def test_landmark_visibility(scene):
  _, out = _render(scene, (0.0, 0.0, 0.0))
  vis = out["landmarks_visible"]
  assert vis[27:68].all()
  lm2 = out["landmarks_2d"]
  scale = rnd.FACE_FRACTION * SIZE / rnd.FACE_HEIGHT_MM
  for k in np.flatnonzero(vis):
    r, c = int(lm2[k, 1]), int(lm2[k, 0])
    if out["mask"][r, c]:
      z = out["screen"][scene["t"].landmarks[k], 2] / scale
      assert z <= out["depth"][r, c] + rnd.LANDMARK_DEPTH_TOL_MM + 1e-3
  # Turned to the side, the far half of the jaw line hides behind the face.
  _, side = _render(scene, (0.0, 0.9, 0.0))
  jaw = side["landmarks_visible"][:17]
  assert jaw[:4].all() and not jaw[13:].any()
  assert side["landmarks_visible"][30]


def test_glasses_occlude_the_eyes(scene):
  _, out = _render(scene, (0.0, 0.0, 0.0), glasses=True)
  assert out["occluder_mask"].sum() > 20
  np.testing.assert_array_equal(out["face_mask"],
                                out["mask"] & ~out["occluder_mask"])
  vis = out["landmarks_visible"]
  assert not vis[[37, 38, 43, 44]].any()
  assert vis[[30, 48, 54]].all()


def test_sizes_and_framing(scene):
  assert rnd.SIZES == (64, 128, 256)
  rot, scale, trans = rnd.camera_params(jnp.zeros(3), size=128,
                                        scale_factor=1.0, shift=jnp.zeros(2))
  np.testing.assert_allclose(rot, np.eye(3), atol=1e-7)
  np.testing.assert_allclose(scale, 0.8 * 128 / 190.0, rtol=1e-6)
  np.testing.assert_allclose(trans, [64.0, 64.0])
  with pytest.raises(ValueError, match="background"):
    rnd.render(scene["neutral"], scene["colours"], scene["t"].faces,
               landmarks=scene["t"].landmarks, num_face_faces=1,
               pose=jnp.zeros(3), sh=scene["sh"], background=jnp.zeros((8, 8)),
               centre=jnp.zeros(3), size=64)


def test_render_a_linear_3dmm(scene):
  """Bring-your-own 3DMM: a model built from arrays renders like the mesh."""
  t, neutral = scene["t"], scene["neutral"]
  v = len(neutral)
  rng = np.random.default_rng(0)
  basis, _ = np.linalg.qr(rng.normal(size=(3 * v, 3)))
  model = morphable.Morphable(
      mean=neutral, id_basis=basis[:, :2].astype(np.float32),
      id_std=np.ones(2, np.float32), exp_basis=basis[:, 2:].astype(np.float32),
      exp_std=np.ones(1, np.float32), tex_mean=scene["colours"],
      tex_basis=basis[:, :1].astype(np.float32),
      tex_std=np.ones(1, np.float32), faces=t.faces, landmarks=t.landmarks)
  out = world_lib.render_morphable(
      model, np.zeros(2), np.zeros(1), np.zeros(1), pose=jnp.zeros(3),
      sh=scene["sh"], background=jnp.asarray(scene["bg"]), size=SIZE)
  _, ref = _render(scene, (0.0, 0.0, 0.0))
  np.testing.assert_allclose(np.asarray(out["landmarks_2d"]),
                             ref["landmarks_2d"], atol=1e-3)
  assert np.mean(np.asarray(out["mask"]) == ref["mask"]) > 0.99
