"""OpenCAC: open-source computer-assisted coding for ICD-10-CM and ICD-10-PCS."""

__version__ = "0.1.0"
