"""Data: IDX files, named dataset sources (download, checksum, cache), image folders, in-memory batches."""

from ganvae.data.sources import SOURCES, DatasetSource, FileSpec, download, get_source, verify

__all__ = ["SOURCES", "DatasetSource", "FileSpec", "download", "get_source", "verify"]
