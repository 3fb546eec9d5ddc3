#!/bin/bash
# wait (max ~40 s) until the machine's busy CPU over 1 s is < 25% of one core; print load1 and busy%
for i in $(seq 1 40); do
  read -r _ u n s id io irq sirq st _ < /proc/stat; t1=$((u+n+s+id+io+irq+sirq+st)); i1=$((id+io))
  sleep 1
  read -r _ u n s id io irq sirq st _ < /proc/stat; t2=$((u+n+s+id+io+irq+sirq+st)); i2=$((id+io))
  busy=$(( 200*( (t2-t1)-(i2-i1) ) / (t2-t1) ))   # percent of one core (2 cores)
  [ $busy -lt 25 ] && break
done
echo "waited=$i busy1s_pct=$busy load1=$(cut -d' ' -f1 /proc/loadavg)"
