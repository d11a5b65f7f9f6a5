"""One module per command family; each holds its commands and registers its parsers."""
