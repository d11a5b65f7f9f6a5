"""A real throwaway cluster on loopback, for the demo and the tests."""
