"""Command-line interface: one thin click module per command; the only place that prints or exits."""
