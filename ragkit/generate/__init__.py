"""Generators: write the answer from the retrieved chunks, with [n] citations."""
