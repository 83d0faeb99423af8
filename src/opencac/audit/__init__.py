"""OpenCAC audit layer."""
