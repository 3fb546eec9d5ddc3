#!/bin/bash
# run1.sh NAME K PORT SERVER_CMD... -> appends "name=NAME k=K <idle info> <wsload line>" to $RESULTS
# WSLOAD: the shared load tool (default: ../../../../shared/bench/wsload beside the repo).
NAME=$1 K=$2 PORT=$3; shift 3
cd "$(dirname "$0")"
WSLOAD=${WSLOAD:-../../../../shared/bench/wsload}
mkdir -p logs
IDLE=$(./idlewait.sh)
"$@" 2>>logs/$NAME.log &
SRV=$!
for _ in $(seq 1 100); do ss -ltnH "sport = :$PORT" | grep -q . && break; sleep 0.05; done
sleep 0.3
OUT=$("$WSLOAD" -q -m echo -p $PORT -n 100 -s 16 -k $K -w 2 -d ${DUR:-10} -P $SRV)
echo "name=$NAME k=$K $IDLE $OUT" | tee -a ${RESULTS:-results.txt}
kill -TERM $SRV 2>/dev/null; sleep 0.2; kill -KILL $SRV 2>/dev/null; wait $SRV 2>/dev/null
