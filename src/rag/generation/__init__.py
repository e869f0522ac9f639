"""Grounded generation: retrieve, prompt, stream tokens from Triton, cite what was used."""
