#!/bin/sh
# install-deps.sh — Debian packages Tessera builds and tests with (run as root or via sudo).
# Idempotent: apt-get skips what is already installed.
set -eu
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
    build-essential pkg-config meson ninja-build \
    libopenblas-dev libcjson-dev libsentencepiece-dev \
    libpng-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libstb-dev \
    clang libclang-rt-14-dev libomp-dev
