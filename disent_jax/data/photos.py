"""Real photos as SynthFace-framed images with MediaPipe pseudo-labels.

`load_photos` reads image files (or every image in a directory, or the
photos installed packages carry: `packaged_photos`), finds the
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


def packaged_photos(*, lfw: bool = True) -> list[tuple[str, np.ndarray]]:
  """The real face photos installed packages carry, as (name, [H, W, 3]
  uint8 RGB): scikit-image's astronaut portrait (public domain) and, with
  `lfw`, the 100 faces of its `lfw_subset()` (25 x 25 grey LFW crops, no
  identity labels; the other 100 images are non-faces).

  Raises:
    ImportError: scikit-image (the `[real]` extra) is missing.
  """
  try:
    from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("packaged_photos needs scikit-image: pip install -e "
                      f"'.[real]' ({e})") from e
  out = [("skimage:astronaut", np.asarray(skdata.astronaut()))]
  if lfw:
    faces = np.asarray(skdata.lfw_subset())[:100]
    grey = np.round(np.clip(faces, 0.0, 1.0) * 255.0).astype(np.uint8)
    out += [(f"skimage:lfw_subset/{i:03d}", np.repeat(g[..., None], 3, -1))
            for i, g in enumerate(grey)]
  return out


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


def _photos(source) -> Iterable[tuple[str, np.ndarray]]:
  """(name, uint8 RGB) of a directory, file, files, or (name, image)
  pairs."""
  if (not isinstance(source, (str, os.PathLike)) and source
      and isinstance(source[0], tuple)):
    for name, image in source:
      yield str(name), np.asarray(image)
    return
  for f in photo_files(source):
    yield str(f), read_photo(f)


def load_photos(source: str | os.PathLike | Sequence[str | os.PathLike]
                | Sequence[tuple[str, np.ndarray]], *,
                size: int = 64, resolution: str = "1k",
                landmarker: Optional[landmarker_lib.Landmarker] = None,
                progress: bool = True) -> PhotoSet:
  """Reads, detects and frames photos (see the module docstring).

  Args:
    source: a directory of images, one file, a sequence of files, or
      (name, [H, W, 3] image) pairs (e.g. `packaged_photos()`).
    size: the SynthFace image size of the crops.
    resolution: the SynthFace template whose framing the crops take.
    landmarker: a `Landmarker` to reuse; None makes (and closes) one.
    progress: a progress bar over the files.

  Raises:
    ValueError: an unreadable file (named), or no face in any photo.
  """
  items = list(_photos(source))
  own = landmarker is None
  lm = landmarker_lib.Landmarker() if own else landmarker
  rows, kept, skipped = [], [], []
  try:
    for name, rgb in tqdm.tqdm(items, desc="photos", unit="img",
                               disable=not progress, leave=False):
      det = lm.detect(rgb, name=name)
      if det is None:
        skipped.append((name, "no face found"))
        continue
      m = landmarker_lib.synthface_similarity(det.five_points, size=size,
                                              resolution=resolution)
      rows.append((landmarker_lib.synthface_crop(
          rgb, det.five_points, size=size, resolution=resolution),
                   _apply(m, det.ibug68), _apply(m, det.five_points),
                   det.pose, det.blendshapes, det.blendshape_names))
      kept.append(name)
  finally:
    if own:
      lm.close()
  if not rows:
    raise ValueError(f"no face found in any of {len(items)} photos "
                     f"({items[0][0] if items else source}"
                     f"{', ...' if len(items) > 1 else ''})")
  images, landmarks, five, pose, shapes, names = zip(*rows)
  return PhotoSet(
      images=np.stack(images).astype(np.float32),
      landmarks=np.stack(landmarks).astype(np.float32),
      five_points=np.stack(five).astype(np.float32),
      pose=np.stack(pose).astype(np.float32),
      blendshapes=np.stack(shapes).astype(np.float32),
      blendshape_names=names[0], paths=tuple(kept), skipped=tuple(skipped))
