// Kept out of the headers: <linux/tcp.h> (which has tcpi_segs_in) clashes with
// glibc's <netinet/tcp.h>, which Asio includes.
#include "unit/support/tcp_segments.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace ebb::test {

std::uint32_t tcp_segments_received(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  return info.tcpi_segs_in;
}

}  // namespace ebb::test
