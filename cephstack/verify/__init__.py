"""verify: run each service's real RBD workflows with its own key, and prove least privilege."""
