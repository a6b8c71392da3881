"""The numpy PLY parser against trimesh's exports and hand-written files."""

import numpy as np
import pytest
import trimesh

from data import test_readers as fixtures
from disent_jax.data.readers import formats
from disent_jax.ops import mesh as mesh_ops

_TYPES = {"f4": "float", "f8": "double", "u1": "uchar", "i4": "int",
          "u4": "uint", "i2": "short"}


def _binary_ply(vertices, polygons, *, order="<", coord="f4", count="u1",
                index="i4", index_name="vertex_indices", extra=True):
  """A binary PLY with optional extra properties and elements."""
  fmt = {"<": "binary_little_endian", ">": "binary_big_endian"}[order]
  head = ["ply", f"format {fmt} 1.0", "comment written by a test",
          "obj_info anything"]
  head += [f"element vertex {len(vertices)}"]
  head += [f"property {_TYPES[coord]} {a}" for a in "xyz"]
  if extra:
    head += ["property uchar red", "property list uchar float weights"]
  head += [f"element face {len(polygons)}",
           f"property list {_TYPES[count]} {_TYPES[index]} {index_name}"]
  if extra:
    head += ["property int flags", "element edge 2",
             "property int vertex1", "property int vertex2"]
  head += ["end_header"]
  out = bytearray(("\n".join(head) + "\n").encode())
  for k, p in enumerate(vertices):
    out += np.asarray(p, order + coord).tobytes()
    if extra:
      out += np.uint8(k % 200).tobytes()
      w = np.arange(k % 3, dtype=order + "f4")
      out += np.uint8(len(w)).tobytes() + w.tobytes()
  for poly in polygons:
    out += np.asarray(len(poly), order + count).tobytes()
    out += np.asarray(poly, order + index).tobytes()
    if extra:
      out += np.asarray(7, order + "i4").tobytes()
  if extra:
    out += np.asarray([0, 1, 1, 2], order + "i4").tobytes()
  return bytes(out)


def _ascii_ply(vertices, polygons):
  head = ["ply", "format ascii 1.0", f"element vertex {len(vertices)}",
          "property float x", "property float y", "property float z",
          "property list uchar float weights",
          f"element face {len(polygons)}",
          "property list uchar int vertex_index", "end_header"]
  rows = [f"{float(x)!r} {float(y)!r} {float(z)!r} 2 0.5 0.25"
          for x, y, z in vertices]
  rows += [" ".join(map(str, [len(p)] + list(p))) for p in polygons]
  return ("\r\n".join(head + rows) + "\r\n").encode()


@pytest.mark.parametrize("encoding", ["binary", "ascii"])
def test_trimesh_exports_round_trip(tmp_path, encoding):
  v, f = fixtures._sphere(2)
  v = v * 0.1 + [0.01, -0.02, 0.3]
  path = tmp_path / "s.ply"
  path.write_bytes(trimesh.exchange.ply.export_ply(
      trimesh.Trimesh(v, f, process=False), encoding=encoding))
  rv, rf = formats.read_ply(path)
  assert rv.dtype == np.float64 and rf.dtype == np.int64
  if encoding == "binary":  # float32 coordinates.
    np.testing.assert_array_equal(rv, v.astype(np.float32))
  else:  # trimesh writes 8 significant digits.
    np.testing.assert_allclose(rv, v, rtol=0, atol=1e-7)
  np.testing.assert_array_equal(rf, f)
  ref = trimesh.exchange.ply.load_ply(open(path, "rb"), prefer_color=None)
  np.testing.assert_array_equal(rv, ref["vertices"])
  np.testing.assert_array_equal(rf, ref["faces"])


@pytest.mark.parametrize("order, coord, count, index", [
    ("<", "f4", "u1", "i4"), (">", "f8", "u1", "u4"),
    ("<", "f8", "i4", "i4"), (">", "f4", "u1", "i2"),
])
def test_binary_types_orders_and_extra_properties(tmp_path, order, coord,
                                                  count, index):
  v, f = fixtures._sphere(1)
  path = tmp_path / "b.ply"
  path.write_bytes(_binary_ply(v, f.tolist(), order=order, coord=coord,
                               count=count, index=index))
  rv, rf = formats.read_ply(path)
  np.testing.assert_allclose(rv, v.astype(coord), rtol=0, atol=0)
  np.testing.assert_array_equal(rf, f)


@pytest.mark.parametrize("writer", ["binary", "ascii"])
def test_mixed_polygons_are_fan_triangulated(tmp_path, writer):
  v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 2, 2.5]])
  polygons = [[0, 1, 2, 3], [1, 4, 2], [0, 3, 4, 1, 2]]
  want = [[0, 1, 2], [0, 2, 3], [1, 4, 2], [0, 3, 4], [0, 4, 1], [0, 1, 2]]
  data = (_binary_ply(v, polygons, index_name="vertex_index")
          if writer == "binary" else _ascii_ply(v, polygons))
  path = tmp_path / "p.ply"
  path.write_bytes(data)
  rv, rf = formats.read_ply(path)
  np.testing.assert_allclose(rv, v)
  np.testing.assert_array_equal(rf, want)
  # All quads: the fixed-layout path.
  path.write_bytes(_binary_ply(v, [[0, 1, 2, 3], [1, 4, 2, 0]]))
  np.testing.assert_array_equal(formats.read_ply(path)[1],
                                [[0, 1, 2], [0, 2, 3], [1, 4, 2], [1, 2, 0]])


def test_ascii_tokens_need_not_follow_lines(tmp_path):
  path = tmp_path / "t.ply"
  path.write_text("ply\nformat ascii 1.0\nelement vertex 3\n"
                  "property double x\nproperty double y\nproperty double z\n"
                  "element face 1\nproperty list uchar int vertex_indices\n"
                  "end_header\n0 0 0 1 0\n0 0 1 0 3 0 1\n2\n")
  rv, rf = formats.read_ply(path)
  np.testing.assert_array_equal(rv, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
  np.testing.assert_array_equal(rf, [[0, 1, 2]])


def _valid():
  v, f = fixtures._sphere(0)
  return _binary_ply(v, f.tolist(), extra=False)


@pytest.mark.parametrize("data, problem", [
    (b"PLY\nformat ascii 1.0\nend_header\n", "does not start with 'ply'"),
    (_valid()[:60], "no 'end_header'"),
    (_valid()[:-5], "element 'face' needs 260 bytes.*truncated"),
    (_valid()[:300], "element 'vertex' needs 144 bytes.*truncated"),
    (_valid().replace(b"binary_little_endian", b"binary_middle_endian"),
     "header line 2"),
    (_valid().replace(b"property float y", b"property float32x y"),
     "expected 'property <type> <name>'"),
    (_valid().replace(b"property float y", b"property float w"),
     "no scalar property 'y'"),
    (_valid().replace(b"vertex_indices", b"corners"),
     "no 'vertex_indices' list"),
    (_valid().replace(b"element face 20", b"element face 0"),
     "holds no faces"),
    (_valid().replace(b"element face 20", b"element face x"),
     "expected 'element <name> <count>'"),
    (_valid().replace(b"list uchar int", b"list float int"),
     "integer type"),
    (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
     b"property float y\nproperty float z\nelement face 1\n"
     b"property list uchar int vertex_indices\nend_header\n"
     b"0 0 0 1 0 0 0 1 zero\n3 0 1 2\n", "non-numeric token 'zero'"),
    (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
     b"property float y\nproperty float z\nelement face 1\n"
     b"property list uchar int vertex_indices\nend_header\n"
     b"0 0 0 1 0 0 0 1 0\n3 0 -1 2\n", "negative vertex index -1"),
    (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
     b"property float y\nproperty float z\nelement face 1\n"
     b"property list uchar int vertex_indices\nend_header\n"
     b"0 0 0 1 0 0 0 1 0\n3 0 1\n", "element 'face'.*truncated"),
    (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
     b"property float y\nproperty float z\nelement face 1\n"
     b"property list uchar int vertex_indices\nend_header\n"
     b"0 0 0 1 0 0 0 1 0\n3 0 1.5 2\n", "declared as an integer"),
])
def test_malformed_ply_names_the_file_and_the_problem(tmp_path, data,
                                                      problem):
  path = tmp_path / "bad.ply"
  path.write_bytes(data)
  with pytest.raises(mesh_ops.MeshError, match=problem) as e:
    formats.read_ply(path)
  assert str(path) in str(e.value)


def test_the_valid_fixture_reads(tmp_path):
  path = tmp_path / "ok.ply"
  path.write_bytes(_valid())
  v, f = fixtures._sphere(0)
  rv, rf = formats.read_ply(path)
  np.testing.assert_allclose(rv, v.astype(np.float32))
  np.testing.assert_array_equal(rf, f)
