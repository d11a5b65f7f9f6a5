"""Reading a hand-made cluster: audit findings, the access picture, import."""
