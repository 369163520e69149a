"""One module per ``Dataset`` method; each holds ``<Op>Dataset`` and its iterator."""

__all__: list[str] = []
