/* batch_echo.c - epoll readiness as in epoll_echo.c, but each batch of ready
 * sockets does its recv()s in one io_uring_enter and its send()s in another
 * (MSG_DONTWAIT: every operation completes inline during the submit, as the
 * plain syscall would, so no task work and no operation outlives the batch).
 * Question: how much of io_uring's gain is just fewer syscall entries?
 * usage: batch_echo PORT */
#include "ws_common.h"
#include <fcntl.h>
#include <liburing.h>
#include <sys/epoll.h>

struct conn { int fd, open, closing, want_out; struct buf in, out; };

#define MAXEV 512
#define SLICE 4096
static unsigned char rbuf[MAXEV][SLICE];
static struct buf obuf[MAXEV]; /* one pending output per ready socket */
static int ep;
static struct io_uring ring;
static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

static void conn_close(struct conn *c) {
  close(c->fd); free(c->in.d); free(c->out.d); free(c);
}

/* parse what recv gave; leaves the reply in *o. returns 0 keep, -1 close */
static int on_data(struct conn *c, const unsigned char *p, long r, struct buf *o) {
  o->len = 0;
  if (r == 0) return -1;
  if (r < 0) return r == -EAGAIN ? 0 : -1;
  if (!c->open) {
    buf_append(&c->in, p, r);
    int h = ws_handshake(&c->in, o);
    if (h < 0) return -1;
    if (h == 0) return 0;
    c->open = 1;
    long used = ws_frames(c->in.d, c->in.len, o, &c->closing);
    if (used < 0) return -1;
    buf_consume(&c->in, used);
  } else if (c->in.len == 0) {
    long used = ws_frames(p, r, o, &c->closing);
    if (used < 0) return -1;
    if (used < r) buf_append(&c->in, p + used, r - used);
  } else {
    buf_append(&c->in, p, r);
    long used = ws_frames(c->in.d, c->in.len, o, &c->closing);
    if (used < 0) return -1;
    buf_consume(&c->in, used);
  }
  if (c->closing) c->in.len = 0;
  return 0;
}

/* after a send of n bytes of p returned w */
static int after_send(struct conn *c, const unsigned char *p, size_t n, long w) {
  if (w < 0) { if (w != -EAGAIN) return -1; w = 0; }
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

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 9001;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term); signal(SIGINT, on_term);
  struct io_uring_params prm = {0};
  prm.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  int ret = io_uring_queue_init_params(MAXEV * 2, &ring, &prm);
  if (ret < 0) { fprintf(stderr, "io_uring: %s\n", strerror(-ret)); return 1; }
  int lfd = listen_on(port);
  fcntl(lfd, F_SETFL, O_NONBLOCK);
  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[MAXEV];
  struct conn *ready[MAXEV];
  long res[MAXEV];
  const unsigned char *sp[MAXEV]; size_t sn[MAXEV];
  while (!stop) {
    int n = epoll_wait(ep, evs, MAXEV, -1);
    if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); break; }
    int m = 0;
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
      ready[m++] = c; /* (EPOLLOUT handling folded into the send pass) */
    }
    if (!m) continue;
    /* pass 1: every recv in one enter */
    for (int j = 0; j < m; j++) {
      struct io_uring_sqe *s = io_uring_get_sqe(&ring);
      io_uring_prep_recv(s, ready[j]->fd, rbuf[j], SLICE, MSG_DONTWAIT);
      s->user_data = j;
    }
    io_uring_submit_and_wait(&ring, m);
    struct io_uring_cqe *cqe; unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) { res[cqe->user_data] = cqe->res; seen++; }
    io_uring_cq_advance(&ring, seen);
    /* parse, build replies; pass 2: every send in one enter */
    int k = 0;
    for (int j = 0; j < m; j++) {
      struct conn *c = ready[j];
      if (on_data(c, rbuf[j], res[j], &obuf[j]) < 0) { conn_close(c); ready[j] = NULL; continue; }
      if (c->out.len) buf_append(&c->out, obuf[j].d, obuf[j].len);
      sp[j] = c->out.len ? c->out.d : obuf[j].d; sn[j] = c->out.len ? c->out.len : obuf[j].len;
      if (!sn[j]) { res[j] = 0; continue; }
      struct io_uring_sqe *s = io_uring_get_sqe(&ring);
      io_uring_prep_send(s, c->fd, sp[j], sn[j], MSG_DONTWAIT | MSG_NOSIGNAL);
      s->user_data = j; k++;
    }
    if (k) {
      io_uring_submit_and_wait(&ring, k);
      seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) { res[cqe->user_data] = cqe->res; seen++; }
      io_uring_cq_advance(&ring, seen);
    }
    for (int j = 0; j < m; j++) {
      struct conn *c = ready[j];
      if (!c) continue;
      if (after_send(c, sp[j] == c->out.d ? NULL : sp[j], sp[j] == c->out.d ? 0 : sn[j], res[j]) < 0) conn_close(c);
    }
  }
  return 0;
}
