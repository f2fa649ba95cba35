"""Pipeline stages: plain functions that dodo.py wires into doit tasks."""
