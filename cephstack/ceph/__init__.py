"""Everything that talks to a live cluster: the librados adapter and observe()."""
