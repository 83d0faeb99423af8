"""OpenCAC ui layer."""
