"""Sources: datasets made from values, generators and files."""

__all__: list[str] = []
