#include "net/epoll_set.hpp"

#include <cerrno>
#include <system_error>

#include "log/log.hpp"

namespace ebb::net {

EpollSet::EpollSet(boost::asio::io_context& ctx) {
  fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  // Asio owns (and closes) the descriptor; we use the number for epoll calls.
  watch_ = std::make_unique<boost::asio::posix::stream_descriptor>(ctx, fd_);
}

void EpollSet::watch(int fd, void* owner, bool want_read, bool want_write, bool add) {
  epoll_event ev{};
  ev.events = (want_read ? EPOLLIN | EPOLLRDHUP : 0u) | (want_write ? EPOLLOUT : 0u);
  ev.data.ptr = owner;
  if (::epoll_ctl(fd_, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0)
    log::logger()->error("epoll_ctl({}) on fd {}: {}", add ? "ADD" : "MOD", fd,
                         std::generic_category().message(errno));
}

void EpollSet::unwatch(int fd) { ::epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }

void EpollSet::cancel() {
  boost::system::error_code ignored;
  watch_->cancel(ignored);
}

}  // namespace ebb::net
