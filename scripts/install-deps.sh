#!/usr/bin/env bash
# Installs what tapstack and its tests use on a fresh Debian machine (as root):
# Node.js (if missing), the network tools the integration tests drive, and npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
pkgs=(iproute2 iputils-ping arping netcat-openbsd curl socat tshark nftables ethtool hping3 nmap tcpreplay
      liblwip-dev build-essential pkg-config ca-certificates python3 python3-scapy
      dnsmasq-base  # DHCP and DNS server of the dhcp-dns integration test (the binary only: no system service)
      openssl mosquitto mosquitto-clients  # the library examples' certificates and MQTT broker
      chromium)  # the live page's browser test (driven by puppeteer-core)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
npm ci --no-audit --no-fund
