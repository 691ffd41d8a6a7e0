"""Tests for the demo apps (data generators)."""
