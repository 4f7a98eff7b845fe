"""Head office: subscribe to the stores' windows, store them, report on them."""
