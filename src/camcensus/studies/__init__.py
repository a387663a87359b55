"""Studies: one module per investigation, with its definitions, defaults and published figures."""
