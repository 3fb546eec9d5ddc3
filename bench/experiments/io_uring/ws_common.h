/* ws_common.h - minimal WebSocket server helpers shared by epoll_echo / uring_echo */
#pragma once
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct buf {
  unsigned char* d;
  size_t len, cap;
};

static inline void buf_reserve(struct buf* b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t nc = b->cap ? b->cap : 1024;
  while (nc < b->len + extra) nc *= 2;
  b->d = realloc(b->d, nc);
  if (!b->d) {
    perror("realloc");
    abort();
  }
  b->cap = nc;
}
static inline void buf_append(struct buf* b, const void* p, size_t n) {
  buf_reserve(b, n);
  memcpy(b->d + b->len, p, n);
  b->len += n;
}
static inline void buf_consume(struct buf* b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->d, b->d + n, b->len - n);
  b->len -= n;
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (void*)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
    perror("bind/listen");
    exit(1);
  }
  return fd;
}

static inline void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Handshake: if 'in' holds a complete HTTP request, append the 101 response to
 * 'out', consume the request from 'in' and return 1. 0 = need more, -1 = bad. */
static int ws_handshake(struct buf* in, struct buf* out) {
  if (in->len > 16384) return -1;
  unsigned char* end = memmem(in->d, in->len, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t hlen = end + 4 - in->d;
  const char* k = NULL;
  size_t klen = 0;
  for (unsigned char* p = in->d; p < end;) {
    unsigned char* nl = memmem(p, end + 2 - p, "\r\n", 2);
    if (!nl) break;
    if (nl - p > 18 && !strncasecmp((char*)p, "Sec-WebSocket-Key:", 18)) {
      k = (char*)p + 18;
      while (*k == ' ' || *k == '\t') k++;
      klen = (char*)nl - k;
      while (klen && (k[klen - 1] == ' ' || k[klen - 1] == '\t')) klen--;
    }
    p = nl + 2;
  }
  if (!k || klen == 0 || klen > 100) return -1;
  char cat[160];
  memcpy(cat, k, klen);
  memcpy(cat + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
  unsigned char sha[20];
  SHA1((unsigned char*)cat, klen + 36, sha);
  unsigned char b64[40];
  EVP_EncodeBlock(b64, sha, 20);
  char resp[256];
  int n = snprintf(resp, sizeof resp,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   b64);
  buf_append(out, resp, n);
  buf_consume(in, hlen);
  return 1;
}

/* Parse all complete frames in [p, p+len), append replies to out.
 * Returns bytes consumed, or -1 on protocol error. *closing set on close frame. */
static long ws_frames(const unsigned char* p, size_t len, struct buf* out, int* closing) {
  size_t off = 0;
  while (!*closing) {
    size_t av = len - off;
    if (av < 2) break;
    const unsigned char* f = p + off;
    unsigned op = f[0] & 0x0f;
    if (!(f[1] & 0x80)) return -1; /* client frames must be masked */
    uint64_t plen = f[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
      if (av < 4) break;
      plen = (f[2] << 8) | f[3];
      h = 4;
    } else if (plen == 127) {
      if (av < 10) break;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = (plen << 8) | f[2 + i];
      h = 10;
      if (plen > (1u << 24)) return -1;
    }
    if (av < h + 4 + plen) break;
    const unsigned char *m = f + h, *pl = f + h + 4;
    unsigned char b0;
    switch (op) {
      case 0:
      case 1:
      case 2:
        b0 = f[0];
        break;
      case 8:
        b0 = 0x88;
        *closing = 1;
        if (plen > 125) plen = 2;
        break;
      case 9:
        b0 = 0x8A;
        break;
      case 10:
        off += h + 4 + plen;
        continue;
      default:
        return -1;
    }
    buf_reserve(out, 10 + plen);
    unsigned char* o = out->d + out->len;
    o[0] = b0;
    size_t oh;
    if (plen < 126) {
      o[1] = plen;
      oh = 2;
    } else if (plen < 65536) {
      o[1] = 126;
      o[2] = plen >> 8;
      o[3] = plen;
      oh = 4;
    } else {
      o[1] = 127;
      for (int i = 0; i < 8; i++) o[2 + i] = plen >> (56 - 8 * i);
      oh = 10;
    }
    for (uint64_t i = 0; i < plen; i++) o[oh + i] = pl[i] ^ m[i & 3];
    out->len += oh + plen;
    off += h + 4 + plen;
  }
  return off;
}
