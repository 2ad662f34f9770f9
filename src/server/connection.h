// Noticing that an HTTP client went away while its request is being served.
// cpp-httplib 0.11 (Debian 12) does not hand handlers the connection's socket,
// and a streamed write to a closed connection can still succeed once (the
// kernel buffers it), so the handler finds its socket by the connection's
// addresses and asks the kernel whether the peer has closed it.
#pragma once

#include <string>

namespace toy::server {

// The descriptor of this process's TCP socket connected from remote_addr:remote_port
// to local_port, or -1. The socket of the request being handled stays open while its
// handler runs, so the descriptor is valid for that long.
int find_connection_socket(const std::string& remote_addr, int remote_port, int local_port);

// Whether the peer of a connected socket has closed or reset it (an orderly close
// with nothing left to read, a hang-up, or an error). -1: false.
bool peer_closed(int fd);

}  // namespace toy::server
