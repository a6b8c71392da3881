"""CoMA (Ranjan et al. 2018) facial-motion meshes from a manual directory.

Layout (the public release, FLAME topology, 5023 vertices, PLY in metres):

  <root>/<subject>/<expression>/<expression>.<frame:06d>.ply

e.g. `FaceTalk_170725_00137_TA/bareteeth/bareteeth.000001.ply`. Hidden
entries are ignored; any other `.ply` name inside an expression directory
is an error.

Order: meshes are sorted alphabetically by subject, then expression, then
frame number (the zero-padded file names sort the same way). Subject and
expression indices are positions in the sorted lists of all subject and
expression directory names, so they agree between splits.

Splits (`protocol`):
  * "interpolation" (CoMA's "sliced" split, paper 002 §IV-A): the i-th mesh
    of the whole ordered list (0-based) is a test mesh when i % 100 < 10.
  * "extrapolation": every mesh of `test_expression` is a test mesh.
  * "identity" (unseen identities, the split of paper 002's supplementary
    after Kacem et al.): every mesh of a held-out subject is a test mesh.
    The held-out subjects are `test_subjects` (names) when given, else a
    seeded `round(test_fraction * n)` of the sorted subject names
    (`common.subject_split`; 0.25 holds out 3 of CoMA's 12). The papers do
    not list Kacem et al.'s subjects: name them with `test_subjects` to
    reproduce a particular split.
  * split="all" returns every mesh whatever the protocol.

Units: the files are in metres; `scale=1000` gives millimetres. (The public
code of paper 002 divides metres by 0.26 and multiplies errors by 260 to
report mm; the two agree.)

Ground-truth neutral: CoMA has no separate neutral scan. Every sequence
starts from the subject's rest face, so
  * neutral="sequence_first" (default): the first frame (lowest frame
    number) of the mesh's own sequence;
  * neutral="subject_mean": the mean of the first frames of all of the
    subject's sequences (one neutral per subject, as the public code of
    paper 002 uses one per subject);
  * neutral="none": no neutral (`has_neutral` False).
A neutral may be a mesh of the other split; it is a label, not an input.

Differences from the public code of paper 002: it drops a few outlier frames
(expression level > 3 std) and picks 204 random windows of 10 consecutive
frames as the test set (2040 test / 18422 train meshes); the rule here is
CoMA's deterministic one, which the paper cites.
"""

import re
from typing import Literal, Sequence

import numpy as np

from disent_jax.data.readers import common
from disent_jax.data.readers import formats
from disent_jax.ops import mesh as mesh_ops

NUM_VERTICES = 5023
SCALE_TO_MM = 1000.0
IDENTITY_TEST_FRACTION = 0.25
EXPRESSIONS = ("bareteeth", "cheeks_in", "eyebrow", "high_smile", "lips_back",
               "lips_up", "mouth_down", "mouth_extreme", "mouth_middle",
               "mouth_open", "mouth_side", "mouth_up")
LAYOUT = "<root>/<subject>/<expression>/<expression>.<frame:06d>.ply"
_FILE = re.compile(r"^(?P<expression>.+)\.(?P<frame>\d{6})\.ply$")

Split = Literal["train", "test", "all"]
Protocol = Literal["interpolation", "extrapolation", "identity"]
PROTOCOLS = ("interpolation", "extrapolation", "identity")
Neutral = Literal["sequence_first", "subject_mean", "none"]


def scan(root: common.PathLike) -> list[tuple[str, str, int, str]]:
  """Lists every CoMA mesh file in order.

  Args:
    root: the dataset directory.

  Returns:
    [(subject, expression, frame, path)] sorted by (subject, expression,
    frame).

  Raises:
    FileNotFoundError: if `root` is missing or holds no meshes.
    ValueError: on a file name that does not follow the layout.
  """
  root = common.require_directory(root, dataset="CoMA", layout=LAYOUT)
  found = []
  for subject in common.visible_entries(root):
    if not subject.is_dir():
      continue
    for expression in common.visible_entries(subject):
      if not expression.is_dir():
        continue
      for f in common.visible_entries(expression):
        if f.suffix.lower() != ".ply":
          continue
        m = _FILE.match(f.name)
        if m is None or m["expression"] != expression.name:
          raise ValueError(
              f"{f}: unexpected CoMA file name; expected "
              f"{expression.name}.<frame:06d>.ply (layout {LAYOUT})")
        found.append((subject.name, expression.name, int(m["frame"]),
                      str(f)))
  if not found:
    raise FileNotFoundError(f"no CoMA meshes under {root}; expected the "
                            f"layout {LAYOUT}")
  found.sort(key=lambda t: (t[0], t[1], t[2]))
  return found


def identity_test_subjects(subjects: Sequence[str], *,
                           test_subjects: str | Sequence[str] = (),
                           test_fraction: float = IDENTITY_TEST_FRACTION,
                           seed: int = 0) -> list[str]:
  """The held-out subjects of the "identity" protocol, sorted.

  Args:
    subjects: every subject name.
    test_subjects: names (a sequence or a comma-separated string); empty:
      choose by `test_fraction`.
    test_fraction: fraction of the sorted subjects held out, seeded.
    seed: seed of that choice.

  Returns:
    The test subject names, sorted.

  Raises:
    ValueError: on an unknown name, or a split without a test or a training
      subject.
  """
  names = sorted(set(subjects))
  chosen = common.name_list(test_subjects)
  if chosen:
    missing = sorted(set(chosen) - set(names))
    if missing:
      raise ValueError(f"test_subjects {missing} are not among the CoMA "
                       f"subjects found: {names}")
    test = sorted(set(chosen))
  else:
    _, test = common.subject_split(names, test_fraction=test_fraction,
                                   seed=seed)
  if not test or len(test) == len(names):
    raise ValueError(
        f"the identity protocol holds out {len(test)} of {len(names)} "
        "subjects; it needs at least one test and one training subject "
        "(set test_subjects or test_fraction)")
  return sorted(test)


def heldout_mask(entries: list[tuple[str, str, int, str]], *,
                 protocol: Protocol = "interpolation",
                 test_expression: str = "bareteeth",
                 test_subjects: str | Sequence[str] = (),
                 test_fraction: float = IDENTITY_TEST_FRACTION,
                 seed: int = 0) -> np.ndarray:
  """Boolean [N] test-set mask of ordered `scan` entries (see module doc)."""
  n = len(entries)
  if protocol == "interpolation":
    return np.arange(n) % 100 < 10
  if protocol == "extrapolation":
    names = {e[1] for e in entries}
    if test_expression not in names:
      raise ValueError(f"test_expression {test_expression!r} is not among "
                       f"the expressions found: {sorted(names)}")
    return np.array([e[1] == test_expression for e in entries], bool)
  if protocol == "identity":
    test = set(identity_test_subjects(
        [e[0] for e in entries], test_subjects=test_subjects,
        test_fraction=test_fraction, seed=seed))
    return np.array([e[0] in test for e in entries], bool)
  raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


class CoMASource(common.MeshSource):
  """CoMA meshes (see the module docstring); build with `load_coma`."""

  def __init__(self, records, *, faces, scale: float, **kwargs):
    super().__init__(records, faces=faces, **kwargs)
    self.scale = float(scale)

  def _read(self, path: str) -> np.ndarray:
    vertices, _ = common.read_checked(
        path, scale=self.scale, faces=self.faces,
        num_vertices=self.num_vertices,
        hint=f"CoMA meshes share one topology of {self.num_vertices} "
             "vertices")
    return vertices


def load_coma(root: common.PathLike, *, split: Split = "train",
              protocol: Protocol = "interpolation",
              test_expression: str = "bareteeth",
              test_subjects: str | Sequence[str] = (),
              test_fraction: float = IDENTITY_TEST_FRACTION,
              seed: int = 0,
              neutral: Neutral = "sequence_first",
              scale: float = SCALE_TO_MM,
              num_vertices: int | None = NUM_VERTICES,
              cache_size: int = 64) -> CoMASource:
  """A random-access source of CoMA meshes.

  Args:
    root: the dataset directory (layout in the module docstring).
    split: "train", "test" or "all".
    protocol: "interpolation" (i % 100 < 10 is test), "extrapolation"
      (`test_expression` is test) or "identity" (held-out subjects).
    test_expression: the held-out expression of the extrapolation protocol.
    test_subjects: the held-out subjects of the identity protocol (names, or
      one comma-separated string); empty: chosen by `test_fraction`.
    test_fraction: fraction of subjects the identity protocol holds out
      when `test_subjects` is empty.
    seed: seed of that choice.
    neutral: "sequence_first", "subject_mean" or "none".
    scale: file units -> mm (1000 for the public metre files).
    num_vertices: expected vertex count (None or 0: take the first file's).
    cache_size: neutrals kept in memory.

  Returns:
    A `CoMASource`; examples carry the extra labels "frame" (the file's
    frame number) and "sequence" (index of the (subject, expression)
    sequence in order).

  Raises:
    FileNotFoundError: if `root` is missing or empty.
    MeshError: when a mesh file is malformed (named in the message).
  """
  if split not in ("train", "test", "all"):
    raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
  if neutral not in ("sequence_first", "subject_mean", "none"):
    raise ValueError(f"neutral must be 'sequence_first', 'subject_mean' or "
                     f"'none', got {neutral!r}")
  num_vertices = common.optional_count(num_vertices)
  entries = scan(root)
  is_test = heldout_mask(entries, protocol=protocol,
                         test_expression=test_expression,
                         test_subjects=test_subjects,
                         test_fraction=test_fraction, seed=seed)
  subjects = sorted({e[0] for e in entries})
  expressions = sorted({e[1] for e in entries})
  sequences = sorted({(e[0], e[1]) for e in entries})
  subject_id = {s: i for i, s in enumerate(subjects)}
  expression_id = {x: i for i, x in enumerate(expressions)}
  sequence_id = {q: i for i, q in enumerate(sequences)}
  first_frame = {}
  for s, x, _, path in entries:  # Sorted by frame within a sequence.
    first_frame.setdefault((s, x), path)
  subject_first = {s: tuple(first_frame[q] for q in sequences if q[0] == s)
                   for s in subjects}

  template_path = entries[0][3]
  template_vertices, faces = formats.read_mesh(template_path)
  if num_vertices is None:
    num_vertices = template_vertices.shape[0]
  mesh_ops.validate_mesh(template_vertices, faces,
                         expected_num_vertices=num_vertices,
                         source=template_path)

  records = []
  for (s, x, frame, path), test in zip(entries, is_test):
    if split != "all" and (split == "test") != bool(test):
      continue
    if neutral == "sequence_first":
      ref = (first_frame[(s, x)],)
    elif neutral == "subject_mean":
      ref = subject_first[s]
    else:
      ref = ()
    records.append(common.MeshRecord(
        path=path, subject=subject_id[s], expression=expression_id[x],
        neutral=ref, labels={"frame": frame, "sequence": sequence_id[(s, x)]}))
  return CoMASource(records, faces=faces, scale=scale,
                    num_vertices=num_vertices, subject_names=subjects,
                    expression_names=expressions,
                    label_names=("frame", "sequence"), cache_size=cache_size)

