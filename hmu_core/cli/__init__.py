"""The ``hmu`` command line: one module per verb group, each with ``add_parser`` and ``run``."""
