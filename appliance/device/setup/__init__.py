"""The installer's setup page (`shopper-edge setup`): a people-free view of one camera to
draw its lines and zones on, live validation, saving into the device YAML, and a walk test
that shows only numbers. Served on 127.0.0.1 to one installer holding a one-time token."""
