"""Real photos as SynthFace-framed images with MediaPipe pseudo-labels.

`load_photos` reads image files (or every image in a directory), finds the
face in each with MediaPipe's Face Landmarker (`nets.landmarker`), warps it
into the framing of SynthFace images (`landmarker.synthface_crop`) and
keeps the pseudo-labels: head pose, blendshapes and the iBUG-68 points in
the crop's pixels. A model trained on SynthFace can then be applied to the
crops. Photos without a detectable face are listed in `skipped` with the
reason; a file that is not a readable image is an error naming it.
"""

import dataclasses
import os
import pathlib
from typing import Iterable, Optional, Sequence

import numpy as np
import tqdm

from disent_jax.nets import landmarker as landmarker_lib

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def read_photo(path: str | os.PathLike) -> np.ndarray:
  """[H, W, 3] uint8 RGB of an image file (grey, palette and RGBA images
  are converted; alpha is dropped)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from PIL import UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such photo")
  try:
    with Image.open(path) as im:
      rgb = np.asarray(im.convert("RGB"))
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise ValueError(f"{path}: not a readable image (expected one of "
                     f"{', '.join(IMAGE_SUFFIXES)}): {e}") from e
  if rgb.ndim != 3 or min(rgb.shape[:2]) < 8:
    raise ValueError(f"{path}: image of shape {rgb.shape} is too small")
  return rgb


def photo_files(source: str | os.PathLike | Iterable[str | os.PathLike]
                ) -> list[pathlib.Path]:
  """The files of `source`: a directory's images (sorted; suffixes
  `IMAGE_SUFFIXES`), or the given files in order."""
  if isinstance(source, (str, os.PathLike)):
    p = pathlib.Path(source)
    if p.is_dir():
      files = sorted(f for f in p.iterdir()
                     if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
      if not files:
        raise ValueError(f"{p}: no images (expected files ending in "
                         f"{', '.join(IMAGE_SUFFIXES)})")
      return files
    return [p]
  return [pathlib.Path(f) for f in source]


@dataclasses.dataclass(frozen=True)
class PhotoSet:
  """Photos framed like SynthFace images, with their pseudo-labels.

  Attributes:
    images: [N, S, S, 3] float32 in [0, 1], SynthFace's framing.
    landmarks: [N, 68, 2] the iBUG-68 points in the crops' pixels.
    five_points: [N, 5, 2] the alignment points in the crops' pixels.
    pose: [N, 3] (pitch, yaw, roll) radians (`ops.camera` convention).
    blendshapes: [N, 52] MediaPipe's blendshape scores.
    blendshape_names: their 52 names.
    paths: the N files, in order.
    skipped: (file, reason) of the photos without a usable face.
  """
  images: np.ndarray
  landmarks: np.ndarray
  five_points: np.ndarray
  pose: np.ndarray
  blendshapes: np.ndarray
  blendshape_names: tuple
  paths: tuple
  skipped: tuple

  def __len__(self) -> int:
    return len(self.paths)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  return points @ matrix[:, :2].T + matrix[:, 2]


def load_photos(source: str | os.PathLike | Sequence[str | os.PathLike], *,
                size: int = 64, resolution: str = "1k",
                landmarker: Optional[landmarker_lib.Landmarker] = None,
                progress: bool = True) -> PhotoSet:
  """Reads, detects and frames photos (see the module docstring).

  Args:
    source: a directory of images, one file, or a sequence of files.
    size: the SynthFace image size of the crops.
    resolution: the SynthFace template whose framing the crops take.
    landmarker: a `Landmarker` to reuse; None makes (and closes) one.
    progress: a progress bar over the files.

  Raises:
    ValueError: an unreadable file (named), or no face in any photo.
  """
  files = photo_files(source)
  own = landmarker is None
  lm = landmarker_lib.Landmarker() if own else landmarker
  rows, kept, skipped = [], [], []
  try:
    for f in tqdm.tqdm(files, desc="photos", unit="img",
                       disable=not progress, leave=False):
      rgb = read_photo(f)
      det = lm.detect(rgb, name=str(f))
      if det is None:
        skipped.append((str(f), "no face found"))
        continue
      m = landmarker_lib.synthface_similarity(det.five_points, size=size,
                                              resolution=resolution)
      rows.append((landmarker_lib.synthface_crop(
          rgb, det.five_points, size=size, resolution=resolution),
                   _apply(m, det.ibug68), _apply(m, det.five_points),
                   det.pose, det.blendshapes, det.blendshape_names))
      kept.append(str(f))
  finally:
    if own:
      lm.close()
  if not rows:
    raise ValueError(f"no face found in any of {len(files)} photos "
                     f"({files[0]}{', ...' if len(files) > 1 else ''})")
  images, landmarks, five, pose, shapes, names = zip(*rows)
  return PhotoSet(
      images=np.stack(images).astype(np.float32),
      landmarks=np.stack(landmarks).astype(np.float32),
      five_points=np.stack(five).astype(np.float32),
      pose=np.stack(pose).astype(np.float32),
      blendshapes=np.stack(shapes).astype(np.float32),
      blendshape_names=names[0], paths=tuple(kept), skipped=tuple(skipped))
