"""Fraud-detection demo: synthetic card transactions with labelled fraud (see ``generator``)."""
