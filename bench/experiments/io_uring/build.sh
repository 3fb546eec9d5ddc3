#!/bin/sh
# Builds the two prototype servers beside this script (needs liburing-dev, libssl-dev).
set -e
cd "$(dirname "$0")"
cc -O2 -g -Wall -o epoll_echo epoll_echo.c -lcrypto
cc -O2 -g -Wall -o uring_echo uring_echo.c -luring -lcrypto
cc -O2 -g -Wall -o batch_echo batch_echo.c -luring -lcrypto
cc -O2 -g -Wall -o ringwake ringwake.c -luring -lpthread
