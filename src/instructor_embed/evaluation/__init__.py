"""Evaluation on MTEB (extra ``eval``): per-task instructions, offline local tasks, reports.

The library never imports this package.
"""
