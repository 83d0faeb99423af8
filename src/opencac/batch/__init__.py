"""OpenCAC batch layer."""
