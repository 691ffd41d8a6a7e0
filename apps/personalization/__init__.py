"""Personalization demo: a synthetic clickstream and product catalog (see ``generator``)."""
