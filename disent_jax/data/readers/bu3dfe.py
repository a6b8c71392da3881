"""BU-3DFE (Yin et al. 2006) registered expression scans, manual directory.

Layout (VRML 2.0 files, one directory per subject, coordinates in mm):

  <root>/<subject>/<subject>_<EX><II><RR>_F3D.wrl

e.g. `F0001/F0001_AN01WH_F3D.wrl`: subject F0001, expression AN (anger),
intensity 01, race code WH. Expressions: NE (neutral, intensity 00 only),
AN, DI, FE, HA, SA, SU (intensities 01-04); 25 scans per subject. Other
files (textures, landmarks, `_RAW.wrl`) are ignored.

Correspondence: the raw F3D scans of BU-3DFE have a different vertex count
per scan. Like the paper (which uses a registered version), this reader
needs scans REGISTERED to one template: every file must have the vertex
count and triangles of the first scan (or `num_vertices`), otherwise a
`MeshError` names the file and says so. Register the raw scans first (e.g.
non-rigid ICP of a template) and store them in the same layout.

Split (paper 002 §IV-A, after DI-MeshEncoder): the first 10 subjects are
the test set. "First" is the sorted order of the subject names (F0001 ..
F0010 on the full dataset); `test_subjects` also takes explicit names, e.g.
`PUBLIC_CODE_TEST_SUBJECTS`, the list in the public code of paper 002
(females 1-6 and males 1, 2, 3, 5).

Units: the files are in millimetres (scale 1). The public code of paper 002
divides by 156 (the largest distance from the origin) for training and
multiplies errors by 156 to report mm.

Rigid alignment (as in the public code of paper 002), with least-squares
rotations and translations (no scale):
  1. the reference is the mean neutral of the training subjects;
  2. each subject's neutral is aligned to the reference over all vertices;
  3. each expression scan is aligned to its subject's aligned neutral over
     `alignment_vertex_ids` (default all vertices; the public code uses
     expression-invariant vertices around the nose and eye corners of its
     registration, `PUBLIC_CODE_ALIGNMENT_VERTEX_IDS`).
Every example's "neutral" is its subject's aligned NE00 scan.
"""

import re
from typing import Literal, Sequence

import numpy as np

from disent_jax.data.readers import common
from disent_jax.data.readers import formats
from disent_jax.ops import mesh as mesh_ops

EXPRESSIONS = ("NE", "AN", "DI", "FE", "HA", "SA", "SU")
SCALE_TO_MM = 1.0
NUM_TEST_SUBJECTS = 10
PUBLIC_CODE_TEST_SUBJECTS = ("F0001", "F0002", "F0003", "F0004", "F0005",
                             "F0006", "M0001", "M0002", "M0003", "M0005")
PUBLIC_CODE_ALIGNMENT_VERTEX_IDS = (4302, 954, 227, 1700, 2186, 1128, 4303,
                                    1597, 4501, 4827, 41, 3604, 1143)
LAYOUT = "<root>/<subject>/<subject>_<EX><II><RR>_F3D.wrl"
_FILE = re.compile(r"^(?P<subject>[^_]+)_(?P<expression>[A-Z]{2})"
                   r"(?P<intensity>\d{2})(?P<race>[A-Z]{2})_F3D\.wrl$")

Split = Literal["train", "test", "all"]


def scan(root: common.PathLike) -> list[tuple[str, str, int, str]]:
  """Lists every BU-3DFE F3D scan, sorted by subject, expression, intensity.

  Args:
    root: the dataset directory.

  Returns:
    [(subject, expression code, intensity, path)].

  Raises:
    FileNotFoundError: if `root` is missing or holds no scans.
    ValueError: on a scan whose name breaks the naming rules, or a subject
      without exactly one NE00 scan.
  """
  root = common.require_directory(root, dataset="BU-3DFE", layout=LAYOUT)
  found = []
  for subject in common.visible_entries(root):
    if not subject.is_dir():
      continue
    neutrals = 0
    for f in common.visible_entries(subject):
      if not f.name.endswith("_F3D.wrl"):
        continue
      m = _FILE.match(f.name)
      if m is None or m["subject"] != subject.name:
        raise ValueError(f"{f}: unexpected BU-3DFE file name; expected "
                         f"{subject.name}_<EX><II><RR>_F3D.wrl "
                         f"(layout {LAYOUT})")
      code, level = m["expression"], int(m["intensity"])
      if code not in EXPRESSIONS:
        raise ValueError(f"{f}: unknown expression code {code!r}; expected "
                         f"one of {EXPRESSIONS}")
      if (code == "NE") != (level == 0) or level > 4:
        raise ValueError(f"{f}: intensity {level:02d} is invalid for "
                         f"{code}; expected NE00 or 01-04 for the others")
      neutrals += code == "NE"
      found.append((subject.name, code, level, str(f)))
    if neutrals != 1 and any(e[0] == subject.name for e in found):
      raise ValueError(f"{subject}: expected exactly one NE00 (neutral) "
                       f"scan, found {neutrals}")
  if not found:
    raise FileNotFoundError(f"no BU-3DFE scans under {root}; expected the "
                            f"layout {LAYOUT}")
  found.sort(key=lambda e: (e[0], EXPRESSIONS.index(e[1]), e[2]))
  return found


def select_test_subjects(subjects: Sequence[str],
                       test_subjects: int | Sequence[str] = NUM_TEST_SUBJECTS
                       ) -> list[str]:
  """The test subjects: the first `test_subjects` sorted names, or a list."""
  names = sorted(subjects)
  if isinstance(test_subjects, int):
    if not 0 <= test_subjects <= len(names):
      raise ValueError(f"test_subjects={test_subjects} outside [0, "
                       f"{len(names)}]")
    return names[:test_subjects]
  missing = sorted(set(test_subjects) - set(names))
  if missing:
    raise ValueError(f"test subjects not found: {missing}")
  return sorted(test_subjects)


class BU3DFESource(common.MeshSource):
  """BU-3DFE scans (see the module docstring); build with `load_bu3dfe`.

  Attributes:
    reference: [V, 3] float64 mean training neutral (mm) that neutrals are
      aligned to, or None without alignment.
  """

  def __init__(self, records, *, faces, scale: float,
               reference: np.ndarray | None,
               alignment_vertex_ids: Sequence[int] | None, **kwargs):
    super().__init__(records, faces=faces, **kwargs)
    self.scale = float(scale)
    self.reference = reference
    self.alignment_vertex_ids = (
        None if alignment_vertex_ids is None
        else np.asarray(alignment_vertex_ids, np.int64))
    ids = self.alignment_vertex_ids
    if ids is not None and (ids.size < 3 or ids.min() < 0
                            or ids.max() >= self.num_vertices):
      raise ValueError(f"alignment_vertex_ids must hold at least 3 indices "
                       f"in [0, {self.num_vertices})")

  def read_scan(self, path: str) -> np.ndarray:
    """One registered scan as read (mm, validated, not aligned): [V, 3]."""
    vertices, _ = common.read_checked(
        path, scale=self.scale, faces=self.faces,
        num_vertices=self.num_vertices,
        hint="the BU-3DFE reader needs registered scans with one common "
             "vertex count and triangle list (raw F3D scans differ per scan)")
    return vertices

  def _read(self, path: str) -> np.ndarray:
    return self.read_scan(path)

  def _neutral(self, record: common.MeshRecord) -> np.ndarray:
    raw = self._read(record.neutral[0])
    if self.reference is None:
      return raw
    return common.apply_rigid(raw, *common.rigid_alignment(raw,
                                                           self.reference))

  def _vertices(self, record: common.MeshRecord) -> np.ndarray:
    if self.reference is None:
      return self._read(record.path)
    neutral = self.neutral(record)
    if record.path == record.neutral[0]:
      return neutral
    raw = self._read(record.path)
    return common.apply_rigid(raw, *common.rigid_alignment(
        raw, neutral, vertex_ids=self.alignment_vertex_ids))


def load_bu3dfe(root: common.PathLike, *, split: Split = "train",
                test_subjects: int | str | Sequence[str] = (),
                num_test_subjects: int = NUM_TEST_SUBJECTS,
                align: bool = True,
                alignment_vertex_ids: Sequence[int] | None = None,
                scale: float = SCALE_TO_MM,
                num_vertices: int | None = None,
                cache_size: int = 128) -> BU3DFESource:
  """A random-access source of registered BU-3DFE scans.

  Args:
    root: the dataset directory (layout in the module docstring).
    split: "train", "test" or "all".
    test_subjects: the test subjects' names (a sequence or one
      comma-separated string), or their number (the first sorted names);
      empty: the first `num_test_subjects`.
    num_test_subjects: number of first subjects (sorted names) in the test
      set when `test_subjects` is empty.
    align: rigidly align the scans (module docstring); False keeps the
      file coordinates.
    alignment_vertex_ids: vertices used to align an expression scan to its
      neutral (None or empty: all).
    scale: file units -> mm (1 for BU-3DFE).
    num_vertices: expected vertex count (None or 0: the first scan's).
    cache_size: aligned neutrals kept in memory.

  Returns:
    A `BU3DFESource`; expression indices follow `EXPRESSIONS` (NE = 0) and
    examples carry the extra label "intensity" (0 for NE, else 1-4).

  Raises:
    FileNotFoundError: if `root` is missing or empty.
    MeshError: when a scan is malformed or not registered (named in the
      message).
  """
  if split not in ("train", "test", "all"):
    raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
  num_vertices = common.optional_count(num_vertices)
  if alignment_vertex_ids is not None and len(alignment_vertex_ids) == 0:
    alignment_vertex_ids = None
  if not isinstance(test_subjects, int):
    test_subjects = common.name_list(test_subjects) or num_test_subjects
  entries = scan(root)
  subjects = sorted({e[0] for e in entries})
  subject_id = {s: i for i, s in enumerate(subjects)}
  test = set(select_test_subjects(subjects, test_subjects))
  neutral_path = {e[0]: e[3] for e in entries if e[1] == "NE"}

  template_path = entries[0][3]
  template_vertices, faces = formats.read_mesh(template_path)
  if num_vertices is None:
    num_vertices = template_vertices.shape[0]
  mesh_ops.validate_mesh(template_vertices, faces,
                         expected_num_vertices=num_vertices,
                         source=template_path)
  records = [
      common.MeshRecord(path=path, subject=subject_id[s],
                        expression=EXPRESSIONS.index(code),
                        neutral=(neutral_path[s],),
                        labels={"intensity": level})
      for s, code, level, path in entries
      if split == "all" or (split == "test") == (s in test)]
  source = BU3DFESource(
      records, faces=faces, scale=scale, reference=None,
      alignment_vertex_ids=alignment_vertex_ids, num_vertices=num_vertices,
      subject_names=subjects, expression_names=EXPRESSIONS,
      label_names=("intensity",), cache_size=cache_size)
  if align:
    train = [s for s in subjects if s not in test]
    if not train:
      raise ValueError("rigid alignment needs at least one training subject "
                       "for the reference neutral")
    source.reference = np.mean([source.read_scan(neutral_path[s])
                                for s in train], axis=0)
  return source
