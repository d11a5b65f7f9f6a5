"""Between the commands and the core: running a plan against clusters."""
