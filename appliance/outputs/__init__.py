"""Where window documents go: JSON lines now; MQTT and the guard later."""
