r"""Builds a mesh dataset's array cache (see disent_jax/cli/cache_meshes.py).

  python launch/cache_meshes.py --dataset=coma --root=/data/COMA \
      --cache_dir=/data/cache
"""

from disent_jax.cli import cache_meshes

if __name__ == "__main__":
  cache_meshes.run()
