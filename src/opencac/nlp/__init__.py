"""OpenCAC nlp layer."""
