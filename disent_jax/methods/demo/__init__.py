"""The harness demo: a tiny MLP autoencoder on procedural low-rank arrays.

Not one of the four product methods; it exists to exercise the training
harness end to end (sharding, checkpoints, resume, metrics) in seconds.
"""
