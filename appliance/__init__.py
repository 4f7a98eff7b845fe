"""shopper-edge: privacy-first retail analytics on the camera's own box."""

__version__ = "0.1.0"
