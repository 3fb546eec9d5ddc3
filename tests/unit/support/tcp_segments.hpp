#pragma once
// Segments a TCP socket has received (TCP_INFO tcpi_segs_in): lets a test see
// how the peer packed its output, e.g. whether a FIN rode on a data segment.
#include <cstdint>

namespace ebb::test {

/// Segments received on `fd` so far; 0 if the kernel cannot say.
std::uint32_t tcp_segments_received(int fd);

}  // namespace ebb::test
