"""Flax linen building blocks; import the submodules directly."""
