"""Tests for disent_jax.ops.raster against independent references.

References: a brute-force float64 numpy rasterizer (every pixel centre
against every triangle, same pixel-centre and tie conventions), orthographic
ray casting with trimesh, and central finite differences.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from disent_jax.ops import raster

# Compiled once per static configuration and shape.
rasterize = jax.jit(raster.rasterize, static_argnames=(
    "height", "width", "cull_backfaces", "chunk_size"))
interpolate = jax.jit(raster.interpolate)


def _edge(a, b, px, py):
  return (b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0])


def brute_force(vertices, faces, height, width, *, cull_backfaces=False):
  """float64 numpy rasterizer.

  Returns:
    (triangle_id [H, W] (-1 empty), depth [H, W] (inf empty),
    barycentrics [H, W, 3], ambiguous [H, W] bool). A pixel is ambiguous
    when its centre is within 1e-3 px of an edge of a triangle that is
    nearest (up to 1e-4 in z) among those within 1e-3 px of covering it, or
    when two covering triangles tie in depth up to 1e-4 (without being an
    exact tie), so float32 rounding may legitimately pick another triangle.
  """
  tri = np.asarray(vertices, np.float64)[np.asarray(faces)]
  px, py = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
  tid = np.full((height, width), -1)
  depth = np.full((height, width), np.inf)
  bary = np.zeros((height, width, 3))
  near_depths = []  # (depth where nearly covering, near an edge)
  for t, (a, b, c) in enumerate(tri):
    area = _edge(a, b, c[0], c[1])
    if area == 0 or not np.all(np.isfinite(tri[t])):
      continue
    if cull_backfaces and area >= 0:
      continue
    w = np.stack([_edge(b, c, px, py), _edge(c, a, px, py),
                  _edge(a, b, px, py)], -1) / area
    z = w @ np.array([a[2], b[2], c[2]])
    lengths = np.array([np.hypot(*(c - b)[:2]), np.hypot(*(a - c)[:2]),
                        np.hypot(*(b - a)[:2])])
    dist = w * abs(area) / lengths  # signed distance to each edge, in px
    inside = np.all(w >= 0, -1)
    near_edge = np.all(dist > -1e-3, -1) & np.any(np.abs(dist) < 1e-3, -1)
    near_depths.append(np.where(near_edge, z, np.inf))
    near_depths.append(np.where(inside, z, np.inf))
    take = inside & (z < depth)
    tid[take], depth[take], bary[take] = t, z[take], w[take]
  ambiguous = np.zeros((height, width), bool)
  for t, zs in enumerate(near_depths):
    if t % 2 == 0:  # near an edge and about as near as the winner
      ambiguous |= np.isfinite(zs) & (zs <= depth + 1e-4)
    else:  # covering and nearly (but not exactly) tied with the winner
      gap = np.abs(np.where(np.isfinite(zs), zs, 0) - np.where(
          np.isfinite(depth), depth, 1e9))
      ambiguous |= np.isfinite(zs) & (gap < 1e-4) & (zs != depth)
  return tid, depth, bary, ambiguous


# Most tests share one image size and pad their meshes to one vertex and
# face count (padding faces are zero-area, so they are skipped), so that the
# rasterizer is compiled only a few times.
HEIGHT, WIDTH = 40, 52
NUM_VERTICES, NUM_FACES = 192, 320


def pad_mesh(vertices, faces, num_vertices=NUM_VERTICES,
             num_faces=NUM_FACES):
  """Appends unused vertices and degenerate faces (0, 0, 0)."""
  vertices = np.concatenate([
      vertices, np.zeros((num_vertices - len(vertices), 3), np.float32)])
  faces = np.concatenate([
      faces, np.zeros((num_faces - len(faces), 3), np.int32)])
  return vertices, faces


def random_soup(seed, num_faces, height, width):
  """Overlapping triangles of all sizes, both windings, some off-screen."""
  rng = np.random.default_rng(seed)
  centres = rng.uniform([-5, -5, 0], [width + 5, height + 5, 10],
                        (num_faces, 1, 3))
  scales = np.exp(rng.uniform(np.log(0.5), np.log(2 * max(height, width)),
                              (num_faces, 1, 1)))
  offsets = rng.normal(size=(num_faces, 3, 3)) * scales * [1, 1, 0.02]
  vertices = (centres + offsets).reshape(-1, 3).astype(np.float32)
  faces = np.arange(3 * num_faces, dtype=np.int32).reshape(-1, 3)
  return vertices, faces


def grid_mesh(rows, cols, step, z_fn=lambda x, y: 0 * x):
  """A regular grid of squares split along their diagonals."""
  y, x = np.meshgrid(np.arange(rows + 1) * step, np.arange(cols + 1) * step,
                     indexing="ij")
  vertices = np.stack([x, y, z_fn(x, y)], -1).reshape(-1, 3)
  faces = []
  for r in range(rows):
    for c in range(cols):
      a = r * (cols + 1) + c
      b, d, e = a + 1, a + cols + 1, a + cols + 2
      faces += [[a, b, e], [a, e, d]]
  return vertices.astype(np.float32), np.asarray(faces, np.int32)


def to_screen(points, *, height, width, angles=(0.0, 0.0, 0.0), fill=0.4):
  """Rotates model-frame points (R = Rz Ry Rx) and maps them to screen
  space: centred, y down, z = -model z (smaller is nearer)."""
  ax, ay, az = angles
  rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)],
                 [0, np.sin(ax), np.cos(ax)]])
  ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0],
                 [-np.sin(ay), 0, np.cos(ay)]])
  rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0],
                 [0, 0, 1]])
  p = np.asarray(points, np.float64) @ (rz @ ry @ rx).T
  p = p / np.abs(p[:, :2]).max() * fill * min(height, width)
  return np.stack([p[:, 0] + width / 2, height / 2 - p[:, 1], -p[:, 2]],
                  -1).astype(np.float32)


def sphere_on_screen(**kwargs):
  """A closed icosphere (320 faces, outward counter-clockwise faces)."""
  mesh = trimesh.creation.icosphere(subdivisions=2)
  vertices = to_screen(mesh.vertices, height=HEIGHT, width=WIDTH,
                       angles=(0.3, 0.5, 0.1), **kwargs)
  return pad_mesh(vertices, mesh.faces.astype(np.int32))


def check_against_brute_force(fragments, vertices, faces, height, width,
                              **kwargs):
  """Compares with `brute_force` away from ambiguous pixels; returns ids."""
  tid, depth, bary, ambiguous = brute_force(vertices, faces, height, width,
                                            **kwargs)
  assert ambiguous.mean() < 0.02
  ok = ~ambiguous
  ours_tid = np.asarray(fragments.triangle_id)
  np.testing.assert_array_equal(ours_tid[ok], tid[ok])
  np.testing.assert_array_equal(np.asarray(fragments.mask)[ok], tid[ok] >= 0)
  covered = ok & (tid >= 0)
  np.testing.assert_allclose(np.asarray(fragments.depth)[covered],
                             depth[covered], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(np.asarray(fragments.barycentrics)[covered],
                             bary[covered], atol=1e-4)
  assert np.all(np.isinf(np.asarray(fragments.depth)[ok & (tid < 0)]))
  return tid


def test_random_soup_matches_brute_force():
  # Small and image-sized triangles, overlapping, partly off-screen. The
  # small chunk forces many loop iterations, with triangles split across
  # chunks.
  vertices, faces = pad_mesh(*random_soup(0, 60, HEIGHT, WIDTH))
  fragments = rasterize(vertices, faces, height=HEIGHT, width=WIDTH,
                        chunk_size=97)
  tid = check_against_brute_force(fragments, vertices, faces, HEIGHT, WIDTH)
  assert len(np.unique(tid)) > 20  # many triangles are visible


def test_grid_ties_go_to_the_lowest_index():
  # Flat grid with integer corners: pixel centres fall exactly on the
  # diagonals, where both triangles cover and tie in depth.
  vertices, faces = grid_mesh(6, 8, 4.0)
  vertices, faces = pad_mesh(vertices + np.float32([1.0, 2.0, 3.0]), faces)
  fragments = rasterize(vertices, faces, height=HEIGHT, width=WIDTH)
  tid, _, _, _ = brute_force(vertices, faces, HEIGHT, WIDTH)
  np.testing.assert_array_equal(np.asarray(fragments.triangle_id), tid)
  on_diagonal = np.isclose(np.asarray(fragments.barycentrics),
                           0.0).any(-1) & np.asarray(fragments.mask)
  assert on_diagonal.sum() > 20


def test_closed_sphere_matches_brute_force():
  # A closed mesh: every covered pixel sees a front and a back face.
  vertices, faces = sphere_on_screen()
  fragments = rasterize(vertices, faces, height=HEIGHT, width=WIDTH)
  check_against_brute_force(fragments, vertices, faces, HEIGHT, WIDTH)


def test_cull_backfaces():
  vertices, faces = sphere_on_screen()
  culled = rasterize(vertices, faces, height=HEIGHT, width=WIDTH,
                     cull_backfaces=True)
  check_against_brute_force(culled, vertices, faces, HEIGHT, WIDTH,
                            cull_backfaces=True)
  full = rasterize(vertices, faces, height=HEIGHT, width=WIDTH)
  # Convex and outward-facing: the nearest surface is the front surface.
  both = np.asarray(culled.mask & full.mask)
  assert both.sum() > 0.95 * np.asarray(full.mask).sum()
  np.testing.assert_allclose(np.asarray(culled.depth)[both],
                             np.asarray(full.depth)[both], atol=1e-4)
  # A single triangle: counter-clockwise as seen in the image is front.
  tri = np.float32([[2, 2, 0], [2, 10, 0], [10, 2, 0]])
  for corners, visible in (([0, 1, 2], True), ([0, 2, 1], False)):
    fragments = rasterize(*pad_mesh(tri, np.int32([corners])),
                          height=HEIGHT, width=WIDTH, cull_backfaces=True)
    # Pixel centres (j + .5, i + .5) with i, j >= 2 and i + j <= 11.
    assert np.asarray(fragments.mask).sum() == (36 if visible else 0)


def ray_cast_depth(vertices, faces, size):
  """First-hit z of orthographic rays along +z through the pixel centres."""
  mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), faces,
                         process=False, validate=False)
  px, py = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
  origins = np.stack([px.ravel(), py.ravel(),
                      np.full(px.size, vertices[:, 2].min() - 10.0)], -1)
  directions = np.tile([0.0, 0.0, 1.0], (px.size, 1))
  intersector = trimesh.ray.ray_triangle.RayMeshIntersector(mesh)
  locations, ray_ids, _ = intersector.intersects_location(
      origins, directions, multiple_hits=True)
  depth = np.full(px.size, np.inf)
  np.minimum.at(depth, ray_ids, locations[:, 2])
  return depth.reshape(size, size)


@pytest.mark.parametrize("shape", ["icosphere", "torus"])
def test_depth_matches_ray_casting(shape):
  # trimesh's ray casting needs rtree (in the [test] extra): fail, not skip.
  import rtree  # pylint: disable=unused-import,g-import-not-at-top
  if shape == "icosphere":
    mesh = trimesh.creation.icosphere(subdivisions=3)
    angles = (0.4, -0.3, 0.2)
  else:
    # Tilted so that the tube hides parts of itself (depth complexity 4).
    mesh = trimesh.creation.torus(1.0, 0.35, major_sections=32,
                                  minor_sections=16)
    angles = (1.1, 0.2, 0.3)
  size = 64
  vertices = to_screen(mesh.vertices, height=size, width=size,
                       angles=angles)
  faces = mesh.faces.astype(np.int32)
  expected = ray_cast_depth(vertices, faces, size)
  # Both meshes padded to the icosphere's size: one compilation.
  vertices, faces = pad_mesh(vertices, faces, 642, 1280)
  fragments = rasterize(vertices, faces, height=size, width=size)
  ours = np.asarray(fragments.depth)
  hit, mask = np.isfinite(expected), np.asarray(fragments.mask)
  both = hit & mask
  assert both.sum() > 0.3 * size * size
  assert (hit != mask).sum() <= 0.01 * both.sum()  # only at silhouettes
  np.testing.assert_allclose(ours[both], expected[both], atol=1e-3)
  assert np.all(np.isinf(ours[~mask]))


def _edge_margin_weights(vertices, faces, height, width, margin):
  """1 where the pixel centre is farther than `margin` px from every edge."""
  tri = np.asarray(vertices, np.float64)[faces]
  px, py = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
  far = np.ones((height, width), bool)
  for a, b, c in tri:
    for p, q in ((a, b), (b, c), (c, a)):
      d = q[:2] - p[:2]
      s = np.clip(((px - p[0]) * d[0] + (py - p[1]) * d[1]) / (d @ d), 0, 1)
      dist = np.hypot(px - p[0] - s * d[0], py - p[1] - s * d[1])
      far &= dist > margin
  return far.astype(np.float32)


def _two_layer_mesh():
  """A jittered grid with varying z and a smaller grid partly in front."""
  rng = np.random.default_rng(3)
  back_v, back_f = grid_mesh(3, 4, 6.0, lambda x, y: 20 + 0.1 * x - 0.2 * y)
  back_v[:, :2] += rng.uniform(-1.2, 1.2, (len(back_v), 2)) + 2.0
  front_v, front_f = grid_mesh(2, 2, 5.0, lambda x, y: 2 + 0.3 * y)
  front_v[:, :2] += rng.uniform(-1.0, 1.0, (len(front_v), 2)) + 9.0
  vertices = np.concatenate([back_v, front_v]).astype(np.float32)
  faces = np.concatenate([back_f, front_f + len(back_v)]).astype(np.int32)
  return vertices, faces


def test_gradients_match_finite_differences():
  vertices, faces = _two_layer_mesh()
  height, width = 24, 30
  rng = np.random.default_rng(4)
  colours = rng.uniform(size=(len(vertices), 3)).astype(np.float32)
  # Only pixels away from every edge: there the visible triangle does not
  # change under the small perturbations below.
  weights = _edge_margin_weights(vertices, faces, height, width, 0.05)
  weights = weights * rng.uniform(0.5, 1.5, (height, width)).astype(
      np.float32)
  assert weights.astype(bool).sum() > 200

  def objective(v, c):
    fragments = rasterize(v, faces, height=height, width=width)
    image = interpolate(c, faces, fragments)
    depth = jnp.where(fragments.mask, fragments.depth, 0.0)
    return (jnp.sum(weights[..., None] * image ** 2)
            + 0.01 * jnp.sum(weights * depth))

  value_and_grad = jax.jit(jax.value_and_grad(objective, argnums=(0, 1)))
  loss = lambda v, c: value_and_grad(v, c)[0]
  _, (grad_v, grad_c) = value_and_grad(vertices, colours)
  grad_v, grad_c = np.asarray(grad_v), np.asarray(grad_c)
  assert np.abs(grad_v[..., :2]).max() > 1e-2  # positions matter

  eps = 1e-2
  fd_v = np.zeros_like(vertices)
  for i in np.ndindex(vertices.shape):
    up, down = vertices.copy(), vertices.copy()
    up[i] += eps
    down[i] -= eps
    fd_v[i] = (loss(up, colours) - loss(down, colours)) / (2 * eps)
  np.testing.assert_allclose(grad_v, fd_v, rtol=2e-2,
                             atol=2e-2 * np.abs(fd_v).max())

  # The same gradients for a batch under vmap.
  batch = np.stack([vertices, vertices + np.float32([0.5, -0.3, 1.0])])
  _, (batch_grad_v, _) = jax.jit(jax.vmap(
      jax.value_and_grad(objective, argnums=(0, 1)), in_axes=(0, None)))(
          batch, colours)
  np.testing.assert_allclose(batch_grad_v[0], grad_v, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      batch_grad_v[1], value_and_grad(batch[1], colours)[1][0], rtol=1e-5,
      atol=1e-5)

  direction = rng.normal(size=colours.shape).astype(np.float32)
  fd_c = (loss(vertices, colours + 0.1 * direction)
          - loss(vertices, colours - 0.1 * direction)) / 0.2
  np.testing.assert_allclose(np.sum(grad_c * direction), fd_c, rtol=1e-3)


def test_interpolate_matches_reference():
  height, width = HEIGHT, WIDTH
  vertices, faces = pad_mesh(*random_soup(1, 60, height, width))
  fragments = rasterize(vertices, faces, height=height, width=width)
  # Random attributes, then the screen position and depth themselves.
  attributes = np.concatenate([
      np.random.default_rng(2).normal(size=(len(vertices), 5)), vertices],
                              -1).astype(np.float32)
  image = np.asarray(interpolate(attributes, faces, fragments))
  tid = np.asarray(fragments.triangle_id)
  bary = np.asarray(fragments.barycentrics)
  expected = np.einsum("hwk,hwkc->hwc", bary,
                       attributes[faces[np.maximum(tid, 0)]])
  expected[tid < 0] = 0
  np.testing.assert_allclose(image, expected, rtol=1e-5, atol=1e-5)
  covered = tid >= 0
  assert covered.sum() > 0.5 * covered.size
  # Interpolated screen positions are the pixel centres.
  px, py = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
  np.testing.assert_allclose(image[covered, 5], px[covered], atol=1e-3)
  np.testing.assert_allclose(image[covered, 6], py[covered], atol=1e-3)
  np.testing.assert_allclose(image[covered, 7],
                             np.asarray(fragments.depth)[covered],
                             rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shared_faces", [True, False])
def test_vmap_matches_per_mesh_references(shared_faces):
  # Batches of meshes; members need different numbers of loop iterations
  # (small chunks, one member partly off-screen). Per-mesh faces: the
  # second member has the opposite winding.
  mesh = trimesh.creation.icosphere(subdivisions=2)
  faces = mesh.faces.astype(np.int32)
  batch = np.stack([to_screen(mesh.vertices, height=32, width=32,
                              angles=(a, 2 * a, 0), fill=fill)
                    for a, fill in ((0.0, 0.4), (0.4, 0.2), (0.9, 0.45))])
  batch[2, :, 0] += 9.0
  batch_faces = faces if shared_faces else np.stack(
      [faces, faces[:, ::-1], faces])
  colours = np.random.default_rng(0).uniform(
      size=(3, len(mesh.vertices), 3)).astype(np.float32)

  @jax.jit
  def render(vertices, faces, colours):
    fragments = jax.vmap(functools.partial(
        raster.rasterize, height=32, width=32, chunk_size=100),
                         in_axes=(0, None if shared_faces else 0))(
                             vertices, faces)
    images = jax.vmap(raster.interpolate,
                      in_axes=(0, None if shared_faces else 0, 0))(
                          colours, faces, fragments)
    return fragments, images

  fragments, images = render(batch, batch_faces, colours)
  assert fragments.triangle_id.shape == (3, 32, 32)
  for b in range(3):
    member_faces = faces if shared_faces else batch_faces[b]
    single = jax.tree.map(lambda x, b=b: x[b], fragments)
    tid = check_against_brute_force(single, batch[b], member_faces, 32, 32)
    expected = np.einsum("hwk,hwkc->hwc", np.asarray(single.barycentrics),
                         colours[b][member_faces[np.maximum(tid, 0)]])
    expected[np.asarray(single.triangle_id) < 0] = 0
    np.testing.assert_allclose(np.asarray(images[b]), expected, atol=1e-5)


def test_batch_sharded_over_devices_stays_data_parallel():
  # conftest.py provides 8 CPU devices; a batch sharded over them must not
  # be gathered onto every device.
  devices = np.array(jax.devices())
  mesh = jax.sharding.Mesh(devices, ("data",))
  sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec("data"))
  sphere = trimesh.creation.icosphere(subdivisions=1)
  faces = sphere.faces.astype(np.int32)
  batch = np.stack([
      to_screen(sphere.vertices, height=16, width=16, angles=(a, a, 0))
      for a in np.linspace(0, 1, len(devices))])
  render = jax.jit(
      jax.vmap(lambda v: raster.rasterize(v, faces, height=16,
                                          width=16).triangle_id),
      in_shardings=sharding, out_shardings=sharding)
  batch = jax.device_put(batch, sharding)
  assert "all-gather" not in render.lower(batch).compile().as_text()
  ids = np.asarray(render(batch))
  for b in range(len(devices)):
    tid, _, _, ambiguous = brute_force(batch[b], faces, 16, 16)
    np.testing.assert_array_equal(ids[b][~ambiguous], tid[~ambiguous])


def test_degenerate_triangles_give_no_nan():
  vertices = np.float32([
      [2, 2, 1], [14, 3, 1], [5, 13, 1],       # a proper triangle
      [3, 3, 0], [3, 3, 0], [3, 3, 0],         # coincident points
      [1, 1, 0], [8, 8, 0], [15, 15, 0],       # collinear, across the image
      [4, 4, 0], [12, 5, 0], [np.inf, 9, 0],   # non-finite corner
      [6, 6, 0], [9, 6, 0], [9, 6, 0],         # repeated corner
  ])
  faces = np.arange(15, dtype=np.int32).reshape(5, 3)
  colours = np.ones((15, 2), np.float32)

  def loss(v, c):
    fragments = raster.rasterize(v, faces, height=16, width=16)
    value = (jnp.sum(raster.interpolate(c, faces, fragments))
             + jnp.sum(jnp.where(fragments.mask, fragments.depth, 0.0)))
    return value, fragments

  grads, fragments = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(
      vertices, colours)
  assert set(np.unique(fragments.triangle_id)) == {-1, 0}
  assert np.all(np.isfinite(np.asarray(fragments.barycentrics)))
  for g in grads:
    assert np.all(np.isfinite(np.asarray(g)))
  assert np.abs(np.asarray(grads[0])[:3]).sum() > 0
  assert not np.asarray(grads[0])[3:].any()


@pytest.mark.parametrize("case", ["left", "below", "between_centres"])
def test_off_screen_mesh_gives_an_empty_image(case):
  vertices, faces = grid_mesh(2, 2, 3.0)
  if case == "left":
    vertices = vertices + np.float32([-100.0, 0.0, 0.0])
  elif case == "below":
    vertices = vertices + np.float32([0.0, HEIGHT + 0.6, 0.0])
  else:  # tiny, inside the image but containing no pixel centre
    vertices = vertices * np.float32(0.1) + np.float32([3.6, 3.6, 0.0])
  vertices, faces = pad_mesh(vertices, faces)
  fragments = rasterize(vertices, faces, height=HEIGHT, width=WIDTH)
  assert not np.asarray(fragments.mask).any()
  assert np.all(np.asarray(fragments.triangle_id) == -1)
  assert np.all(np.isinf(np.asarray(fragments.depth)))
  assert not np.asarray(fragments.barycentrics).any()
  image = interpolate(np.ones((len(vertices), 8), np.float32), faces,
                      fragments)
  assert image.shape == (HEIGHT, WIDTH, 8) and not np.asarray(image).any()


def test_no_faces_gives_an_empty_image():
  fragments = raster.rasterize(np.zeros((4, 3), np.float32),
                               np.zeros((0, 3), np.int32), height=5, width=6)
  assert fragments.triangle_id.shape == (5, 6)
  assert not np.asarray(fragments.mask).any()
  assert np.all(np.isinf(np.asarray(fragments.depth)))


def test_bad_shapes_raise():
  vertices, faces = grid_mesh(1, 1, 3.0)
  with pytest.raises(ValueError, match="vertices"):
    raster.rasterize(vertices[:, :2], faces, height=4, width=4)
  with pytest.raises(ValueError, match="faces"):
    raster.rasterize(vertices, faces[:, :2], height=4, width=4)
  with pytest.raises(ValueError, match="faces"):
    raster.rasterize(vertices, faces.astype(np.float32), height=4, width=4)
  with pytest.raises(ValueError, match="size"):
    raster.rasterize(vertices, faces, height=0, width=4)
  with pytest.raises(ValueError, match="chunk_size"):
    raster.rasterize(vertices, faces, height=4, width=4, chunk_size=0)
  fragments = raster.Fragments(
      triangle_id=np.full((4, 4), -1, np.int32),
      barycentrics=np.zeros((4, 4, 3), np.float32),
      depth=np.full((4, 4), np.inf, np.float32),
      mask=np.zeros((4, 4), bool))
  with pytest.raises(ValueError, match="attributes"):
    raster.interpolate(np.ones(len(vertices)), faces, fragments)
  with pytest.raises(ValueError, match="unbatched"):
    raster.interpolate(np.ones((len(vertices), 2)), faces,
                       jax.tree.map(lambda x: x[None], fragments))


def test_synthface_depth_matches_ray_casting():
  """A SynthFace face (mouth open, turned) against trimesh ray casting."""
  import rtree  # pylint: disable=unused-import,g-import-not-at-top
  from disent_jax.ops import camera  # pylint: disable=g-import-not-at-top
  from disent_jax.synthface import expression  # pylint: disable=g-import-not-at-top
  from disent_jax.synthface import world as world_lib  # pylint: disable=g-import-not-at-top
  w = world_lib.world("1k")
  verts, _ = w.subject_mesh(0, 3, expression.one_hot("mouth_open"))
  size = 64
  rotation = camera.euler_to_rotation(np.float32([0.15, 0.5, 0.05]))
  screen = camera.weak_perspective_screen(
      verts, rotation, np.float32(size / 220.0), np.float32([size / 2] * 2))
  vertices = np.asarray(screen)
  faces = np.asarray(w.faces, np.int32)
  expected = ray_cast_depth(vertices, faces, size)
  fragments = rasterize(jnp.asarray(vertices), faces, height=size,
                        width=size)
  ours, mask = np.asarray(fragments.depth), np.asarray(fragments.mask)
  hit = np.isfinite(expected)
  both = hit & mask
  assert both.sum() > 0.25 * size * size
  assert (hit != mask).sum() <= 0.02 * both.sum()
  np.testing.assert_allclose(ours[both], expected[both], atol=1e-3)
