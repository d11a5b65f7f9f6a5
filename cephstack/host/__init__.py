"""On an OpenStack host: install a rendered bundle, merge service files, check access."""
