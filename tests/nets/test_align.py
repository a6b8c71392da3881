"""Five-point alignment: the similarity fit, the warp, and OpenCV parity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.nets import align


def _similarity(angle, scale, shift):
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[scale * c, -scale * s, shift[0]],
                   [scale * s, scale * c, shift[1]]], np.float32)


def test_similarity_recovers_a_known_transform():
  src = np.random.default_rng(0).uniform(0, 100, (5, 2)).astype(np.float32)
  m = _similarity(0.3, 1.7, (-12.0, 30.0))
  dst = src @ m[:, :2].T + m[:, 2]
  np.testing.assert_allclose(np.asarray(align.similarity_2d(src, dst)), m,
                             rtol=1e-4, atol=1e-3)


def test_similarity_is_the_least_squares_fit():
  rng = np.random.default_rng(1)
  src = rng.uniform(0, 100, (5, 2)).astype(np.float32)
  dst = rng.uniform(0, 100, (5, 2)).astype(np.float32)
  m = np.asarray(align.similarity_2d(src, dst))

  def cost(mat):
    return np.sum((src @ mat[:, :2].T + mat[:, 2] - dst) ** 2)

  base = cost(m)
  for k in range(20):  # any nearby similarity costs more
    p = _similarity(*rng.normal(0, 1e-2, 1), 1 + rng.normal(0, 1e-2),
                    rng.normal(0, 0.1, 2))
    comp = np.vstack([m, [0, 0, 1]]) @ np.vstack([p, [0, 0, 1]])
    assert cost(comp[:2]) >= base - 1e-3, k


def test_warp_identity_and_integer_shift():
  img = np.random.default_rng(2).uniform(size=(20, 30, 3)).astype(np.float32)
  eye = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
  np.testing.assert_allclose(np.asarray(align.warp_affine(img, eye, (20, 30))),
                             img, atol=1e-6)
  shift = np.array([[1, 0, 3], [0, 1, -2]], np.float32)  # out = in + (3, -2)
  out = np.asarray(align.warp_affine(img, shift, (20, 30)))
  np.testing.assert_allclose(out[:18, 3:], img[2:, :27], atol=1e-6)
  assert np.all(out[:, :3] == 0) and np.all(out[18:] == 0)


def test_matches_cv2_warp_affine():
  cv2 = pytest.importorskip("cv2", reason="needs opencv-python-headless")
  rng = np.random.default_rng(3)
  img = cv2.GaussianBlur(rng.uniform(0, 255, (80, 90, 3)).astype(np.float32),
                         (7, 7), 2.0)
  m = _similarity(0.4, 0.8, (10.0, -5.0))
  ref = cv2.warpAffine(img, m, (64, 60), flags=cv2.INTER_LINEAR)
  ours = np.asarray(align.warp_affine(img, m, (60, 64)))
  inside = cv2.erode(cv2.warpAffine(np.ones((80, 90), np.float32), m,
                                    (64, 60)), np.ones((3, 3))) == 1
  assert inside.mean() > 0.5
  # OpenCV interpolates at 1/32-pixel resolution.
  assert np.abs(ours - ref)[inside].max() < 1.0


def test_align_face_maps_points_onto_the_template():
  # A face whose five points are the template under a known similarity.
  m = _similarity(-0.2, 2.5, (40.0, 25.0))
  pts = align.FIVE_POINT_TEMPLATE @ m[:, :2].T + m[:, 2]
  img = np.zeros((400, 400, 3), np.float32)
  for x, y in np.round(pts).astype(int):
    img[y - 2:y + 3, x - 2:x + 3] = 1.0
  crop = np.asarray(align.align_face(img, np.round(pts)))
  for x, y in align.FIVE_POINT_TEMPLATE:
    assert crop[int(round(y)), int(round(x))].min() > 0.5
  batch = np.asarray(align.align_face(np.stack([img, img]),
                                      np.stack([np.round(pts)] * 2)))
  np.testing.assert_allclose(batch[1], crop, atol=1e-6)


def test_ibug68_five_points_and_errors():
  lm = np.zeros((68, 2), np.float32)
  lm[36:42] = [10, 20]
  lm[42:48] = [30, 20]
  lm[30], lm[48], lm[54] = [20, 30], [12, 40], [28, 40]
  five = np.asarray(align.five_points_from_ibug68(lm))
  np.testing.assert_allclose(five, [[10, 20], [30, 20], [20, 30], [12, 40],
                                    [28, 40]])
  with pytest.raises(ValueError, match="68, 2"):
    align.five_points_from_ibug68(np.zeros((5, 2)))
  with pytest.raises(ValueError, match="5, 2"):
    align.align_face(np.zeros((10, 10, 3)), np.zeros((4, 2)))


def test_alignment_is_differentiable_in_the_image():
  img = jnp.asarray(np.random.default_rng(4).uniform(size=(120, 120, 3)),
                    jnp.float32)
  pts = align.FIVE_POINT_TEMPLATE + 3.0
  g = jax.grad(lambda x: align.align_face(x, pts).sum())(img)
  # Every output pixel's bilinear weights sum to one.
  np.testing.assert_allclose(float(g.sum()), 112 * 112 * 3, rtol=1e-3)
