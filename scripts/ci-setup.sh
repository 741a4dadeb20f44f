#!/bin/sh
# System packages the test suite needs: a real broker and its command-line clients
# (tests/mosquitto.py starts mosquitto; the PR-ANON capture uses mosquitto_sub), and
# dbus-daemon for the private buses of the relay tests (tests/dbus_session.py),
# nats-server for the 3-node JetStream cluster of the cluster tests (tests/natscluster.py), and
# chromium for the report's browser test (tests/system/test_report_browser.py; playwright
# drives this one, it never downloads a browser).
# Installs only what is missing, so a machine that has them needs no package index.
set -eu
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_sub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v dbus-daemon >/dev/null 2>&1 || missing="$missing dbus-daemon"
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing="$missing nats-server"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ]; then
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi
# The receiver's tests and bench_ingest need PostgreSQL at 127.0.0.1:5432 (tests/postgres.py):
# start the machine's cluster if it is installed and stopped.
if command -v pg_lsclusters >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
