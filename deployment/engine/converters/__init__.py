"""Converters: one module per engine behind one interface (base.Converter), one registry (registry.py)."""
