#!/bin/sh
# System packages the test suite needs: a real broker and its command-line clients
# (tests/mosquitto.py starts mosquitto, the capture uses mosquitto_sub/mosquitto_pub).
set -eu
apt-get update
apt-get install -y --no-install-recommends mosquitto mosquitto-clients
