"""Rasterizer throughput versus triangle count and resolution.

Runs `disent_jax.ops.raster.rasterize` side by side with

  * trimesh ray casting with embree (`embreex`, from the `[parity]` extra):
    one orthographic ray per pixel centre along +z (towards larger z, away
    from the camera), first hit only, giving coverage, depth and triangle
    ids -- the CPU tool a user would otherwise pick. Its scene and BVH are
    built once, outside the timed region, and the build time is reported
    in the case name; rows also report how the outputs agree. Skipped with
    a message when embreex is not importable.
  * a brute-force all-pixels x all-triangles JAX rasterizer (same
    conventions, same outputs), a sanity baseline rather than a peer,

on closed latitude-longitude spheres that fill most of the image and (full
runs) a SynthFace neutral face turned by 30 degrees, so that the nose hides
part of a cheek.

  python -m benchmarks.raster [--quick] [--out FILE]
"""

import functools
import math
import statistics
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import trimesh

from benchmarks import common
from disent_jax.ops import raster
from disent_jax.synthface import world as sf_world

EMBREE_PEER = "embree (trimesh)"
BRUTE_PEER = "brute-force JAX (sanity baseline)"


def sphere_mesh(num_faces: int, size: int) -> tuple[np.ndarray, np.ndarray]:
  """A closed latitude-longitude sphere with about `num_faces` triangles.

  Args:
    num_faces: approximate triangle count.
    size: image size; the sphere is centred with radius 0.45 * size.

  Returns:
    vertices [V, 3] float32 in screen space, faces [F, 3] int32.
  """
  rings = max(2, int(round(math.sqrt(num_faces / 4))))
  segments = 2 * rings
  theta = np.linspace(0, np.pi, rings + 1)[1:-1]
  phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
  th, ph = np.meshgrid(theta, phi, indexing="ij")
  ring_pts = np.stack([np.sin(th) * np.cos(ph), np.cos(th),
                       np.sin(th) * np.sin(ph)], -1).reshape(-1, 3)
  pts = np.concatenate([[[0, 1, 0]], ring_pts, [[0, -1, 0]]])
  faces = []
  idx = lambda r, s: 1 + r * segments + s % segments
  for s in range(segments):
    faces.append([0, idx(0, s + 1), idx(0, s)])
    faces.append([len(pts) - 1, idx(rings - 2, s), idx(rings - 2, s + 1)])
  for r in range(rings - 2):
    for s in range(segments):
      a, b = idx(r, s), idx(r, s + 1)
      c, d = idx(r + 1, s), idx(r + 1, s + 1)
      faces += [[a, b, d], [a, d, c]]
  centre = size / 2
  verts = pts * 0.45 * size + np.array([centre, centre, 0.0])
  return verts.astype(np.float32), np.asarray(faces, np.int32)


@functools.lru_cache(maxsize=None)
def _neutral_face() -> tuple[np.ndarray, np.ndarray]:
  """Model-frame vertices [V, 3] and faces [F, 3] of a SynthFace neutral."""
  world = sf_world.world("5k")
  vertices = world.neutral(world.identity(0, 0))
  return np.asarray(vertices, np.float64), np.asarray(world.faces, np.int64)


def face_mesh(size: int, subdivisions: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
  """A SynthFace neutral face (5k template), turned 30 degrees about y.

  The turn makes the nose hide part of a cheek, so the z-test matters.

  Args:
    size: image size; the larger side of the face's screen bounding box is
      0.9 * size, centred.
    subdivisions: how many times every triangle is split into 4 (trimesh
      midpoint subdivision).

  Returns:
    vertices [V, 3] float32 in screen space (the convention of
    `camera.weak_perspective_screen`: y down, smaller z nearer), faces
    [F, 3] int32 (F = 9580 * 4**subdivisions).
  """
  vertices, faces = _neutral_face()
  for _ in range(subdivisions):
    vertices, faces = trimesh.remesh.subdivide(vertices, faces)
  yaw = np.deg2rad(30.0)
  rotation = np.array([[np.cos(yaw), 0.0, np.sin(yaw)], [0.0, 1.0, 0.0],
                       [-np.sin(yaw), 0.0, np.cos(yaw)]])
  points = (vertices @ rotation.T) * np.array([1.0, -1.0, -1.0])
  lo, hi = points.min(0), points.max(0)
  scale = 0.9 * size / np.max(hi[:2] - lo[:2])
  screen = (points - (lo + hi) / 2) * scale + np.array([size / 2, size / 2,
                                                        0.0])
  return screen.astype(np.float32), np.asarray(faces, np.int32)


def import_embree() -> Any:
  """trimesh's embree ray caster module `trimesh.ray.ray_pyembree`, or None.

  None when `embreex` (the `[parity]` extra) is not importable.
  """
  try:
    import embreex  # pylint: disable=g-import-not-at-top,unused-import
    from trimesh.ray import ray_pyembree  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return ray_pyembree


class RayHits(NamedTuple):
  """Per-pixel first hits of `EmbreeCaster` (numpy).

  Attributes:
    triangle_id: [H, W] int64 index into the faces, -1 where no hit.
    depth: [H, W] float64 z of the hit point, +inf where no hit.
    mask: [H, W] bool, True where the ray hit the mesh.
  """
  triangle_id: np.ndarray
  depth: np.ndarray
  mask: np.ndarray


class EmbreeCaster:
  """Orthographic first-hit ray casting with trimesh and embree.

  One ray per pixel centre (j + 0.5, i + 0.5), starting in front of the
  mesh (1 below its smallest z) and pointing along +z, so the first hit is
  the nearest surface in `raster.rasterize`'s convention (smaller z nearer)
  and its location gives the depth. Embree hits both windings, like
  `rasterize` without `cull_backfaces`.

  The constructor builds the trimesh mesh, the embree scene and its BVH
  (forced by casting one ray, which also caches the face planes trimesh
  uses for hit locations) and the ray arrays; `build_s` is the time of the
  first three. Each call then casts all the rays.
  """

  def __init__(self, vertices: np.ndarray, faces: np.ndarray, *,
               height: int, width: int):
    """Builds the caster.

    Args:
      vertices: [V, 3] screen-space vertices.
      faces: [F, 3] int vertex indices.
      height: image height.
      width: image width.

    Raises:
      ImportError: when embreex is not installed.
    """
    ray_pyembree = import_embree()
    if ray_pyembree is None:
      raise ImportError("embreex is not installed (pip install embreex)")
    start = time.perf_counter()
    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64),
                           np.asarray(faces, np.int64), process=False,
                           validate=False)
    self._intersector = ray_pyembree.RayMeshIntersector(mesh)
    z0 = float(mesh.vertices[:, 2].min()) - 1.0
    self._intersector.intersects_location(
        [[0.0, 0.0, z0]], [[0.0, 0.0, 1.0]], multiple_hits=False)
    self.build_s = time.perf_counter() - start
    px, py = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    self._origins = np.stack([px.ravel(), py.ravel(),
                              np.full(px.size, z0)], -1)
    self._directions = np.tile([0.0, 0.0, 1.0], (px.size, 1))
    self._shape = (height, width)

  def __call__(self) -> RayHits:
    """Casts one ray per pixel centre; returns [H, W] `RayHits`."""
    locations, ray_ids, tri_ids = self._intersector.intersects_location(
        self._origins, self._directions, multiple_hits=False)
    num = self._origins.shape[0]
    triangle_id = np.full(num, -1, np.int64)
    triangle_id[ray_ids] = tri_ids
    depth = np.full(num, np.inf)
    depth[ray_ids] = locations[:, 2]
    return RayHits(triangle_id=triangle_id.reshape(self._shape),
                   depth=depth.reshape(self._shape),
                   mask=triangle_id.reshape(self._shape) >= 0)


def agreement(fragments: raster.Fragments, hits: RayHits) -> dict[str, float]:
  """How `rasterize`'s output agrees with ray casting.

  Args:
    fragments: `rasterize` output for an [H, W] image.
    hits: `EmbreeCaster` output for the same mesh and image.

  Returns:
    coverage_iou: |both covered| / |either covered|.
    id_match: fraction of the pixels covered by both with the same
      triangle id.
    depth_abs_max, depth_abs_mean: |depth difference| over the pixels
      covered by both (screen z units, pixels for the benchmark meshes).
  """
  ours_mask = np.asarray(fragments.mask)
  both = ours_mask & hits.mask
  either = ours_mask | hits.mask
  ids = np.asarray(fragments.triangle_id)[both] == hits.triangle_id[both]
  dz = np.abs(np.asarray(fragments.depth, np.float64)[both]
              - hits.depth[both])
  return {
      "coverage_iou": float(both.sum() / max(either.sum(), 1)),
      "id_match": float(ids.mean()) if ids.size else 1.0,
      "depth_abs_max": float(dz.max()) if dz.size else 0.0,
      "depth_abs_mean": float(dz.mean()) if dz.size else 0.0,
  }


def brute_force_rasterize(vertices: jax.Array, faces: jax.Array, *,
                          height: int, width: int,
                          chunk: int = 4) -> raster.Fragments:
  """Tests every pixel centre against every triangle (chunks of triangles).

  Same conventions as `raster.rasterize` (pixel centres, inclusive edges,
  nearest z wins, lowest index on ties); cost O(F * H * W).

  Args:
    vertices: [V, 3] screen-space vertices.
    faces: [F, 3] int32.
    height: image height.
    width: image width.
    chunk: triangles tested per scan step (4 was the fastest of 1 to 256
      on the benchmark machine).

  Returns:
    `raster.Fragments`.
  """
  num = faces.shape[0]
  pad = (-num) % chunk
  tri = vertices[faces]
  tri = jnp.concatenate([tri, jnp.zeros((pad, 3, 3), tri.dtype)])
  ids = jnp.arange(num + pad, dtype=jnp.int32)
  px = jnp.tile(jnp.arange(width, dtype=jnp.float32) + 0.5, height)
  py = jnp.repeat(jnp.arange(height, dtype=jnp.float32) + 0.5, width)

  def step(carry, xs):
    best_z, best_id = carry
    t, i = xs  # [chunk, 3, 3], [chunk]
    x, y, z = t[..., 0], t[..., 1], t[..., 2]
    area = ((x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0])
            - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0]))
    inv = jnp.where(area != 0, 1.0 / jnp.where(area != 0, area, 1.0), 0.0)
    # Barycentric k as a plane a_k * px + b_k * py + c_k, scaled by 1/area.
    nxt, prv = [1, 2, 0], [2, 0, 1]
    a = (y[:, nxt] - y[:, prv]) * inv[:, None]  # [chunk, 3]
    b = (x[:, prv] - x[:, nxt]) * inv[:, None]
    c = (x[:, nxt] * y[:, prv] - x[:, prv] * y[:, nxt]) * inv[:, None]
    bary = (a[:, :, None] * px + b[:, :, None] * py
            + c[:, :, None])  # [chunk, 3, P]
    inside = jnp.all(bary >= 0, axis=1) & (area != 0)[:, None]
    depth = jnp.where(inside, jnp.sum(bary * z[:, :, None], axis=1), jnp.inf)
    arg = jnp.argmin(depth, axis=0)  # first minimum: lowest id
    cz = jnp.min(depth, axis=0)
    take = cz < best_z
    return (jnp.where(take, cz, best_z), jnp.where(take, i[arg], best_id)), None

  init = (jnp.full((height * width,), jnp.inf),
          jnp.full((height * width,), -1, jnp.int32))
  (best_z, best_id), _ = lax.scan(
      step, init, (tri.reshape(-1, chunk, 3, 3), ids.reshape(-1, chunk)))
  best_id = best_id.reshape(height, width)
  mask = best_id >= 0
  corners = tri[jnp.maximum(best_id, 0)]  # [H, W, 3, 3]
  x, y = corners[..., 0], corners[..., 1]
  area = ((x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0])
          - (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0]))
  pxy = jnp.stack([px, py], -1).reshape(height, width, 1, 2)
  rolled = [jnp.roll(corners[..., :2], -s, axis=-2) for s in (1, 2)]
  w = ((rolled[0][..., 0] - pxy[..., 0]) * (rolled[1][..., 1] - pxy[..., 1])
       - (rolled[1][..., 0] - pxy[..., 0]) * (rolled[0][..., 1] - pxy[..., 1]))
  bary = jnp.where(mask[..., None],
                   w / jnp.where(mask, area, 1.0)[..., None], 0.0)
  return raster.Fragments(
      triangle_id=best_id, barycentrics=bary,
      depth=best_z.reshape(height, width), mask=mask)


def interleaved_medians(fns: Sequence[Callable[[], Any]], *,
                        repeats: int, warmup: int = 2) -> list[float]:
  """Median seconds per call of each of `fns`, timed round-robin."""
  for fn in fns:
    for _ in range(warmup):
      common.block(fn())
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, fn_times in zip(fns, times):
      start = time.perf_counter()
      common.block(fn())
      fn_times.append(time.perf_counter() - start)
  return [statistics.median(t) for t in times]


class _Case(NamedTuple):
  """One rasterization case: a mesh, an image size and its comparisons."""
  mesh: str  # "sphere" or "face"
  size: int
  faces: int  # sphere: approximate triangle count; face: subdivisions
  brute: bool  # compare with the brute-force sanity baseline
  embree: bool  # compare with embree ray casting


def _cases(quick: bool) -> list[_Case]:
  if quick:
    return [_Case("sphere", 64, 2_000, True, True),
            _Case("sphere", 64, 4_000, True, True)]
  spheres = [(128, 5_000), (128, 10_000), (128, 20_000), (128, 40_000),
             (64, 10_000), (256, 10_000), (256, 20_000), (256, 50_000)]
  return ([_Case("sphere", size, target, True,
                 size >= 128 and target >= 10_000)
           for size, target in spheres]
          + [_Case("face", 128, 0, False, True),
             _Case("face", 256, 0, False, True),
             _Case("face", 256, 1, False, True)])


def _embree_record(name: str, ours_s: float, caster: EmbreeCaster,
                   peer_s: float, agree: dict[str, float]) -> dict[str, Any]:
  """An embree row: build time and agreement in the case name and JSON."""
  case = (f"{name} (embree build {1e3 * caster.build_s:.1f} ms; coverage "
          f"IoU {agree['coverage_iou']:.4f}, ids {agree['id_match']:.2%}, "
          f"max depth diff {agree['depth_abs_max']:.1e})")
  rec = common.record(case, ours_s, EMBREE_PEER, peer_s)
  rec["peer_build_s"] = caster.build_s
  rec["agreement"] = agree
  return rec


def main(argv=None) -> None:
  args = common.parse_args("raster", argv)
  cases = _cases(args.quick)
  repeats, brute_repeats = (3, 1) if args.quick else (50, 1)
  ray_pyembree = import_embree()
  if ray_pyembree is None:
    print("embreex is not importable (pip install embreex, or the [parity] "
          "extra): skipping the embree (trimesh) rows", flush=True)
  ours_fns, names, face_counts = [], [], []
  brute_times = {}  # case index -> seconds
  casters, agreements = {}, {}  # case index -> EmbreeCaster, agreement
  for k, case in enumerate(cases):
    if case.mesh == "sphere":
      verts, faces = sphere_mesh(case.faces, case.size)
    else:
      verts, faces = face_mesh(case.size, case.faces)
    size = case.size
    verts_j, faces_j = jnp.asarray(verts), jnp.asarray(faces)
    # Compiled ahead of time, so no timed call includes compilation.
    ours = jax.jit(functools.partial(
        raster.rasterize, height=size, width=size)).lower(
            verts_j, faces_j).compile()
    frags = ours(verts_j, faces_j)
    names.append(f"rasterize {size}px F={faces.shape[0]}"
                 + ("" if case.mesh == "sphere" else " face"))
    face_counts.append(faces.shape[0])
    ours_fns.append(functools.partial(ours, verts_j, faces_j))
    if case.brute:
      brute = jax.jit(functools.partial(
          brute_force_rasterize, height=size, width=size)).lower(
              verts_j, faces_j).compile()
      agree = float(jnp.mean(frags.triangle_id
                             == brute(verts_j, faces_j).triangle_id))
      if agree < 0.999:
        raise AssertionError(
            f"rasterizers disagree on {1 - agree:.2%} of the pixels")
      brute_times[k] = common.time_fn(lambda: brute(verts_j, faces_j),
                                      warmup=0, repeats=brute_repeats)
      print(names[-1], f"brute force {brute_times[k]:.3f} s", flush=True)
    if case.embree and ray_pyembree is not None:
      casters[k] = EmbreeCaster(verts, faces, height=size, width=size)
      agreements[k] = agreement(frags, casters[k]())
      print(names[-1], f"embree build {casters[k].build_s:.4f} s",
            agreements[k], flush=True)
      if min(agreements[k]["coverage_iou"], agreements[k]["id_match"]) < 0.99:
        raise AssertionError(f"embree disagrees: {agreements[k]}")
  # Our cases and embree's take milliseconds: time them round-robin so that
  # load from other processes on the machine affects all of them alike.
  embree_keys = sorted(casters)
  times = interleaved_medians(ours_fns + [casters[k] for k in embree_keys],
                              repeats=repeats)
  ours_times = times[:len(cases)]
  embree_times = dict(zip(embree_keys, times[len(cases):]))
  records = [common.record(names[k], ours_times[k], BRUTE_PEER, t)
             for k, t in brute_times.items()]
  records += [_embree_record(names[k], ours_times[k], casters[k],
                             embree_times[k], agreements[k])
              for k in embree_keys]
  # How the cost grows with the triangle count at a fixed resolution.
  for i, j in zip(range(len(cases)), range(1, len(cases))):
    if (cases[i].brute and cases[j].brute
        and cases[i].size == cases[j].size):
      faces_ratio = face_counts[j] / face_counts[i]
      print(f"{cases[i].size} px, F {face_counts[i]} -> {face_counts[j]} "
            f"({faces_ratio:.2f}x): ours {ours_times[j] / ours_times[i]:.2f}x"
            f", brute force {brute_times[j] / brute_times[i]:.2f}x")

  # Forward + backward of an interpolated-colour loss (ours only).
  size, target = (64, 2_000) if args.quick else (128, 10_000)
  verts, faces = sphere_mesh(target, size)
  colours = jnp.asarray(
      np.random.default_rng(0).uniform(size=(verts.shape[0], 3)), jnp.float32)

  def loss(v, c):
    frags = raster.rasterize(v, faces, height=size, width=size)
    return jnp.sum(raster.interpolate(c, faces, frags) ** 2)

  grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
  t_grad = common.time_fn(lambda: grad(jnp.asarray(verts), colours),
                          repeats=repeats)
  records.append(common.record(
      f"rasterize+interpolate fwd+bwd {size}px F={faces.shape[0]}", t_grad))

  # A batch of 8 meshes under vmap, against 8 sequential calls.
  batch = jnp.asarray(verts)[None] + jnp.linspace(0, 3, 8)[:, None, None]
  render = functools.partial(raster.rasterize, faces=faces, height=size,
                             width=size)
  vmapped = jax.jit(jax.vmap(render))
  looped = jax.jit(lambda b: lax.map(render, b))
  t_vmap, t_loop = interleaved_medians(
      [lambda: vmapped(batch), lambda: looped(batch)], repeats=repeats)
  records.append(common.record(
      f"rasterize vmap x8 {size}px F={faces.shape[0]}", t_vmap,
      "8 sequential calls (lax.map)", t_loop))
  common.write(records, args.out)


if __name__ == "__main__":
  main()
