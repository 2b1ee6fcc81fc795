"""Shared fixtures: real Mosquitto and InfluxDB servers come from smartbins.testing."""

pytest_plugins = ["smartbins.testing"]
