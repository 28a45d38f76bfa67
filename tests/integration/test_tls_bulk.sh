#!/usr/bin/env bash
# Bulk data through the client's TLS buffers (consumer/client/tls.h): 24 MiB of 1 KiB values produced over TLS fill
# the session's out buffer many times over (it takes 256 KiB), and read back over TLS (fetches of up to 1 MiB) they
# cross the 128 KiB read buffer with records split at its edges; every value must come back, in order, unchanged.
set -euo pipefail
BUILD=${1:-build/release}
. tests/integration/lib.sh

start_broker_tls "$TMP/data"
export SYNCLOG_TLS_CA="$PKI/ca.pem"

n=24000
# Each value: its number, then 1000 characters that differ from record to record.
python3 - "$n" >"$TMP/in.tsv" <<'PY'
import hashlib, sys
for i in range(int(sys.argv[1])):
    pad = (hashlib.sha256(str(i).encode()).hexdigest() * 16)[:1000]
    print("k%d\t%d:%s" % (i, i, pad))
PY
"$SYNCLOG" topic create bulk --partitions 1 >/dev/null
"$SYNCLOG" produce bulk --acks written <"$TMP/in.tsv" | grep -qx "produced $n records" || fail "produce over TLS"
"$SYNCLOG" consume bulk >"$TMP/out.tsv" || fail "consume over TLS: $(tail -3 "$TMP/broker.err")"
got=$(cut -f4 "$TMP/out.tsv" | md5sum)
want=$(cut -f2 "$TMP/in.tsv" | md5sum)
[ "$got" = "$want" ] || fail "consume over TLS read $(wc -l <"$TMP/out.tsv") values, not the $n produced, in order"
stop_broker
echo ok
