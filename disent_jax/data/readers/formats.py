"""Mesh file parsers: PLY, Wavefront OBJ and VRML.

Every parser returns `(vertices [V, 3] float64, faces [F, 3] int64)` in the
file's own vertex order and units. Polygons are split into triangle fans.
A file that cannot be parsed raises `MeshError` naming the file and what
was expected; a missing file raises `FileNotFoundError`. Any other
exception (a system or reader error, not the file's fault) keeps its type
and gains a note naming the file. No parser enters the Python compiler
(`ast`, `compile`, dtype strings), so they are safe in reader threads.

* PLY: ASCII and binary (either byte order), `vertex` x y z and the `face`
  vertex-index lists, never re-ordered or merged. A numpy parser, not
  trimesh's loader: that one enters the Python compiler (numpy parses its
  dtype strings with `ast.literal_eval`), which CPython 3.11 does not allow
  from several threads at once (`ply.read_ply`, re-exported here).
* OBJ: `v` and `f` records only (texture and normal indices in `f v/vt/vn`
  are ignored), so a textured model keeps one vertex per `v` line; trimesh
  would split vertices along texture seams and change the vertex count.
* VRML (1.0 and 2.0): the `point [...]` list of each `Coordinate` node and
  the `coordIndex [...]` list of each `IndexedFaceSet`; several face sets
  are concatenated. Texture coordinates and other fields are skipped.
"""

import pathlib
import re

import numpy as np

from disent_jax.data.readers import _parse
from disent_jax.data.readers.ply import read_ply

PathLike = _parse.PathLike
_check_exists = _parse.check_exists
_fail = _parse.fail
_with_file_context = _parse.with_file_context
_polygons_to_triangles = _parse.polygons_to_triangles
_is_number = _parse.is_number


# ---------------------------------------------------------------------------
# OBJ.
# ---------------------------------------------------------------------------


def _obj_triangles_fast(lines: list[str]
                        ) -> tuple[np.ndarray, np.ndarray] | None:
  """Vectorised parse of a triangle-only OBJ with x y z vertices.

  Returns None (the caller then parses line by line, with line numbers in
  its errors) unless every `v` has 3 coordinates and every `f` has 3
  corners of one format (`v`, `v/vt`, `v//vn` or `v/vt/vn`) with positive
  indices.
  """
  v = [line[2:] for line in lines if line.startswith("v ")]
  f = [line[2:].replace("/", " ") for line in lines if line.startswith("f ")]
  if not v or not f:
    return None
  try:
    coords = np.loadtxt(v, dtype=np.float64, ndmin=2)
    ids = np.loadtxt(f, dtype=np.int64, ndmin=2)
  except ValueError:
    return None
  if coords.shape[1] != 3 or ids.shape[1] % 3:
    return None
  ids = ids[:, ::ids.shape[1] // 3]
  if (ids <= 0).any():
    return None
  return coords, ids - 1


@_with_file_context
def read_obj(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Reads the `v` and `f` records of a Wavefront OBJ file.

  Face corners may be `v`, `v/vt`, `v//vn` or `v/vt/vn`; only the vertex
  index is used. Negative (relative) indices are resolved.

  Args:
    path: the .obj file.

  Returns:
    vertices [V, 3] float64 (one per `v` line, extra colour columns
    dropped) and faces [F, 3] int64 (0-based).

  Raises:
    FileNotFoundError: if the file does not exist.
    MeshError: on a malformed `v` or `f` record.
  """
  path = pathlib.Path(path)
  _check_exists(path)
  with open(path, "r", encoding="utf-8", errors="replace") as f:
    lines = f.read().splitlines()
  fast = _obj_triangles_fast(lines)
  if fast is not None:
    return fast
  coords = []
  index = []
  for line_no, line in enumerate(lines, 1):
    if line.startswith("v "):
      parts = line.split()
      if len(parts) < 4:
        raise _fail(path, f"line {line_no}: a vertex needs 3 coordinates, "
                          f"got {line.strip()!r}")
      try:
        coords.append((float(parts[1]), float(parts[2]), float(parts[3])))
      except ValueError as e:
        raise _fail(path, f"line {line_no}: bad vertex {line.strip()!r}"
                    ) from e
    elif line.startswith("f "):
      corners = line.split()[1:]
      if len(corners) < 3:
        raise _fail(path, f"line {line_no}: a face needs at least 3 "
                          f"vertices, got {line.strip()!r}")
      try:
        ids = [int(c.split("/", 1)[0]) for c in corners]
      except ValueError as e:
        raise _fail(path, f"line {line_no}: bad face {line.strip()!r}"
                    ) from e
      count = len(coords)
      for i in ids:
        if i == 0:
          raise _fail(path, f"line {line_no}: OBJ indices start at 1, "
                            f"got 0 in {line.strip()!r}")
      ids = [i - 1 if i > 0 else count + i for i in ids]
      if min(ids) < 0:
        raise _fail(path, f"line {line_no}: a relative index reaches "
                          f"before the first vertex in {line.strip()!r}")
      index.extend(ids)
      index.append(-1)
  if not coords:
    raise _fail(path, "no 'v' records; expected a Wavefront OBJ mesh")
  if not index:
    raise _fail(path, "no 'f' records; expected a Wavefront OBJ mesh")
  faces = _polygons_to_triangles(np.asarray(index, np.int64), path, "faces")
  return np.asarray(coords, np.float64), faces


# ---------------------------------------------------------------------------
# VRML.
# ---------------------------------------------------------------------------

_VRML_HEADER = re.compile(r"#VRML V[12]\.0")
_COMMENT = re.compile(r"#[^\n\r]*")
_STRING = re.compile(r'"[^"]*"')
_COORD_POINT = re.compile(r"\bCoordinate3?\s*\{\s*point\s*\[")
_COORD_INDEX = re.compile(r"\bcoordIndex\s*\[")
_FACE_SET = re.compile(r"\bIndexedFaceSet\b")


def _bracket_body(text: str, start: int, path: pathlib.Path,
                  what: str) -> str:
  end = text.find("]", start)
  if end < 0:
    raise _fail(path, f"the {what} list is not closed with ']' (truncated "
                      "file?)")
  return text[start:end]


def _numbers(body: str, dtype, path: pathlib.Path, what: str) -> np.ndarray:
  tokens = body.replace(",", " ").split()
  try:
    return np.array(tokens, dtype=np.float64).astype(dtype)
  except ValueError as e:
    bad = next((t for t in tokens if not _is_number(t)), "?")
    raise _fail(path, f"the {what} list holds a non-numeric token {bad!r}"
                ) from e


@_with_file_context
def read_vrml(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Reads the IndexedFaceSet geometry of a VRML 1.0 / 2.0 (.wrl) file.

  Each `IndexedFaceSet` contributes the `point [...]` list of its
  `Coordinate` node (x y z triples, commas optional) and its
  `coordIndex [...]` list (polygons ended by -1); several face sets are
  concatenated into one mesh.

  Args:
    path: the .wrl file.

  Returns:
    vertices [V, 3] float64 and faces [F, 3] int64.

  Raises:
    FileNotFoundError: if the file does not exist.
    MeshError: on a missing header, a missing or unclosed `point` /
      `coordIndex` list, a non-numeric entry, or a coordinate count that is
      not a multiple of 3.
  """
  path = pathlib.Path(path)
  _check_exists(path)
  data = path.read_bytes()
  if data.startswith(b"\xef\xbb\xbf"):
    data = data[3:]
  text = data.decode("latin-1").lstrip()
  if not _VRML_HEADER.match(text):
    raise _fail(path, "missing '#VRML V2.0' (or V1.0) header; expected a "
                      "VRML file")
  text = _COMMENT.sub(" ", _STRING.sub('""', text))
  for left, right in ("{}", "[]"):
    if text.count(left) != text.count(right):
      raise _fail(path, f"{text.count(left)} '{left}' but "
                        f"{text.count(right)} '{right}': a node or list is "
                        "not closed (truncated file?)")
  sets = [m.start() for m in _FACE_SET.finditer(text)]
  if not sets:
    raise _fail(path, "no IndexedFaceSet node; expected VRML geometry "
                      "'IndexedFaceSet { coord Coordinate { point [...] } "
                      "coordIndex [...] }'")
  bounds = sets[1:] + [len(text)]
  all_vertices, all_faces = [], []
  offset = 0
  for k, (lo, hi) in enumerate(zip(sets, bounds)):
    chunk = text[lo:hi]
    what = f"IndexedFaceSet {k}"
    point = _COORD_POINT.search(chunk)
    if point is None:
      raise _fail(path, f"{what} has no 'Coordinate {{ point [' list")
    body = _bracket_body(chunk, point.end(), path, f"{what} point")
    coords = _numbers(body, np.float64, path, f"{what} point")
    if coords.size % 3:
      raise _fail(path, f"the {what} point list holds {coords.size} numbers, "
                        "not a multiple of 3")
    index = _COORD_INDEX.search(chunk)
    if index is None:
      raise _fail(path, f"{what} has no 'coordIndex [' list")
    ibody = _bracket_body(chunk, index.end(), path, f"{what} coordIndex")
    ids = _numbers(ibody, np.float64, path, f"{what} coordIndex")
    if ids.size and not np.all(ids == np.round(ids)):
      raise _fail(path, f"the {what} coordIndex list holds non-integers")
    faces = _polygons_to_triangles(ids.astype(np.int64), path,
                                   f"{what} coordIndex")
    all_vertices.append(coords.reshape(-1, 3))
    all_faces.append(faces + offset)
    offset += coords.size // 3
  return np.concatenate(all_vertices), np.concatenate(all_faces)


def read_mesh(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Reads a .ply, .obj or .wrl file by its extension."""
  suffix = pathlib.Path(path).suffix.lower()
  readers = {".ply": read_ply, ".obj": read_obj, ".wrl": read_vrml}
  if suffix not in readers:
    raise ValueError(f"{path}: unsupported mesh format {suffix!r}; expected "
                     f"one of {sorted(readers)}")
  return readers[suffix](path)
