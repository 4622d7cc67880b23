#!/bin/sh
# Bytes per flow on disk: net-collectord's store (zstd, lz4) vs nfcapd 1.7 with LZ4 (-y), for the
# same flows: `net-collector gen -f v9` with the same seed and options sent to each collector.
# Usage: bench/store_vs_nfcapd.sh [BUILD_DIR] [RECORDS] [DISTINCT_FLOWS]
# Not a test: prints a table, asserts nothing.
set -eu
BUILD=${1:-build}
N=${2:-300000}
DISTINCT=${3:-100000}
BIN=$(cd "$BUILD/bin" && pwd)
WORK=$(mktemp -d /tmp/nc-store-vs-nfcapd.XXXXXX)
trap 'kill $NFPID $NCPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
NFPID=
NCPID=
GEN="$BIN/net-collector gen -f v9 --records $N --flows $DISTINCT --rate 20000 --seed 3 -q"

port=$(( 20000 + $$ % 20000 ))
mkdir -p "$WORK/nfcapd"
nfcapd -y -w "$WORK/nfcapd" -p $port -b 127.0.0.1 -t 3600 -B 8000000 >"$WORK/nfcapd.log" 2>&1 &
NFPID=$!
sleep 1
$GEN -t 127.0.0.1:$port
sleep 1
kill -TERM $NFPID
wait $NFPID || true
NFPID=
nf_rows=$(nfdump -R "$WORK/nfcapd" -q -o csv 2>/dev/null | grep -c '^[0-9]' || true)
nf_bytes=$(find "$WORK/nfcapd" -type f -name 'nfcapd.*' -printf '%s\n' | awk '{s+=$1} END {print s}')

for codec in zstd lz4; do
  d="$WORK/nc-$codec"
  mkdir -p "$d"
  cat >"$d/nc.yaml" <<YAML
collector: {listen: ["127.0.0.1:0"], rcvbuf: 8000000, templates: $d/templates.bin}
store: {path: $d/flows, rotate: 1h, compression: $codec}
ovsdb: {enabled: false}
control: {socket: $d/control.sock}
YAML
  "$BIN/net-collectord" --config "$d/nc.yaml" 2>"$d/log" &
  NCPID=$!
  while [ ! -S "$d/control.sock" ]; do sleep 0.1; done
  p=$("$BIN/net-collector" --socket "$d/control.sock" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"][0]["port"])')
  $GEN -t 127.0.0.1:$p
  sleep 2
  kill -TERM $NCPID
  wait $NCPID || true
  NCPID=
  rows=$(grep -o '[0-9]* rows stored' "$d/log" | awk '{print $1}')
  bytes=$(find "$d/flows" -name '*.ncseg' -printf '%s\n' | awk '{s+=$1} END {print s}')
  eval "nc_${codec}_rows=$rows nc_${codec}_bytes=$bytes"
done

awk -v n="$N" -v nr="$nf_rows" -v nb="$nf_bytes" -v zr="$nc_zstd_rows" -v zb="$nc_zstd_bytes" \
    -v lr="$nc_lz4_rows" -v lb="$nc_lz4_bytes" 'BEGIN {
  printf "%-22s %10s %12s %10s %8s\n", "store", "flows", "bytes", "B/flow", "ratio"
  nf = nb / nr
  printf "%-22s %10d %12d %10.2f %8.2f\n", "nfcapd -y (LZ4)", nr, nb, nf, 1
  printf "%-22s %10d %12d %10.2f %8.2f\n", "net-collector zstd", zr, zb, zb / zr, (zb / zr) / nf
  printf "%-22s %10d %12d %10.2f %8.2f\n", "net-collector lz4", lr, lb, lb / lr, (lb / lr) / nf
  printf "(sent %d flows)\n", n
}'
