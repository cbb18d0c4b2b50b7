"""Metrics, statistics over cells, result tables and dataset analysis."""
