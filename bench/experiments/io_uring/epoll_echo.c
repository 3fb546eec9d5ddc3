/* epoll_echo.c - single-thread level-triggered epoll WebSocket echo server.
 * usage: epoll_echo PORT */
#include "ws_common.h"
#include <fcntl.h>
#include <sys/epoll.h>

struct conn { int fd, open, closing, want_out; struct buf in, out; };

static unsigned char rbuf[65536];
static struct buf obuf; /* shared per-thread output buffer */
static int ep;
static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

static void conn_close(struct conn *c) {
  close(c->fd); free(c->in.d); free(c->out.d); free(c);
}

/* returns 0 keep, -1 close now */
static int flush_out(struct conn *c, const unsigned char *p, size_t n) {
  if (c->out.len) { buf_append(&c->out, p, n); p = c->out.d; n = c->out.len; }
  ssize_t w = n ? send(c->fd, p, n, MSG_NOSIGNAL) : 0;
  if (w < 0) { if (errno != EAGAIN) return -1; w = 0; }
  if (c->out.len) buf_consume(&c->out, w);
  else if ((size_t)w < n) buf_append(&c->out, p + w, n - w);
  int want = c->out.len > 0;
  if (want != c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
  }
  if (c->closing && !c->out.len) return -1;
  return 0;
}

static int on_read(struct conn *c) {
  ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
  if (r == 0) return -1;
  if (r < 0) return errno == EAGAIN ? 0 : -1;
  obuf.len = 0;
  if (!c->open) {
    buf_append(&c->in, rbuf, r);
    int h = ws_handshake(&c->in, &obuf);
    if (h < 0) return -1;
    if (h == 0) return 0;
    c->open = 1;
    long used = ws_frames(c->in.d, c->in.len, &obuf, &c->closing);
    if (used < 0) return -1;
    buf_consume(&c->in, used);
  } else if (c->in.len == 0) { /* fast path: parse straight from rbuf */
    long used = ws_frames(rbuf, r, &obuf, &c->closing);
    if (used < 0) return -1;
    if (used < r) buf_append(&c->in, rbuf + used, r - used);
  } else {
    buf_append(&c->in, rbuf, r);
    long used = ws_frames(c->in.d, c->in.len, &obuf, &c->closing);
    if (used < 0) return -1;
    buf_consume(&c->in, used);
  }
  if (c->closing) c->in.len = 0;
  if (!obuf.len && !c->closing) return 0;
  return flush_out(c, obuf.d, obuf.len);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 9001;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term); signal(SIGINT, on_term);
  int lfd = listen_on(port);
  fcntl(lfd, F_SETFL, O_NONBLOCK);
  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[512];
  while (!stop) {
    int n = epoll_wait(ep, evs, 512, -1);
    if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); break; }
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (fd < 0) break;
          set_nodelay(fd);
          c = calloc(1, sizeof *c); c->fd = fd;
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      int rc = 0;
      if (evs[i].events & EPOLLOUT) rc = flush_out(c, NULL, 0);
      if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) rc = on_read(c);
      if (rc < 0) conn_close(c); /* close() removes it from the epoll set */
    }
  }
  return 0;
}
