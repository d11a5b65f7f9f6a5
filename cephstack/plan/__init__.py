"""The pure planner: typed actions from the spec and the observed facts."""
