/* ringwake.c - would Asio, watching an io_uring fd with epoll, wake when a
 * multishot recv completes? A writer thread sends 20 ms after the wait
 * starts (the waiting thread is asleep), for each setup-flag combination. */
#include <liburing.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
static int wfd;
static void *writer(void *a) { (void)a; usleep(20000); write(wfd, "hello", 5); return NULL; }

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

static void trial(const char *name, unsigned flags) {
  struct io_uring ring; struct io_uring_params p = {0}; p.flags = flags;
  int r = io_uring_queue_init_params(64, &ring, &p);
  if (r < 0) { printf("%-22s setup failed: %s\n", name, strerror(-r)); return; }
  int sv[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  /* provided buffer ring, 8 x 256 B */
  static char bufs[8][256];
  size_t rsz = 8 * sizeof(struct io_uring_buf);
  struct io_uring_buf_ring *br = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = 8, .bgid = 1};
  int err = io_uring_register_buf_ring(&ring, &reg, 0);
  if (err < 0) { printf("%-22s buf ring failed: %s\n", name, strerror(-err)); io_uring_queue_exit(&ring); return; }
  io_uring_buf_ring_init(br);
  for (int i = 0; i < 8; i++) io_uring_buf_ring_add(br, bufs[i], 256, i, io_uring_buf_ring_mask(8), i);
  io_uring_buf_ring_advance(br, 8);
  struct io_uring_sqe *s = io_uring_get_sqe(&ring);
  io_uring_prep_recv_multishot(s, sv[0], NULL, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT; s->buf_group = 1; s->user_data = 7;
  io_uring_submit(&ring);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, ring.ring_fd, &ev);
  int woke = 0, got = 0; double worst = 0;
  for (int round = 0; round < 5; round++) {
    wfd = sv[1];
    pthread_t th; pthread_create(&th, NULL, writer, NULL);
    double t0 = now_ms();
    int n = epoll_wait(ep, &ev, 1, 1000);
    double dt = now_ms() - t0 - 20;
    pthread_join(th, NULL);
    if (dt > worst) worst = dt;
    if (n == 1) woke++;
    if (round == 0) printf("  [%s] first wait: n=%d errno=%s\n", name, n, n < 0 ? strerror(errno) : "-");
    /* reap (get_events runs deferred/cooperative task work) */
    io_uring_get_events(&ring);
    struct io_uring_cqe *c; unsigned head, k = 0;
    io_uring_for_each_cqe(&ring, head, c) {
      if (c->res > 0) { got++; unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
        io_uring_buf_ring_add(br, bufs[bid], 256, bid, io_uring_buf_ring_mask(8), 0); io_uring_buf_ring_advance(br, 1); }
      k++; }
    io_uring_cq_advance(&ring, k);
  }
  printf("%-22s epoll woke %d/5, recv completions %d/5, worst wait %.1f ms\n", name, woke, got, worst);
  close(ep); close(sv[0]); close(sv[1]); io_uring_queue_exit(&ring);
}

int main(void) {
  trial("none", 0);
  trial("coop", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN);
  trial("coop+taskrun_flag", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  trial("defer", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  return 0;
}
