"""Annotation audits: how far GAMDSS reselection moves a dataset's annotated keyframes.

:func:`audit_cache` / :func:`audit_caches` write a report (Markdown or HTML) with
displacement histograms, offset-versus-apex uncertainty, per-group comparisons and the
paper's Fig.-2 frame-difference curves; every plot's numbers are written as CSV beside it.
"""

from .run import AuditReport, AuditSettings, audit_cache, audit_caches

__all__ = ["audit_cache", "audit_caches", "AuditReport", "AuditSettings"]
