"""pressflow: describe an event once, publish it in every member language."""

__version__ = "0.1.0"
