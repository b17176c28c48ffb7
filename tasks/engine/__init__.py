"""The engine: the Django Tasks backend, the worker and the context a task function gets."""
