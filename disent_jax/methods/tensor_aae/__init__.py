"""Paper 000: the adversarial neuro-tensorial auto-encoder."""
