#!/bin/bash
# 5 interleaved reps of each variant, k=1, 10 s measured, fresh server each run.
cd "$(dirname "$0")"
export RESULTS=${RESULTS:-results_k1.txt} DUR=10
for rep in 1 2 3 4 5; do
  ./run1.sh epoll         1 9401 ./epoll_echo 9401
  ./run1.sh ua-none       1 9402 ./uring_echo 9402 -v a -f none
  ./run1.sh ua-coopflag-p 1 9403 ./uring_echo 9403 -v a -f coopflag -p
  ./run1.sh ua-defer-p    1 9404 ./uring_echo 9404 -v a -f defer -p
  ./run1.sh ub-coop       1 9405 ./uring_echo 9405 -v b -f coop
  ./run1.sh ub-defer      1 9406 ./uring_echo 9406 -v b -f defer
done
