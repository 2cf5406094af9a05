"""Bulk embedding: a file of any size to a sharded Parquet dataset, resumable after a crash (extra ``parquet``).

The library never imports this package. ``embed_file(JobConfig(...))`` runs the same engine steps as ``encode``.
"""

from .job import JobConfig, JobSummary, embed_file

__all__ = ["JobConfig", "JobSummary", "embed_file"]
