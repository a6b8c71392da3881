"""FaceScape (Yang et al. 2020) TU models from a manual directory, decimated.

Layout (the "TU models" release: topologically uniform OBJ base meshes,
26,317 vertices, millimetres):

  <root>/<subject_id>/models_reg/<k>_<expression>.obj

with subject ids 1..847 and k = 1..20 (`EXPRESSIONS`; `1_neutral.obj` is
the neutral). Other files (textures, materials, displacement maps) are
ignored. Subject indices follow the numeric order of the subject ids;
expression index = k - 1.

Units: millimetres (scale 1); the public code of paper 002 divides by 573
for training and multiplies errors by 573 to report mm.

Decimation (paper 002 §IV-B): quadric edge collapse to 4547 vertices. The
template (the neutral of the first subject, or `template`) is decimated
once with `ops.hierarchy.decimate`; the kept-vertex indices and coarse
triangles are cached in `cache_dir` (an .npz keyed by a hash of the
template and the settings) and every scan is reduced by taking the same
vertices, so all meshes stay in correspondence. The decimation keeps
exactly `num_vertices` vertices; its triangle count (8,999 in the paper) is
whatever the collapse sequence leaves.

Split (paper 002 §IV-A): a seeded random 30 % of the subjects is the test
set (`common.subject_split`, round(0.3 n) subjects). The public code of
paper 002 differs (10 % with Python's random.seed(50) plus the
publishable ids, and a list of outlier meshes); the paper's 7:3 is used
here.

Neutral: the subject's `1_neutral.obj`, reduced the same way. A subject
without it raises, unless `require_neutral=False` (then `has_neutral` is
False and "neutral" holds zeros for its meshes).
"""

import pathlib
import re
from typing import Literal

import numpy as np

from disent_jax.data.readers import common
from disent_jax.data.readers import formats
from disent_jax.ops import hierarchy
from disent_jax.ops import mesh as mesh_ops

EXPRESSIONS = ("neutral", "smile", "mouth_stretch", "anger", "jaw_left",
               "jaw_right", "jaw_forward", "mouth_left", "mouth_right",
               "dimpler", "chin_raiser", "lip_puckerer", "lip_funneler",
               "sadness", "lip_roll", "grin", "cheek_blowing", "eye_closed",
               "brow_raiser", "brow_lower")
NUM_VERTICES = 4547
SCALE_TO_MM = 1.0
TEST_FRACTION = 0.3
LAYOUT = "<root>/<subject_id>/models_reg/<k>_<expression>.obj"
_FILE = re.compile(r"^(?P<k>\d+)_(?P<expression>[A-Za-z_]+)\.obj$")
_CACHE_VERSION = 1

Split = Literal["train", "test", "all"]


def scan(root: common.PathLike) -> list[tuple[str, int, str]]:
  """Lists every FaceScape TU model, sorted by subject id then k.

  Args:
    root: the dataset directory.

  Returns:
    [(subject id string, expression index k - 1, path)].

  Raises:
    FileNotFoundError: if `root` is missing or holds no models.
    ValueError: on a model name that breaks the naming rules.
  """
  root = common.require_directory(root, dataset="FaceScape", layout=LAYOUT)
  found = []
  for subject in common.visible_entries(root):
    models = subject / "models_reg"
    if not (subject.is_dir() and subject.name.isdigit() and models.is_dir()):
      continue
    for f in common.visible_entries(models):
      if f.suffix != ".obj":
        continue
      m = _FILE.match(f.name)
      k = int(m["k"]) if m else 0
      if m is None or not 1 <= k <= len(EXPRESSIONS):
        raise ValueError(f"{f}: unexpected FaceScape model name; expected "
                         f"<k>_<expression>.obj with k in 1..20 (layout "
                         f"{LAYOUT})")
      if m["expression"] != EXPRESSIONS[k - 1]:
        raise ValueError(f"{f}: expression {m['expression']!r} does not "
                         f"match k={k}; expected "
                         f"{k}_{EXPRESSIONS[k - 1]}.obj")
      found.append((subject.name, k - 1, str(f)))
  if not found:
    raise FileNotFoundError(f"no FaceScape models under {root}; expected the "
                            f"layout {LAYOUT}")
  found.sort(key=lambda e: (int(e[0]), e[1]))
  return found


def decimation_cache_key(vertices: np.ndarray, faces: np.ndarray, *,
                         num_vertices: int, aggressiveness: float) -> str:
  """A hex digest of the template and the decimation settings."""
  return hierarchy.content_key(
      vertices, faces,
      f"facescape-v{_CACHE_VERSION};{num_vertices};{aggressiveness}")


def template_decimation(vertices: np.ndarray, faces: np.ndarray, *,
                        num_vertices: int, aggressiveness: float = 7.0,
                        cache_dir: common.PathLike | None = None
                        ) -> hierarchy.Decimation:
  """Decimates the template once, reading / writing an .npz cache.

  Args:
    vertices: [V, 3] template vertices.
    faces: [F, 3] template triangles.
    num_vertices: target vertex count.
    aggressiveness: passed to `ops.hierarchy.decimate`.
    cache_dir: optional cache directory; the file is
      `facescape_decimation_<key>.npz`.

  Returns:
    The `ops.hierarchy.Decimation` (kept indices [M], coarse faces [F_c, 3]).
  """
  path = None
  if cache_dir is not None:
    key = decimation_cache_key(vertices, faces, num_vertices=num_vertices,
                               aggressiveness=aggressiveness)
    path = pathlib.Path(cache_dir) / f"facescape_decimation_{key}.npz"
    if path.exists():
      with np.load(path) as data:
        return hierarchy.Decimation(kept=data["kept"], faces=data["faces"])
  dec = hierarchy.decimate(vertices, faces, num_vertices=num_vertices,
                          aggressiveness=aggressiveness)
  if path is not None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, kept=dec.kept, faces=dec.faces)
    tmp.replace(path)
  return dec


class FaceScapeSource(common.MeshSource):
  """Decimated FaceScape models (see the module docstring).

  Build with `load_facescape`.

  Attributes:
    kept: [M] indices of the template vertices that survive decimation
      (all vertices without decimation).
    full_faces: [F, 3] triangles of the full-resolution template.
    full_num_vertices: vertex count of every full-resolution model.
  """

  def __init__(self, records, *, kept: np.ndarray, faces: np.ndarray,
               full_faces: np.ndarray, full_num_vertices: int, scale: float,
               **kwargs):
    super().__init__(records, faces=faces, num_vertices=len(kept), **kwargs)
    self.kept = np.asarray(kept, np.int64)
    self.full_faces = np.asarray(full_faces, np.int64)
    self.full_num_vertices = int(full_num_vertices)
    self.scale = float(scale)

  def _read(self, path: str) -> np.ndarray:
    vertices, _ = common.read_checked(
        path, scale=self.scale, faces=self.full_faces,
        num_vertices=self.full_num_vertices,
        hint="FaceScape TU models share the template's topology")
    return vertices[self.kept]


def load_facescape(root: common.PathLike, *, split: Split = "train",
                   test_fraction: float = TEST_FRACTION, seed: int = 0,
                   num_vertices: int | None = NUM_VERTICES,
                   template: common.PathLike | None = None,
                   aggressiveness: float = 7.0,
                   cache_dir: common.PathLike | None = None,
                   require_neutral: bool = True,
                   scale: float = SCALE_TO_MM,
                   cache_size: int = 64) -> FaceScapeSource:
  """A random-access source of decimated FaceScape TU models.

  Args:
    root: the dataset directory (layout in the module docstring).
    split: "train", "test" or "all".
    test_fraction: fraction of subjects in the test set.
    seed: seed of the subject split.
    num_vertices: vertices kept by decimation (None or 0: no decimation).
    template: the mesh to decimate (None or "": the first subject's
      neutral).
    aggressiveness: quadric simplifier setting (`ops.hierarchy.decimate`).
    cache_dir: where the template decimation is cached (None or "": no
      cache).
    require_neutral: raise when a subject has no `1_neutral.obj`.
    scale: file units -> mm (1 for FaceScape).
    cache_size: neutrals kept in memory.

  Returns:
    A `FaceScapeSource` with `faces` the decimated triangles.

  Raises:
    FileNotFoundError: if `root` is missing or empty, or a neutral is
      missing and `require_neutral`.
    MeshError: when a model is malformed (named in the message).
  """
  if split not in ("train", "test", "all"):
    raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
  num_vertices = common.optional_count(num_vertices)
  template = common.optional_path(template)
  cache_dir = common.optional_path(cache_dir)
  entries = scan(root)
  subjects = sorted({e[0] for e in entries}, key=int)
  subject_id = {s: i for i, s in enumerate(subjects)}
  _, test_names = common.subject_split(subjects, test_fraction=test_fraction,
                                       seed=seed)
  test = set(test_names)
  neutral_path = {e[0]: e[2] for e in entries if e[1] == 0}
  if require_neutral:
    missing = [s for s in subjects if s not in neutral_path]
    if missing:
      raise FileNotFoundError(
          f"FaceScape subject(s) {missing[:5]} have no models_reg/"
          f"1_neutral.obj under {root}; pass require_neutral=False to keep "
          "them without a neutral")

  template_path = (str(template) if template is not None else
                   neutral_path.get(subjects[0], entries[0][2]))
  template_vertices, full_faces = formats.read_mesh(template_path)
  mesh_ops.validate_mesh(template_vertices, full_faces,
                         source=template_path)
  if num_vertices is None:
    kept = np.arange(template_vertices.shape[0])
    faces = full_faces
  else:
    dec = template_decimation(template_vertices, full_faces,
                              num_vertices=num_vertices,
                              aggressiveness=aggressiveness,
                              cache_dir=cache_dir)
    kept, faces = dec.kept, dec.faces

  records = [
      common.MeshRecord(
          path=path, subject=subject_id[s], expression=k,
          neutral=(neutral_path[s],) if s in neutral_path else ())
      for s, k, path in entries
      if split == "all" or (split == "test") == (s in test)]
  return FaceScapeSource(records, kept=kept, faces=faces,
                         full_faces=full_faces,
                         full_num_vertices=template_vertices.shape[0],
                         scale=scale,
                         subject_names=subjects, expression_names=EXPRESSIONS,
                         cache_size=cache_size)
