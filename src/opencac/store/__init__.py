"""OpenCAC store layer."""
