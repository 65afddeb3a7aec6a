"""Typed evidence: every report a card, a gate or a reader relies on, with its schema.

Each record carries the ``subject`` it measured (the sha256 of the model files) so a
consumer compares identities, never file times (``hubtool.evidence.binding``).
"""
