"""OpenCAC cli layer."""
