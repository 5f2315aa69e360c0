"""Thin Flask blueprints: authenticate, parse parameters, call the store and engine, shape JSON."""
