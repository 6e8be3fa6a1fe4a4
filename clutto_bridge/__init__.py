"""clutto-bridge: a Matrix application service for privacy-governed workplace chat."""

__version__ = "0.1.0"
