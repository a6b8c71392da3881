"""A numpy PLY parser: `read_ply` (ASCII and binary, either byte order).

Reads the `vertex` x y z properties and the `face` vertex-index lists;
other properties and elements are skipped, nothing is re-ordered or
merged. It never enters the Python compiler (no dtype strings, `ast` or
`compile`), so it is safe in reader threads; see `read_ply` for why
trimesh's loader is not.
"""

import dataclasses
import pathlib

import numpy as np

from disent_jax.data.readers import _parse
from disent_jax.ops.mesh import MeshError

PathLike = _parse.PathLike
_check_exists = _parse.check_exists
_fail = _parse.fail
_with_file_context = _parse.with_file_context
_polygons_to_triangles = _parse.polygons_to_triangles
_is_number = _parse.is_number


# PLY scalar type names -> numpy type codes (byte order added per file).
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_PLY_FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")
_FACE_LISTS = ("vertex_indices", "vertex_index")


@dataclasses.dataclass(frozen=True)
class _PlyProperty:
  """One property of a PLY element: a scalar, or a list when `count` is set.

  `value` and `count` are numpy type codes without byte order ("f4", "u1").
  """
  name: str
  value: str
  count: str | None = None


@dataclasses.dataclass(frozen=True)
class _PlyElement:
  name: str
  length: int
  properties: tuple[_PlyProperty, ...]


def _not_ply(path: pathlib.Path, problem: str) -> MeshError:
  return _fail(path, f"not a readable PLY mesh: {problem}")


def _ply_header(data: bytes, path: pathlib.Path
                ) -> tuple[str, list[_PlyElement], int]:
  """Parses the header: (format, elements, offset of the first data byte)."""
  if not data.startswith(b"ply"):
    raise _not_ply(path, "the file does not start with 'ply'")
  end = data.find(b"\nend_header")
  newline = data.find(b"\n", end + 1) if end >= 0 else -1
  if newline < 0:
    raise _not_ply(path, "the header has no 'end_header' line (truncated "
                         "file?)")
  lines = data[:end].decode("latin-1").splitlines()[1:]
  fmt = None
  elements: list[tuple[str, int, list[_PlyProperty]]] = []
  for line_no, line in enumerate(lines, 2):
    words = line.split()
    if not words or words[0] in ("comment", "obj_info"):
      continue
    where = f"header line {line_no} {line.strip()!r}"
    if words[0] == "format":
      if len(words) < 2 or words[1] not in _PLY_FORMATS:
        raise _not_ply(path, f"{where}: expected one of {_PLY_FORMATS}")
      fmt = words[1]
    elif words[0] == "element":
      if len(words) != 3 or not words[2].isdigit():
        raise _not_ply(path, f"{where}: expected 'element <name> <count>'")
      elements.append((words[1], int(words[2]), []))
    elif words[0] == "property":
      if not elements:
        raise _not_ply(path, f"{where}: a property before any element")
      if len(words) == 5 and words[1] == "list":
        count, value = _PLY_TYPES.get(words[2]), _PLY_TYPES.get(words[3])
        if count is None or value is None or count[0] == "f":
          raise _not_ply(path, f"{where}: expected 'property list <integer "
                               "type> <type> <name>'")
        elements[-1][2].append(_PlyProperty(words[4], value, count))
      elif len(words) == 3 and words[1] in _PLY_TYPES:
        elements[-1][2].append(_PlyProperty(words[2], _PLY_TYPES[words[1]]))
      else:
        raise _not_ply(path, f"{where}: expected 'property <type> <name>' "
                             f"with a type in {sorted(_PLY_TYPES)}")
    else:
      raise _not_ply(path, f"{where}: unknown header keyword")
  if fmt is None:
    raise _not_ply(path, "the header has no 'format' line")
  return (fmt, [_PlyElement(n, k, tuple(p)) for n, k, p in elements],
          newline + 1)


def _flat_lists(counts: np.ndarray, values: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
  return counts.astype(np.int64), values.reshape(-1)


def _ply_binary_element(data: bytes, offset: int, element: _PlyElement,
                        order: str, path: pathlib.Path
                        ) -> tuple[dict[str, object], int]:
  """Reads one binary element; returns ({name: data}, next offset).

  A scalar property reads as a [length] array, a list property as
  (counts [length], flat values [sum(counts)]).
  """
  props = element.properties
  n = element.length

  def truncated(needed: int) -> MeshError:
    return _not_ply(path, f"element '{element.name}' needs {needed} bytes "
                          f"from byte {offset}, the file has "
                          f"{len(data) - offset} (truncated file?)")

  # Fast path: every list has the length of the first record's, so the
  # element is one fixed-size structured array (built from a field list,
  # never from a dtype string).
  fields, lengths, pos = [], [], offset
  for i, p in enumerate(props):
    if p.count is None:
      fields.append((f"p{i}", order + p.value))
      pos += np.dtype(p.value).itemsize
      continue
    if n == 0:
      lengths.append(0)
    else:
      if pos + np.dtype(p.count).itemsize > len(data):
        raise truncated(pos + np.dtype(p.count).itemsize - offset)
      lengths.append(int(np.frombuffer(data, order + p.count, 1, pos)[0]))
    fields.append((f"c{i}", order + p.count))
    fields.append((f"p{i}", order + p.value, (lengths[-1],)))
    pos += (np.dtype(p.count).itemsize
            + lengths[-1] * np.dtype(p.value).itemsize)
  dtype = np.dtype(fields)
  fixed = all(p.count is None for p in props)
  if n * dtype.itemsize <= len(data) - offset:
    rows = np.frombuffer(data, dtype, n, offset)
    same = all(
        (rows[f"c{i}"] == lengths[k]).all()
        for k, i in enumerate(i for i, p in enumerate(props) if p.count))
    if fixed or same:
      out = {}
      for i, p in enumerate(props):
        if p.count is None:
          out[p.name] = rows[f"p{i}"]
        else:
          out[p.name] = _flat_lists(rows[f"c{i}"], rows[f"p{i}"])
      return out, offset + n * dtype.itemsize
  if fixed:
    raise truncated(n * dtype.itemsize)
  # Lists of differing lengths (e.g. triangles and quads): record by record.
  scalars = {i: np.empty(n, order + p.value) for i, p in enumerate(props)
             if p.count is None}
  counts = {i: np.empty(n, np.int64) for i, p in enumerate(props) if p.count}
  chunks = {i: [] for i in counts}
  pos = offset
  for r in range(n):
    for i, p in enumerate(props):
      kind = p.value if p.count is None else p.count
      size = np.dtype(kind).itemsize
      if pos + size > len(data):
        raise truncated(pos + size - offset)
      value = np.frombuffer(data, order + kind, 1, pos)[0]
      pos += size
      if p.count is None:
        scalars[i][r] = value
        continue
      k = int(value)
      size = k * np.dtype(p.value).itemsize
      if pos + size > len(data):
        raise truncated(pos + size - offset)
      counts[i][r] = k
      chunks[i].append(np.frombuffer(data, order + p.value, k, pos))
      pos += size
  out = {}
  for i, p in enumerate(props):
    if p.count is None:
      out[p.name] = scalars[i]
    else:
      flat = (np.concatenate(chunks[i]) if chunks[i]
              else np.zeros(0, p.value))
      out[p.name] = (counts[i], flat)
  return out, pos


def _ply_ascii_element(values: np.ndarray, offset: int, element: _PlyElement,
                       path: pathlib.Path) -> tuple[dict[str, object], int]:
  """Reads one ASCII element from the file's numbers (float64 [T])."""
  props = element.properties
  n = element.length

  def truncated(needed: int) -> MeshError:
    return _not_ply(path, f"element '{element.name}' needs {needed} numbers "
                          f"after number {offset}, the file has "
                          f"{len(values) - offset} (truncated file?)")

  # Fast path: every record has the layout of the first one.
  columns, lengths, width = [], [], 0
  for p in props:
    if p.count is None:
      columns.append(width)
      lengths.append(None)
      width += 1
      continue
    if n and offset + width >= len(values):
      raise truncated(width + 1)
    k = int(values[offset + width]) if n else 0
    columns.append(width)
    lengths.append(k)
    width += 1 + k
  if offset + n * width <= len(values):
    rows = values[offset:offset + n * width].reshape(n, width)
    if all(k is None or (rows[:, c] == k).all()
           for c, k in zip(columns, lengths)):
      out = {}
      for p, c, k in zip(props, columns, lengths):
        if k is None:
          out[p.name] = _ascii_cast(rows[:, c], p, path)
        else:
          out[p.name] = (rows[:, c].astype(np.int64), _ascii_cast(
              rows[:, c + 1:c + 1 + k].reshape(-1), p, path))
      return out, offset + n * width
  if all(p.count is None for p in props):
    raise truncated(n * width)
  # Lists of differing lengths: record by record.
  out_scalars = {p.name: np.empty(n) for p in props if p.count is None}
  out_counts = {p.name: np.empty(n, np.int64) for p in props if p.count}
  out_chunks = {p.name: [] for p in props if p.count}
  pos = offset
  for r in range(n):
    for p in props:
      if pos >= len(values):
        raise truncated(pos + 1 - offset)
      if p.count is None:
        out_scalars[p.name][r] = values[pos]
        pos += 1
        continue
      k = int(values[pos])
      if k < 0 or pos + 1 + k > len(values):
        raise truncated(pos + 1 + max(k, 0) - offset)
      out_counts[p.name][r] = k
      out_chunks[p.name].append(values[pos + 1:pos + 1 + k])
      pos += 1 + k
  out = {}
  for p in props:
    if p.count is None:
      out[p.name] = _ascii_cast(out_scalars[p.name], p, path)
    else:
      chunks = out_chunks[p.name]
      flat = np.concatenate(chunks) if chunks else np.zeros(0)
      out[p.name] = (out_counts[p.name], _ascii_cast(flat, p, path))
  return out, pos


def _ascii_cast(values: np.ndarray, prop: _PlyProperty,
                path: pathlib.Path) -> np.ndarray:
  """float64 numbers -> the property's declared type (as binary would)."""
  if prop.value[0] != "f" and not np.all(values == np.round(values)):
    raise _not_ply(path, f"property '{prop.name}' is declared as an "
                         "integer but holds non-integer values")
  return values.astype(prop.value)


def _ascii_numbers(text: str, path: pathlib.Path) -> np.ndarray:
  tokens = text.split()
  try:
    return np.array(tokens, dtype=np.float64)
  except ValueError:
    bad = next((t for t in tokens if not _is_number(t)), "?")
    raise _not_ply(path, f"the ASCII data holds a non-numeric token {bad!r}"
                   ) from None


@_with_file_context
def read_ply(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Reads a triangle mesh from a PLY file (ASCII or binary, either endian).

  Reads the `x y z` properties of the `vertex` element and the
  `vertex_indices` (or `vertex_index`) list of the `face` element; other
  properties and elements are skipped. Polygons are split into fans.

  This is a small numpy parser instead of `trimesh.exchange.ply`, for a
  measured reason (`benchmarks/results/readers.md`): trimesh builds numpy
  dtypes from strings such as "<u1,(3)<i4", whose "(3)" numpy parses with
  `ast.literal_eval`; CPython 3.11 keeps the AST converter's recursion
  counter in interpreter-wide state, so when a garbage-collector finalizer
  switches threads during one conversion and another thread converts too,
  Python raises "SystemError: AST constructor recursion depth mismatch"
  (grain's reader threads hit it within a few hundred steps). This parser
  never enters the Python compiler. Its speed is trimesh's on binary files
  (0.42 vs 0.39 ms for 5023 vertices) and twice it on ASCII (28 vs 59 ms).

  Args:
    path: the .ply file.

  Returns:
    vertices [V, 3] float64 and faces [F, 3] int64, in file order.

  Raises:
    FileNotFoundError: if the file does not exist.
    MeshError: if the file is not a readable PLY triangle mesh (a bad
      header, truncated data, no vertices or no faces).
  """
  path = pathlib.Path(path)
  _check_exists(path)
  data = path.read_bytes()
  fmt, elements, offset = _ply_header(data, path)
  names = [e.name for e in elements]
  if "vertex" not in names or elements[names.index("vertex")].length == 0:
    raise _fail(path, "the PLY file holds no vertices")
  if "face" not in names or elements[names.index("face")].length == 0:
    raise _fail(path, "the PLY file holds no faces (a point cloud, not a "
                      "triangle mesh)")
  vertex = elements[names.index("vertex")]
  face = elements[names.index("face")]
  vertex_props = {p.name: p for p in vertex.properties}
  missing = [a for a in "xyz" if a not in vertex_props
             or vertex_props[a].count is not None]
  if missing:
    raise _not_ply(path, f"the vertex element has no scalar property "
                         f"{missing[0]!r}; expected x, y and z")
  face_list = next((p.name for p in face.properties
                    if p.name in _FACE_LISTS and p.count), None)
  if face_list is None:
    raise _not_ply(path, "the face element has no 'vertex_indices' list")

  last = max(names.index("vertex"), names.index("face"))
  if fmt == "ascii":
    numbers = _ascii_numbers(data[offset:].decode("latin-1"), path)
    read = lambda e, pos: _ply_ascii_element(numbers, pos, e, path)
    pos = 0
  else:
    order = "<" if fmt == "binary_little_endian" else ">"
    read = lambda e, pos: _ply_binary_element(data, pos, e, order, path)
    pos = offset
  loaded = {}
  for element in elements[:last + 1]:
    loaded[element.name], pos = read(element, pos)

  v = loaded["vertex"]
  vertices = np.stack([np.asarray(v[a], np.float64) for a in "xyz"], axis=1)
  counts, flat = loaded["face"][face_list]
  flat = np.asarray(flat)
  if flat.dtype.kind == "f" and not np.all(flat == np.round(flat)):
    raise _not_ply(path, "the face list holds non-integer vertex indices")
  flat = flat.astype(np.int64)
  if (flat < 0).any():
    raise _fail(path, f"the face list holds a negative vertex index "
                      f"{int(flat[flat < 0][0])}")
  if (counts == 3).all():
    return vertices, flat.reshape(-1, 3)
  index = np.insert(flat, np.cumsum(counts), -1)
  return vertices, _polygons_to_triangles(index, path, "faces")


