"""OpenCAC codesets layer."""
