#!/bin/sh
# System packages the test suite needs: a real broker and its command-line clients
# (tests/mosquitto.py starts mosquitto; the PR-ANON capture uses mosquitto_sub), and
# dbus-daemon for the private buses of the relay tests (tests/dbus_session.py), and
# nats-server for the 3-node JetStream cluster of the cluster tests (tests/natscluster.py).
# Installs only what is missing, so a machine that has them needs no package index.
set -eu
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_sub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v dbus-daemon >/dev/null 2>&1 || missing="$missing dbus-daemon"
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing="$missing nats-server"
if [ -n "$missing" ]; then
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi
