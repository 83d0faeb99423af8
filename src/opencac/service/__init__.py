"""OpenCAC service layer."""
