"""Throughput of the multilinear, SH-lighting and camera ops.

Forward and forward+backward at realistic sizes (paper 000's cores, BFM-sized
meshes, 64 px normal maps). n-way synthesis runs side by side with tensorly
(numpy backend) computing the same product; other ops are compared with a
plain numpy implementation where one is natural.

  python -m benchmarks.ops [--quick] [--out FILE]
"""

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tensorly as tl
from tensorly import tenalg
from tensorly.decomposition import tucker as tl_tucker
import trimesh

from benchmarks import common
from disent_jax.ops import camera
from disent_jax.ops import multilinear as ml
from disent_jax.ops import sh_lighting as sh


def _dev(*arrays: np.ndarray) -> list[jax.Array]:
  """Device copies, so host-to-device transfers are not timed."""
  return [jax.device_put(a) for a in arrays]


def _grad_of_sum(fn: Callable[..., jax.Array], argnums: Sequence[int]
                 ) -> Callable[..., Any]:
  """jit(grad(sum(fn(...)**2))) over `argnums`: a forward+backward pass."""
  return jax.jit(jax.grad(lambda *a: jnp.sum(fn(*a) ** 2),
                          argnums=tuple(argnums)))


class _Runner:
  """Times cases and collects records."""

  def __init__(self, quick: bool):
    self.warmup = 1 if quick else 2
    self.repeats = 3 if quick else 10
    self.records = []

  def time(self, fn: Callable[[], Any], **kwargs) -> float:
    return common.time_fn(fn, warmup=self.warmup, repeats=self.repeats,
                          **kwargs)

  def add(self, case: str, ours: Callable[[], Any],
          peer: str | None = None,
          peer_fn: Callable[[], Any] | None = None) -> None:
    ours_s = self.time(ours)
    peer_s = None
    if peer_fn is not None:
      peer_s = self.time(peer_fn, sync=lambda x: x)
    self.records.append(common.record(case, ours_s, peer, peer_s))
    print(f"{case}: {1e3 * ours_s:.3f} ms"
          + ("" if peer_s is None else f" ({peer}: {1e3 * peer_s:.3f} ms)"),
          flush=True)


def _bench_multilinear(run: _Runner, quick: bool, rng: np.random.Generator
                       ) -> None:
  n = 16 if quick else 64
  tensorly_np = "tensorly-numpy unfold(B)·khatri_rao"
  # Paper 000 §3.5 sizes: k_l = 9, k_exp = 15, k_id = 80.
  k_l, k_exp, k_id = 9, 15, 80
  z_l = rng.normal(size=(n, k_l)).astype(np.float32)
  z_exp = rng.normal(size=(n, k_exp)).astype(np.float32)
  z_id = rng.normal(size=(n, k_id)).astype(np.float32)

  kr = jax.jit(ml.khatri_rao)
  d_l, d_exp, d_id = _dev(z_l, z_exp, z_id)
  run.add(f"khatri_rao 3-way (9,15,80) n={n} fwd",
          lambda: kr([d_l, d_exp, d_id]), "tensorly-numpy khatri_rao",
          lambda: tenalg.khatri_rao([z_l.T, z_exp.T, z_id.T]))
  kr_grad = _grad_of_sum(lambda a, b, c: ml.khatri_rao([a, b, c]), (0, 1, 2))
  run.add(f"khatri_rao 3-way (9,15,80) n={n} fwd+bwd",
          lambda: kr_grad(d_l, d_exp, d_id))

  # Shape stream: B [3 x 9375, 15, 80] (eq. 4), 2-way synthesis.
  k3d = 3 * (1000 if quick else 9375)
  core_b = rng.normal(size=(k3d, k_exp, k_id)).astype(np.float32)
  b1 = tl.unfold(core_b, 0)
  d_core_b, = _dev(core_b)
  for method in ("auto", "khatri_rao", "sequential", "einsum"):
    fn = jax.jit(ml.synthesize, static_argnames="method")
    run.add(f"synthesize B[{k3d},15,80] n={n} {method} fwd",
            lambda fn=fn, m=method: fn(d_core_b, [d_exp, d_id], method=m),
            tensorly_np,
            lambda: b1 @ tenalg.khatri_rao([z_exp.T, z_id.T]))
  grad_b = _grad_of_sum(lambda c, a, b: ml.synthesize(c, [a, b]), (0, 1, 2))
  run.add(f"synthesize B[{k3d},15,80] n={n} auto fwd+bwd",
          lambda: grad_b(d_core_b, d_exp, d_id))

  # Texture stream: Q [3 x 32 x 32, 9, 15, 80] (eq. 2), 3-way synthesis.
  kx = 3 * (16 * 16 if quick else 32 * 32)
  core_q = rng.normal(size=(kx, k_l, k_exp, k_id)).astype(np.float32)
  q1 = tl.unfold(core_q, 0)
  d_core_q, = _dev(core_q)
  synth = jax.jit(ml.synthesize)
  run.add(f"synthesize Q[{kx},9,15,80] n={n} auto fwd",
          lambda: synth(d_core_q, [d_l, d_exp, d_id]), tensorly_np,
          lambda: q1 @ tenalg.khatri_rao([z_l.T, z_exp.T, z_id.T]))
  grad_q = _grad_of_sum(lambda c, a, b, d: ml.synthesize(c, [a, b, d]),
                        (0, 1, 2, 3))
  run.add(f"synthesize Q[{kx},9,15,80] n={n} auto fwd+bwd",
          lambda: grad_q(d_core_q, d_l, d_exp, d_id))
  const = jax.jit(ml.synthesize_constant_mode)
  ones = np.full((k_l, n), 1.0 / k_l, np.float32)
  run.add(f"constant-illumination eq.(5) Q[{kx},9,15,80] n={n} fwd",
          lambda: const(d_core_q, [d_exp, d_id]), tensorly_np,
          lambda: q1 @ tenalg.khatri_rao([ones, z_exp.T, z_id.T]))

  # Small output (k < max k_i): "auto" contracts without Khatri-Rao.
  n_small = 64 if quick else 512
  core_s = rng.normal(size=(16, k_l, k_exp, k_id)).astype(np.float32)
  zs = [rng.normal(size=(n_small, k)).astype(np.float32)
        for k in (k_l, k_exp, k_id)]
  core_s, = _dev(core_s)
  zs = _dev(*zs)
  fn_s = jax.jit(ml.synthesize, static_argnames="method")
  run.add(f"synthesize Q[16,9,15,80] n={n_small} auto(sequential) fwd",
          lambda: fn_s(core_s, zs, method="auto"),
          "ours khatri_rao method",
          lambda: common.block(fn_s(core_s, zs, method="khatri_rao")))

  # §3.4 rotation of the 2-way synthesis feature and pose projection.
  feats = ml.khatri_rao([d_exp, d_id])
  z_p, = _dev(rng.normal(size=(n, 9)).astype(np.float32))
  rot_feat = jax.jit(lambda f, z: ml.rotate_features(
      f, ml.latent_to_rotation(z)))
  run.add(f"rotate_features(latent_to_rotation) k=1200 n={n} fwd",
          lambda: rot_feat(feats, z_p))
  rot_grad = _grad_of_sum(lambda f, z: ml.rotate_features(
      f, ml.latent_to_rotation(z)), (0, 1))
  run.add(f"rotate_features(latent_to_rotation) k=1200 n={n} fwd+bwd",
          lambda: rot_grad(feats, z_p))

  # Tucker initialisation: HOSVD + 1 HOOI sweep, same as tensorly's
  # tucker(init="svd", n_iter_max=1).
  data = rng.normal(size=(256 if quick else 2048, 15, 20)).astype(np.float32)
  ranks = (32, 10, 12)
  tuck = jax.jit(ml.tucker, static_argnums=1,
                 static_argnames="num_iterations")
  run.add(f"tucker {data.shape} ranks={ranks} 1 HOOI sweep",
          lambda d=_dev(data)[0]: tuck(d, ranks, num_iterations=1),
          "tensorly-numpy tucker n_iter_max=1",
          lambda: tl_tucker(data, rank=list(ranks), n_iter_max=1, tol=0.0))


def _bench_camera(run: _Runner, quick: bool, rng: np.random.Generator
                  ) -> None:
  n = 256 if quick else 4096
  angles = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
  x6 = rng.normal(size=(n, 6)).astype(np.float32)
  x9 = rng.normal(size=(n, 9)).astype(np.float32)
  angles, x6, x9 = _dev(angles, x6, x9)
  for name, fn, arg in [
      ("euler_to_rotation", camera.euler_to_rotation, angles),
      ("rotation_to_euler", lambda a: camera.rotation_to_euler(
          camera.euler_to_rotation(a)), angles),
      ("rotation_from_6d", camera.rotation_from_6d, x6),
      ("rotation_from_9d", camera.rotation_from_9d, x9),
  ]:
    jf = jax.jit(fn)
    run.add(f"{name} n={n} fwd", lambda jf=jf, a=arg: jf(a))
    gf = _grad_of_sum(fn, (0,))
    run.add(f"{name} n={n} fwd+bwd", lambda gf=gf, a=arg: gf(a))

  sphere = trimesh.creation.icosphere(subdivisions=4 if quick else 6)
  verts = np.asarray(sphere.vertices, np.float32)
  faces = np.asarray(sphere.faces, np.int32)
  batch = 2 if quick else 8
  vb = (verts[None] * rng.uniform(0.9, 1.1, (batch, 1, 1))).astype(
      np.float32)
  nv, nf = verts.shape[0], faces.shape[0]
  d_vb, d_faces = _dev(vb, faces)

  def normals_np():
    out = []
    for b in range(batch):
      v = vb[b]
      cross = np.cross(v[faces[:, 1]] - v[faces[:, 0]],
                       v[faces[:, 2]] - v[faces[:, 0]])
      acc = np.zeros_like(v)
      for c in range(3):
        np.add.at(acc, faces[:, c], cross)
      out.append(acc / np.maximum(np.linalg.norm(acc, axis=-1,
                                                  keepdims=True), 1e-12))
    return out

  vn = jax.jit(camera.vertex_normals)
  run.add(f"vertex_normals V={nv} F={nf} batch={batch} fwd",
          lambda: vn(d_vb, d_faces), "numpy np.add.at", normals_np)
  vn_grad = _grad_of_sum(lambda v: camera.vertex_normals(v, faces), (0,))
  run.add(f"vertex_normals V={nv} F={nf} batch={batch} fwd+bwd",
          lambda: vn_grad(d_vb))

  rot = np.asarray(camera.euler_to_rotation(
      rng.uniform(-0.5, 0.5, (batch, 3)).astype(np.float32)))
  scale = np.full((batch,), 30.0, np.float32)
  trans = np.full((batch, 2), 64.0, np.float32)
  wps = jax.jit(camera.weak_perspective_screen)

  def wps_np():
    p = scale[:, None, None] * np.einsum("bij,bnj->bni", rot, vb)
    return np.stack([p[..., 0] + trans[:, None, 0],
                     trans[:, None, 1] - p[..., 1], -p[..., 2]], -1)

  run.add(f"weak_perspective_screen V={nv} batch={batch} fwd",
          lambda d=_dev(rot, scale, trans): wps(d_vb, *d), "numpy", wps_np)


def _bench_sh(run: _Runner, quick: bool, rng: np.random.Generator) -> None:
  batch = 2 if quick else 8
  nv = 35709  # BFM 2009 cropped face
  normals = rng.normal(size=(batch, nv, 3)).astype(np.float32)
  albedo = rng.uniform(size=(batch, nv, 3)).astype(np.float32)
  coeffs = rng.normal(size=(batch, 3, 9)).astype(np.float32)

  a = [np.pi, 2 * np.pi / np.sqrt(3.0), 2 * np.pi / np.sqrt(8.0)]
  c = [1 / np.sqrt(4 * np.pi), np.sqrt(3.0) / np.sqrt(4 * np.pi),
       3 * np.sqrt(5.0) / np.sqrt(12 * np.pi)]

  def shade_np(alb, nrm, coef):
    nrm = nrm / np.maximum(np.linalg.norm(nrm, axis=-1, keepdims=True),
                           1e-12)
    x, y, z = nrm[..., 0], nrm[..., 1], nrm[..., 2]
    basis = np.stack([
        a[0] * c[0] * np.ones_like(x), -a[1] * c[1] * y, a[1] * c[1] * z,
        -a[1] * c[1] * x, a[2] * c[2] * x * y, -a[2] * c[2] * y * z,
        a[2] * c[2] * 0.5 / np.sqrt(3.0) * (3 * z * z - 1),
        -a[2] * c[2] * x * z, a[2] * c[2] * 0.5 * (x * x - y * y)], -1)
    lead = coef.shape[:1] + (1,) * (nrm.ndim - 2)
    return alb * np.einsum("...k,...ck->...c", basis,
                           coef.reshape(lead + (3, 9)))

  sv = jax.jit(sh.shade_vertices)
  run.add(f"shade_vertices V={nv} batch={batch} fwd",
          lambda d=_dev(albedo, normals, coeffs): sv(*d), "numpy",
          lambda: shade_np(albedo, normals, coeffs))
  sv_grad = _grad_of_sum(sh.shade_vertices, (0, 1, 2))
  run.add(f"shade_vertices V={nv} batch={batch} fwd+bwd",
          lambda d=_dev(albedo, normals, coeffs): sv_grad(*d))

  nb = 8 if quick else 64
  nmap = rng.normal(size=(nb, 64, 64, 3)).astype(np.float32)
  amap = rng.uniform(size=(nb, 64, 64, 3)).astype(np.float32)
  cmap = rng.normal(size=(nb, 3, 9)).astype(np.float32)
  sm = jax.jit(sh.shade_normal_map)
  run.add(f"shade_normal_map 64x64 batch={nb} fwd",
          lambda d=_dev(amap, nmap, cmap): sm(*d), "numpy",
          lambda: shade_np(amap, nmap, cmap))
  sm_grad = _grad_of_sum(sh.shade_normal_map, (0, 1, 2))
  run.add(f"shade_normal_map 64x64 batch={nb} fwd+bwd",
          lambda d=_dev(amap, nmap, cmap): sm_grad(*d))
  dirs = rng.normal(size=(nb, 3)).astype(np.float32)
  dl = jax.jit(lambda d: sh.directional_light_sh(d, color=1.0, ambient=0.3))
  run.add(f"directional_light_sh batch={nb} fwd",
          lambda d=_dev(dirs)[0]: dl(d))


def main(argv: Sequence[str] | None = None) -> None:
  args = common.parse_args("ops", argv)
  tl.set_backend("numpy")
  rng = np.random.default_rng(0)
  run = _Runner(args.quick)
  with jax.default_matmul_precision("highest"):
    _bench_multilinear(run, args.quick, rng)
    _bench_camera(run, args.quick, rng)
    _bench_sh(run, args.quick, rng)
  common.write(run.records, args.out)


if __name__ == "__main__":
  main()
