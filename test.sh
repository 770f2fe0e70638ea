#!/usr/bin/env bash
# The test command: static checks, the Go tests with the race detector, then
# the conformance suites that drive a real ledgerd with the real Azure SDK
# clients (Python: Debian's python3-azure; JS: @azure-rest/confidential-ledger).
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)

echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -timeout 15m ./...

echo "== build"
mkdir -p bin
go build -o bin/ledgerd ./cmd/ledgerd
go build -o bin/ledgerctl ./cmd/ledgerctl
export LEDGERD_BIN="$root/bin/ledgerd" LEDGERCTL_BIN="$root/bin/ledgerctl"

echo "== conformance: Python SDK (python3-azure)"
(cd conformance/python && /usr/bin/python3 -m pytest -q -p no:cacheprovider)

echo "== conformance: JS client (@azure-rest/confidential-ledger)"
(cd conformance/js && npm ci --no-audit --no-fund --loglevel=error && npm test)
