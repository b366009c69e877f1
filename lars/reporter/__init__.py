"""The reporter: stores per-host call statistics (spec section 7)."""

from lars.reporter.service import ReporterConfig, ReporterService, ReporterStats

__all__ = ["ReporterConfig", "ReporterService", "ReporterStats"]
