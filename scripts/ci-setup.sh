#!/bin/sh
# System packages the test suite needs: a real broker and its command-line clients
# (tests/mosquitto.py starts mosquitto; the PR-ANON capture uses mosquitto_sub).
# Installs only what is missing, so a machine that has them needs no package index.
set -eu
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_sub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
if [ -n "$missing" ]; then
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi
