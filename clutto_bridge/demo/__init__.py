"""A throwaway local Synapse and the demo that runs the bridge beside it (also used by the tests)."""
