"""SynthFace generation throughput: is the world fast enough to feed training?

Meshes per second from the on-the-fly `synthface_meshes` generator and
rendered examples (image plus all ground-truth maps) per second from the
`synthface_images` generator, one compiled call per chunk of
`onthefly.CHUNK` examples, as the training pipelines use them. The peer
column is the step time of the method that consumes the data (the
pointnet_id_vae quick config's joint step is ~0.2-0.5 s per batch of 8 on
2 CPU cores), so a ratio above 1 means generation keeps up.

  python -m benchmarks.synthface [--quick] [--out FILE]
"""

import jax.numpy as jnp

from benchmarks import common
from disent_jax.data import onthefly


def _chunk_time(gen: onthefly.Generator, repeats: int) -> float:
  idx = jnp.arange(onthefly.CHUNK, dtype=jnp.int32) % gen.num_examples
  return common.time_fn(lambda: gen.chunk_fn(idx), warmup=1, repeats=repeats)


def main(argv=None) -> None:
  args = common.parse_args("synthface", argv)
  repeats = 2 if args.quick else 5
  records = []
  mesh_cases = [("1k", 2)] if args.quick else [("1k", 24), ("2.5k", 12),
                                                ("5k", 12)]
  for resolution, subjects in mesh_cases:
    gen = onthefly.mesh_generator(onthefly.MeshConfig(
        resolution=resolution, num_subjects=subjects, num_frames=10))
    t = _chunk_time(gen, repeats) / onthefly.CHUNK
    print(f"meshes {resolution}: {1 / t:.0f} per second")
    records.append(common.record(
        f"synthface mesh {resolution} (V={gen.world.num_vertices}), "
        f"s/mesh; {1 / t:.0f} meshes/s", t,
        peer="8 meshes per 0.2 s training step (budget per mesh)",
        peer_s=0.2 / 8))
  image_cases = [("tiny",)] if args.quick else [("64",), ("128",)]
  for (name,) in image_cases:
    gen = onthefly.generator("synthface_images", name)
    cfg = gen.config
    t = _chunk_time(gen, repeats) / onthefly.CHUNK
    print(f"images {name}: {1 / t:.0f} per second")
    records.append(common.record(
        f"synthface image {cfg.size}px ({cfg.resolution} mesh, all ground "
        f"truth), s/image; {1 / t:.0f} images/s", t,
        peer="32 images per 0.5 s training step (budget per image)",
        peer_s=0.5 / 32))
  common.write(records, args.out)


if __name__ == "__main__":
  main()
