"""The differential exactness suite: a corpus of branch constructs, its runner, and the harness comparing the layer with coverage.py."""
