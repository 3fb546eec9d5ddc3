#pragma once
// A level-triggered epoll set of plain sockets that an Asio io_context watches
// as one descriptor: one wake-up per batch of ready sockets, with no Asio
// socket object per connection and no epoll_ctl re-arm per read (Asio's
// per-operation cost is why ebb does not use one; docs/PERFORMANCE.md).
// Shared by the WebSocket I/O threads and the HTTP threads.
//
// Threads: used by the thread running `ctx` only. Lifetime: the set (and its
// descriptor, which Asio owns and closes) lives as long as this object;
// destroy it before `ctx`.
#include <sys/epoll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <memory>
#include <utility>

namespace ebb::net {

class EpollSet {
 public:
  /// Throws std::system_error if the kernel refuses an epoll instance.
  explicit EpollSet(boost::asio::io_context& ctx);

  /// Adds `fd` (add = true) or changes what it is watched for; `owner` comes
  /// back with its events. Errors are logged (the socket then never wakes).
  void watch(int fd, void* owner, bool want_read, bool want_write, bool add);
  /// Not needed before close(): a descriptor that is not shared leaves by itself.
  void unwatch(int fd);

  /// Calls `on_ready()` on the io_context once a socket in the set is ready
  /// (not at all if cancel() comes first). One wait at a time.
  template <class F>
  void async_wait(F on_ready) {
    watch_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [f = std::move(on_ready)](const boost::system::error_code& ec) mutable {
                         if (!ec) f();
                       });
  }
  void cancel();

  /// One batch: each ready owner gets on_readable() (input, EOF or error),
  /// then on_writable() if it wants output and is still open. `Owner` has
  /// is_closed(), on_readable(), on_writable(); an owner that ends during
  /// the batch must stay allocated until it returns.
  template <class Owner>
  void dispatch_ready() {
    constexpr int max_events = 256;
    epoll_event events[max_events];
    int n = ::epoll_wait(fd_, events, max_events, 0);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Owner*>(events[i].data.ptr);
      if (c->is_closed()) continue;  // ended earlier in this batch
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->on_readable();
      if (!c->is_closed() && (events[i].events & EPOLLOUT)) c->on_writable();
    }
  }

 private:
  int fd_ = -1;
  std::unique_ptr<boost::asio::posix::stream_descriptor> watch_;  // Asio's view of fd_
};

}  // namespace ebb::net
