"""Rasterizer throughput versus triangle count and resolution.

Runs `disent_jax.ops.raster.rasterize` side by side with a brute-force
all-pixels x all-triangles JAX rasterizer (same conventions, same outputs)
on closed latitude-longitude spheres that fill most of the image, and
checks that both produce the same triangle ids.

  python -m benchmarks.raster [--quick] [--out FILE]
"""

import functools
import math
import statistics
import time
from typing import Any, Callable, Sequence

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from disent_jax.ops import raster


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


def main(argv=None) -> None:
  args = common.parse_args("raster", argv)
  if args.quick:
    cases = [(64, 2_000), (64, 4_000)]
    repeats, brute_repeats = 3, 1
  else:
    cases = [(128, 5_000), (128, 10_000), (128, 20_000), (128, 40_000),
             (64, 10_000), (256, 10_000), (256, 20_000), (256, 50_000)]
    repeats, brute_repeats = 50, 1
  ours_fns, brute_times, names, face_counts = [], [], [], []
  for size, target in cases:
    verts, faces = sphere_mesh(target, size)
    verts, faces = jnp.asarray(verts), jnp.asarray(faces)
    # Compiled ahead of time, so no timed call includes compilation.
    ours = jax.jit(functools.partial(
        raster.rasterize, height=size, width=size)).lower(
            verts, faces).compile()
    brute = jax.jit(functools.partial(
        brute_force_rasterize, height=size, width=size)).lower(
            verts, faces).compile()
    a, b = ours(verts, faces), brute(verts, faces)
    agree = float(jnp.mean(a.triangle_id == b.triangle_id))
    if agree < 0.999:
      raise AssertionError(
          f"rasterizers disagree on {1 - agree:.2%} of the pixels")
    brute_times.append(common.time_fn(lambda: brute(verts, faces), warmup=0,
                                      repeats=brute_repeats))
    ours_fns.append(functools.partial(ours, verts, faces))
    names.append(f"rasterize {size}px F={faces.shape[0]}")
    face_counts.append(faces.shape[0])
    print(names[-1], f"brute force {brute_times[-1]:.3f} s", flush=True)
  # Our cases take milliseconds: time them round-robin so that load from
  # other processes on the machine affects all of them alike.
  ours_times = interleaved_medians(ours_fns, repeats=repeats)
  records = [common.record(name, t, "brute-force JAX", tb)
             for name, t, tb in zip(names, ours_times, brute_times)]
  # How the cost grows with the triangle count at a fixed resolution.
  for i, j in zip(range(len(cases)), range(1, len(cases))):
    if cases[i][0] == cases[j][0]:
      faces_ratio = face_counts[j] / face_counts[i]
      print(f"{cases[i][0]} px, F {face_counts[i]} -> {face_counts[j]} "
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
