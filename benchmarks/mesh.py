"""Mesh / graph building blocks side by side with PyTorch Geometric and PyTorch.

Run: `python -m benchmarks.mesh [--quick] [--out FILE]`.

Cases (CoMA size: 5,023 vertices, a [4, 4, 4, 4] hierarchy 5023 -> 1256 ->
314 -> 79 -> 20, batch 16):

* `chebconv_fwd`, `chebconv_fwd_bwd`: one ChebConv (K = 6, 16 -> 16
  channels) against `torch_geometric.nn.ChebConv(normalization="sym")` with
  lambda_max = 2, batched as PyG batches graphs (a disjoint union).
* `coma_step`: a full CoMA autoencoder training step (forward, L1 loss,
  backward, Adam) against the same network built from PyG `ChebConv` and
  PyTorch gathers for pooling.
* `pointnet_step`: a PointNet encoder training step (widths 3 -> 64 -> 64 ->
  64 -> 128 -> 1024 with batch norm, max-pool, four linear heads, Adam) on
  5,023 points against the equivalent PyTorch module (Conv1d, BatchNorm1d).
* `operator/*`: our Chebyshev convolution forward+backward with the "auto"
  storage format (ours) against each other format (peer); ratio > 1 means
  the default is the faster.

The mesh is an icosphere decimated to 5,023 vertices with our own
decimation. The PyTorch peers need the `[parity]` extra (torch,
torch-geometric); without them only our timings are recorded. Ours and the
peer are timed in alternating rounds (the median over rounds) so that load
from other processes hits both alike.
"""

import math
import sys
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import trimesh

from benchmarks import common
from disent_jax.nn import chebconv
from disent_jax.nn import heads
from disent_jax.nn import mesh_autoencoder
from disent_jax.nn import pointnet
from disent_jax.ops import graph
from disent_jax.ops import hierarchy


def _pyg():
  try:
    import torch_geometric.nn as pyg_nn  # pylint: disable=g-import-not-at-top
    return pyg_nn
  except ImportError:
    return None


def _paired(ours: Callable[[], Any], peer: Callable[[], Any] | None, *,
            rounds: int, repeats: int,
            peer_sync: Callable[[Any], Any] = lambda x: x
            ) -> tuple[float, float | None]:
  """Ours and an optional peer timed in alternating rounds."""
  none = lambda: None
  contestants = [(ours, common.block, none)]
  if peer is not None:
    contestants.append((peer, peer_sync, none))
  times = common.alternating(contestants, rounds=rounds, repeats=repeats,
                             warmup=2)
  return times[0], (times[1] if peer is not None else None)


def _template(quick: bool) -> tuple[np.ndarray, np.ndarray]:
  sphere = trimesh.creation.icosphere(subdivisions=4 if quick else 5)
  verts = np.asarray(sphere.vertices) * 100.0
  target = 1256 if quick else 5023
  dec = hierarchy.decimate(verts, np.asarray(sphere.faces), num_vertices=target)
  return verts[dec.kept], dec.faces


def _edge_index(torch, faces, num_vertices, batch):
  edges = graph.edges_from_faces(faces, num_vertices=num_vertices)
  both = np.concatenate([edges, edges[:, ::-1]]).T
  batched = np.concatenate([both + b * num_vertices for b in range(batch)],
                           axis=1)
  return torch.from_numpy(np.ascontiguousarray(batched)).long()


# ---------------------------------------------------------------------------
# ChebConv.
# ---------------------------------------------------------------------------


def bench_chebconv(verts, faces, *, batch, rounds, repeats, torch, pyg_nn,
                   records):
  v = verts.shape[0]
  rng = np.random.default_rng(0)
  x_np = rng.standard_normal((batch, v, 16)).astype(np.float32)
  op = graph.chebyshev_operator(faces, num_vertices=v)
  layer = chebconv.ChebConv(16, K=6)
  x = jnp.asarray(x_np)
  params = layer.init(jax.random.key(0), x, op)
  fwd = jax.jit(lambda p, x: layer.apply(p, x, op))
  fwd_bwd = jax.jit(jax.grad(
      lambda p, x: jnp.sum(layer.apply(p, x, op) ** 2), argnums=(0, 1)))

  peer_fwd = peer_fwd_bwd = None
  if pyg_nn is not None:
    conv = pyg_nn.ChebConv(16, 16, K=6, normalization="sym")
    edge_index = _edge_index(torch, faces, v, batch)
    xt = torch.from_numpy(x_np.reshape(batch * v, 16)).requires_grad_(True)
    lam = torch.tensor(2.0)

    def peer_fwd():
      with torch.no_grad():
        return conv(xt, edge_index, lambda_max=lam)

    def peer_fwd_bwd():
      conv.zero_grad(set_to_none=True)
      xt.grad = None
      out = conv(xt, edge_index, lambda_max=lam)
      (out ** 2).sum().backward()
      return xt.grad

  size = f"V={v} K=6 16->16 B={batch}"
  ours_s, peer_s = _paired(lambda: fwd(params, x), peer_fwd, rounds=rounds,
                           repeats=repeats)
  records.append(common.record(f"chebconv_fwd {size}", ours_s,
                               "torch_geometric ChebConv" if peer_fwd
                               else None, peer_s))
  ours_s, peer_s = _paired(lambda: fwd_bwd(params, x), peer_fwd_bwd,
                           rounds=rounds, repeats=repeats)
  records.append(common.record(f"chebconv_fwd_bwd {size}", ours_s,
                               "torch_geometric ChebConv" if peer_fwd_bwd
                               else None, peer_s))
  # Storage formats: the "auto" default (ours) against each alternative
  # (peer), in alternating rounds; ratio > 1: the default is faster.
  auto = fwd_bwd
  for fmt in ("segment", "bcoo", "ell"):
    if fmt == op.format:
      continue
    op_f = graph.chebyshev_operator(faces, num_vertices=v, format=fmt)
    other = jax.jit(jax.grad(
        lambda p, x, o=op_f: jnp.sum(layer.apply(p, x, o) ** 2),
        argnums=(0, 1)))
    ours_s, peer_s = _paired(lambda: auto(params, x),
                             lambda other=other: other(params, x),
                             rounds=rounds, repeats=repeats,
                             peer_sync=common.block)
    records.append(common.record(
        f"operator/auto={op.format} vs {fmt} chebconv_fwd_bwd {size}",
        ours_s, f"ours, format={fmt}", peer_s))


# ---------------------------------------------------------------------------
# CoMA autoencoder step.
# ---------------------------------------------------------------------------


def _torch_coma(torch, pyg_nn, hier, batch):
  """CoMA built from PyG ChebConv; pooling by gathers (k = 1 or 3)."""
  tnn = torch.nn
  levels = len(hier.down)
  edge_index = [_edge_index(torch, f, v.shape[0], batch)
                for v, f in zip(hier.vertices, hier.faces)]
  down = [torch.from_numpy(d.indices[:, 0].astype(np.int64))
          for d in hier.down]
  up_idx = [torch.from_numpy(u.indices.astype(np.int64)) for u in hier.up]
  up_w = [torch.from_numpy(u.weights) for u in hier.up]
  sizes = hier.num_vertices
  enc_f = mesh_autoencoder.COMA_ENCODER_FILTERS
  dec_f = mesh_autoencoder.COMA_DECODER_FILTERS
  lam = torch.tensor(2.0)

  class Coma(tnn.Module):

    def __init__(self):
      super().__init__()
      widths = (3,) + tuple(enc_f)
      self.enc = tnn.ModuleList(
          [pyg_nn.ChebConv(widths[i], widths[i + 1], K=6,
                           normalization="sym") for i in range(levels)])
      self.to_latent = tnn.Linear(sizes[-1] * enc_f[-1], 8)
      self.from_latent = tnn.Linear(8, sizes[-1] * dec_f[0])
      dwidths = (dec_f[0],) + tuple(dec_f)
      self.dec = tnn.ModuleList(
          [pyg_nn.ChebConv(dwidths[i], dwidths[i + 1], K=6,
                           normalization="sym") for i in range(levels)])
      self.out = pyg_nn.ChebConv(dec_f[-1], 3, K=6, normalization="sym")

    def forward(self, x):  # x [B, V, 3]
      for i, conv in enumerate(self.enc):
        h = conv(x.reshape(-1, x.shape[-1]), edge_index[i], lambda_max=lam)
        x = torch.relu(h).reshape(batch, sizes[i], -1)[:, down[i]]
      z = self.to_latent(x.reshape(batch, -1))
      x = self.from_latent(z).reshape(batch, sizes[-1], dec_f[0])
      for step, conv in enumerate(self.dec):
        level = levels - 1 - step
        x = (x[:, up_idx[level]] * up_w[level][None, :, :, None]).sum(2)
        h = conv(x.reshape(-1, x.shape[-1]), edge_index[level],
                 lambda_max=lam)
        x = torch.relu(h).reshape(batch, sizes[level], -1)
      h = self.out(x.reshape(-1, x.shape[-1]), edge_index[0], lambda_max=lam)
      return h.reshape(batch, sizes[0], 3)

  return Coma()


def bench_coma(verts, faces, *, batch, rounds, repeats, torch, pyg_nn,
               records):
  hier = hierarchy.build_hierarchy(verts, faces, factors=(4, 4, 4, 4))
  ops = hierarchy.hierarchy_operators(hier)
  model = mesh_autoencoder.MeshAutoencoder(ops, hier.down, hier.up)
  rng = np.random.default_rng(1)
  x_np = rng.standard_normal((batch, verts.shape[0], 3)).astype(np.float32)
  x = jnp.asarray(x_np)
  params = jax.jit(model.init)(jax.random.key(1), x)
  tx = optax.adam(1e-3)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x):
    loss, grads = jax.value_and_grad(
        lambda p: jnp.mean(jnp.abs(model.apply(p, x) - x)))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  state = {"params": params, "opt": opt_state}

  def ours():
    state["params"], state["opt"], loss = step(state["params"], state["opt"],
                                               x)
    return loss

  peer = None
  if pyg_nn is not None:
    net = _torch_coma(torch, pyg_nn, hier, batch)
    topt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt = torch.from_numpy(x_np)

    def peer():
      topt.zero_grad(set_to_none=True)
      loss = (net(xt) - xt).abs().mean()
      loss.backward()
      topt.step()
      return loss

  ours_s, peer_s = _paired(ours, peer, rounds=rounds, repeats=repeats)
  sizes = "->".join(str(n) for n in hier.num_vertices)
  records.append(common.record(
      f"coma_step V={sizes} [16,16,16,32] K=6 z=8 B={batch}", ours_s,
      "PyTorch + torch_geometric ChebConv" if peer else None, peer_s))


# ---------------------------------------------------------------------------
# PointNet encoder step.
# ---------------------------------------------------------------------------


class _PointNetVaeEncoder(nn.Module):
  """PointNet + four linear heads (identity / expression mean, log-var)."""
  latent: int = 4

  @nn.compact
  def __call__(self, x, *, use_running_average):
    feat = pointnet.PointNetEncoder()(
        x, use_running_average=use_running_average).features
    ident = heads.GaussianHead(self.latent)(feat, deterministic=True)
    expr = heads.GaussianHead(self.latent)(feat, deterministic=True)
    return (ident.mean, ident.log_variance, expr.mean, expr.log_variance)


def _torch_pointnet(torch, latent=4):
  tnn = torch.nn
  widths = (3,) + tuple(pointnet.FACE_EXP_WIDTHS)

  class Encoder(tnn.Module):

    def __init__(self):
      super().__init__()
      layers = []
      for i in range(len(widths) - 1):
        layers += [tnn.Conv1d(widths[i], widths[i + 1], 1),
                   tnn.BatchNorm1d(widths[i + 1]), tnn.ReLU()]
      self.mlp = tnn.Sequential(*layers)
      self.heads = tnn.ModuleList(
          [tnn.Linear(widths[-1], latent) for _ in range(4)])

    def forward(self, x):  # [B, N, 3]
      h = self.mlp(x.transpose(1, 2)).amax(dim=2)
      return [head(h) for head in self.heads]

  return Encoder()


def bench_pointnet(num_points, *, batch, rounds, repeats, torch, records):
  rng = np.random.default_rng(2)
  x_np = rng.standard_normal((batch, num_points, 3)).astype(np.float32)
  x = jnp.asarray(x_np)
  model = _PointNetVaeEncoder()
  variables = jax.jit(lambda k, x: model.init(k, x, use_running_average=False)
                      )(jax.random.key(2), x)
  tx = optax.adam(1e-4)
  opt_state = tx.init(variables["params"])

  @jax.jit
  def step(params, batch_stats, opt_state, x):

    def loss_fn(p):
      outs, updates = model.apply({"params": p, "batch_stats": batch_stats},
                                  x, use_running_average=False,
                                  mutable=["batch_stats"])
      return sum(jnp.mean(o ** 2) for o in outs), updates["batch_stats"]

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), stats, opt_state, loss

  state = {"p": variables["params"], "s": variables["batch_stats"],
           "o": opt_state}

  def ours():
    state["p"], state["s"], state["o"], loss = step(state["p"], state["s"],
                                                    state["o"], x)
    return loss

  peer = None
  if torch is not None:
    net = _torch_pointnet(torch)
    net.train()
    topt = torch.optim.Adam(net.parameters(), lr=1e-4)
    xt = torch.from_numpy(x_np)

    def peer():
      topt.zero_grad(set_to_none=True)
      loss = sum((o ** 2).mean() for o in net(xt))
      loss.backward()
      topt.step()
      return loss

  ours_s, peer_s = _paired(ours, peer, rounds=rounds, repeats=repeats)
  records.append(common.record(
      f"pointnet_step N={num_points} 3-64-64-64-128-1024 B={batch}", ours_s,
      "PyTorch Conv1d/BatchNorm1d" if peer else None, peer_s))


def main(argv=None) -> None:
  args = common.parse_args("mesh", argv)
  torch, pyg_nn = common.import_torch(), _pyg()
  if torch is None or pyg_nn is None:
    print("torch / torch_geometric not installed: timing ours only "
          "(pip install -e .[parity])", file=sys.stderr)
  quick = args.quick
  rounds, repeats = (1, 2) if quick else (5, 3)
  batch = 4 if quick else 16
  verts, faces = _template(quick)
  records = []
  bench_chebconv(verts, faces, batch=batch, rounds=rounds, repeats=repeats,
                 torch=torch, pyg_nn=pyg_nn, records=records)
  bench_coma(verts, faces, batch=batch, rounds=rounds, repeats=repeats,
             torch=torch, pyg_nn=pyg_nn, records=records)
  bench_pointnet(verts.shape[0], batch=batch, rounds=rounds, repeats=repeats,
                 torch=torch, records=records)
  assert all(math.isfinite(r["ours_s"]) for r in records)
  common.write(records, args.out)


if __name__ == "__main__":
  main()
