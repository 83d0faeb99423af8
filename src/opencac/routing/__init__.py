"""OpenCAC routing layer."""
