"""Export layer: a stored trial's trained sub-network as a standalone module, checked and timed."""

from .exporter import ExportResult, export_trial, load_trained, resolve_key

__all__ = ["ExportResult", "export_trial", "load_trained", "resolve_key"]
