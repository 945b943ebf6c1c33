"""Enlaight operations toolkit: the stack's Docker Compose files driven from Python."""

__version__ = "0.1.0"
