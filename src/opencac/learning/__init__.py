"""OpenCAC learning layer."""
