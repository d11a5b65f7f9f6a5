"""The spec: YAML in, a validated Spec out; its parts, defaults and the service catalog."""
