"""OpenCAC edits layer."""
