/* uring_echo.c - single-thread io_uring WebSocket echo server (liburing 2.3).
 * usage: uring_echo PORT [-v a|b] [-f none|coop|coopflag|defer] [-R]
 *   -v a : one recv SQE per connection into the connection's pending buffer, re-armed
 *   -v b : multishot recv with a provided buffer ring (bgid 0)
 *   -f   : setup flags: none, coop = SINGLE_ISSUER|COOP_TASKRUN,
 *          coopflag = coop|TASKRUN_FLAG, defer = SINGLE_ISSUER|DEFER_TASKRUN
 *   -R   : do NOT register the ring fd (default registers it)
 *   -p   : variant a only: IORING_RECVSEND_POLL_FIRST on the recv SQE (skip the
 *          speculative recv attempt that returns EAGAIN right after re-arming)
 *   -i   : inline sends: reply with a plain send() (MSG_DONTWAIT) at once, an
 *          IORING_OP_SEND only for what the kernel did not take (what ebb's
 *          epoll path does today, so the read side alone can change)
 *   -E   : wait like Asio would: epoll_ctl re-arm + epoll_wait on the ring's descriptor, then
 *          submit and reap without blocking (EINTR: wait again)
 *   -F   : fixed (registered) files: multishot accept_direct, IOSQE_FIXED_FILE on
 *          recv/send, io_uring shutdown/close_direct; TCP_NODELAY inherited from listener
 * Sends are IORING_OP_SEND SQEs, at most one in flight per connection; replies that
 * arrive meanwhile are staged in a second buffer. One io_uring_submit_and_wait(1)
 * per loop turn, all CQEs handled in a batch. */
#include "ws_common.h"
#include <liburing.h>
#include <sys/epoll.h>
#include <sys/mman.h>

enum { OP_ACCEPT = 0, OP_RECV = 1, OP_SEND = 2, OP_IGNORE = 3 };
#define NBUF 512
#define BSZ 4096
#define RECV_CHUNK 4096

struct conn {
  int fd, open, closing, dead, inflight, send_busy;
  struct buf in, out, outq;
} __attribute__((aligned(8)));

static struct io_uring ring;
static int variant = 'a', lfd, poll_first, fixed, inline_send, asio_wait;
static struct io_uring_buf_ring *br;
static unsigned char *bufbase;
static unsigned long n_enter, n_cqe;

static struct io_uring_sqe *get_sqe(void) {
  struct io_uring_sqe *s = io_uring_get_sqe(&ring);
  if (!s) { io_uring_submit(&ring); s = io_uring_get_sqe(&ring); }
  if (!s) { fprintf(stderr, "no sqe\n"); abort(); }
  return s;
}
static inline void *ud(struct conn *c, int op) { return (void *)((uintptr_t)c | op); }

static void arm_accept(void) {
  struct io_uring_sqe *s = get_sqe();
  if (fixed) io_uring_prep_multishot_accept_direct(s, lfd, NULL, NULL, 0);
  else io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
  io_uring_sqe_set_data(s, ud(NULL, OP_ACCEPT));
}

static void arm_recv(struct conn *c) {
  struct io_uring_sqe *s = get_sqe();
  if (variant == 'a') {
    buf_reserve(&c->in, RECV_CHUNK);
    io_uring_prep_recv(s, c->fd, c->in.d + c->in.len, c->in.cap - c->in.len, 0);
    if (poll_first) s->ioprio |= IORING_RECVSEND_POLL_FIRST;
  } else {
    io_uring_prep_recv_multishot(s, c->fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = 0;
  }
  if (fixed) s->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data(s, ud(c, OP_RECV));
  c->inflight++;
}

static void kill_conn(struct conn *c) {
  if (c->dead) return;
  c->dead = 1;
  if (!fixed) { shutdown(c->fd, SHUT_RDWR); return; }
  struct io_uring_sqe *s = get_sqe();
  io_uring_prep_shutdown(s, c->fd, SHUT_RDWR);
  s->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data(s, ud(NULL, OP_IGNORE));
}
static void maybe_free(struct conn *c) {
  if (c->dead && c->inflight == 0) {
    if (fixed) {
      struct io_uring_sqe *s = get_sqe();
      io_uring_prep_close_direct(s, c->fd);
      io_uring_sqe_set_data(s, ud(NULL, OP_IGNORE));
    } else close(c->fd);
    free(c->in.d); free(c->out.d); free(c->outq.d); free(c);
  }
}

static void start_send(struct conn *c) {
  struct io_uring_sqe *s = get_sqe();
  io_uring_prep_send(s, c->fd, c->out.d, c->out.len, MSG_NOSIGNAL);
  if (fixed) s->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data(s, ud(c, OP_SEND));
  c->inflight++; c->send_busy = 1;
}
static void kick_send(struct conn *c) {
  if (c->dead || c->send_busy) return;
  if (inline_send && c->outq.len && !fixed) {
    ssize_t n = send(c->fd, c->outq.d, c->outq.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) { kill_conn(c); return; }
    if (n > 0) buf_consume(&c->outq, n);
  }
  if (c->outq.len) {
    struct buf t = c->out; c->out = c->outq; c->outq = t; c->outq.len = 0;
    start_send(c);
  } else if (c->closing) kill_conn(c);
}

/* process c->in (data already appended); returns -1 on error */
static int process_in(struct conn *c) {
  if (!c->open) {
    int h = ws_handshake(&c->in, &c->outq);
    if (h <= 0) return h;
    c->open = 1;
  }
  long used = ws_frames(c->in.d, c->in.len, &c->outq, &c->closing);
  if (used < 0) return -1;
  buf_consume(&c->in, used);
  return 0;
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe) {
  int res = cqe->res;
  int more = variant == 'b' && (cqe->flags & IORING_CQE_F_MORE);
  if (!more) c->inflight--;
  if (res > 0 && !c->dead && !c->closing) {
    int rc;
    if (variant == 'a') {
      c->in.len += res;
      rc = process_in(c);
    } else {
      unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
      unsigned char *p = bufbase + (size_t)bid * BSZ;
      if (c->open && c->in.len == 0) { /* fast path: parse straight from the ring buffer */
        long used = ws_frames(p, res, &c->outq, &c->closing);
        rc = used < 0 ? -1 : 0;
        if (used >= 0 && used < res) buf_append(&c->in, p + used, res - used);
      } else {
        buf_append(&c->in, p, res);
        rc = process_in(c);
      }
    }
    if (rc < 0) { kill_conn(c); }
    else { kick_send(c); }
  } else if (res == -ENOBUFS && !c->dead) {
    /* buffer ring ran dry: re-arm below */
  } else if (res <= 0) {
    kill_conn(c);
  }
  if (variant == 'b' && (cqe->flags & IORING_CQE_F_BUFFER)) {
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    io_uring_buf_ring_add(br, bufbase + (size_t)bid * BSZ, BSZ, bid, io_uring_buf_ring_mask(NBUF), 0);
    io_uring_buf_ring_advance(br, 1);
  }
  if (!more && !c->dead && !c->closing) arm_recv(c);
  maybe_free(c);
}

static void on_send(struct conn *c, int res) {
  c->inflight--; c->send_busy = 0;
  if (res < 0) { kill_conn(c); }
  else if ((size_t)res < c->out.len) {
    buf_consume(&c->out, res);
    if (!c->dead) start_send(c);
  } else { c->out.len = 0; kick_send(c); }
  maybe_free(c);
}

static void on_accept(struct io_uring_cqe *cqe) {
  if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept();
  if (cqe->res < 0) { fprintf(stderr, "accept: %s\n", strerror(-cqe->res)); return; }
  struct conn *c = calloc(1, sizeof *c);
  c->fd = cqe->res;
  if (!fixed) set_nodelay(c->fd);
  arm_recv(c);
}

static void on_term(int s) {
  (void)s;
  char m[128];
  int n = snprintf(m, sizeof m, "enter_loops=%lu cqes=%lu\n", n_enter, n_cqe);
  write(2, m, n); _exit(0);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 9001;
  const char *flags = "none";
  int reg_ring = 1;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "-v") && i + 1 < argc) variant = argv[++i][0];
    else if (!strcmp(argv[i], "-f") && i + 1 < argc) flags = argv[++i];
    else if (!strcmp(argv[i], "-R")) reg_ring = 0;
    else if (!strcmp(argv[i], "-p")) poll_first = 1;
    else if (!strcmp(argv[i], "-F")) fixed = 1;
    else if (!strcmp(argv[i], "-i")) inline_send = 1;
    else if (!strcmp(argv[i], "-E")) asio_wait = 1;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term);
  lfd = listen_on(port);

  struct io_uring_params p = {0};
  p.flags = IORING_SETUP_CQSIZE;
  p.cq_entries = 16384;
  if (!strcmp(flags, "coop")) p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  else if (!strcmp(flags, "coopflag"))
    p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  else if (!strcmp(flags, "defer")) p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int ret = io_uring_queue_init_params(4096, &ring, &p);
  if (ret < 0) { fprintf(stderr, "io_uring_queue_init_params(flags=%s): %s\n", flags, strerror(-ret)); return 1; }
  if (reg_ring) {
    ret = io_uring_register_ring_fd(&ring);
    if (ret < 0) fprintf(stderr, "register_ring_fd: %s (continuing)\n", strerror(-ret));
  }
  if (fixed) {
    set_nodelay(lfd); /* accepted sockets inherit TCP_NODELAY */
    ret = io_uring_register_files_sparse(&ring, 4096);
    if (ret < 0) { fprintf(stderr, "register_files_sparse: %s\n", strerror(-ret)); return 1; }
  }
  if (variant == 'b') {
    size_t rsz = NBUF * sizeof(struct io_uring_buf);
    br = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED) { perror("mmap"); return 1; }
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br, .ring_entries = NBUF, .bgid = 0};
    ret = io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret < 0) { fprintf(stderr, "register_buf_ring: %s\n", strerror(-ret)); return 1; }
    io_uring_buf_ring_init(br);
    bufbase = aligned_alloc(4096, (size_t)NBUF * BSZ);
    for (int i = 0; i < NBUF; i++)
      io_uring_buf_ring_add(br, bufbase + (size_t)i * BSZ, BSZ, i, io_uring_buf_ring_mask(NBUF), i);
    io_uring_buf_ring_advance(br, NBUF);
  }
  fprintf(stderr, "uring_echo port=%d variant=%c flags=%s(0x%x) features=0x%x reg_ring=%d poll_first=%d fixed=%d\n",
          port, variant, flags, p.flags, p.features, reg_ring, poll_first, fixed);
  arm_accept();
  int ep = -1;
  if (asio_wait) {
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ring.ring_fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, ring.ring_fd, &ev);
  }
  for (;;) {
    if (asio_wait) {
      io_uring_submit(&ring);
      if (!io_uring_cq_ready(&ring)) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = ring.ring_fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, ring.ring_fd, &ev); /* Asio re-arms each async_wait */
        if (epoll_wait(ep, &ev, 1, -1) < 0 && errno == EINTR) continue;
      }
      if (IO_URING_READ_ONCE(*ring.sq.kflags) & IORING_SQ_TASKRUN) io_uring_get_events(&ring);
      ret = 0;
    } else
    ret = io_uring_submit_and_wait(&ring, 1);
    n_enter++;
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
      fprintf(stderr, "submit_and_wait: %s\n", strerror(-ret)); return 1;
    }
    struct io_uring_cqe *cqe;
    unsigned head, cnt = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      cnt++;
      uintptr_t u = (uintptr_t)io_uring_cqe_get_data(cqe);
      struct conn *c = (struct conn *)(u & ~(uintptr_t)7);
      switch (u & 7) {
        case OP_ACCEPT: on_accept(cqe); break;
        case OP_RECV: on_recv(c, cqe); break;
        case OP_SEND: on_send(c, cqe->res); break;
        default: break;
      }
    }
    io_uring_cq_advance(&ring, cnt);
    n_cqe += cnt;
  }
}
