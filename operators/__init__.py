"""Operator implementations: what the compiled plan's processors run.

Operators are synchronous functions over micro-batches (lists of row tuples); async lives only
at the broker edges in :mod:`streams.runtime`.
"""
