// Has the client of a request gone away? cpp-httplib 0.11 (Debian 12's) runs a handler on the
// connection's thread but exposes neither the socket nor a closed-connection check, and a
// non-streaming request writes nothing until its answer is ready. So the socket is found by
// its addresses: while the handler runs, httplib keeps the connection open, and a TCP
// connection is the only socket of this process with that local and peer address pair.
#pragma once

#include <string>

namespace xtile::server {

class ClientConnection {
 public:
  // Finds the socket whose local and peer addresses are these (as httplib's Request holds
  // them: numeric host, port). Not found (a Unix socket, a test calling the handler directly):
  // the client is taken as present.
  ClientConnection(const std::string& local_addr, int local_port, const std::string& remote_addr,
                   int remote_port);
  // True when the peer has closed its end or the connection failed. Data waiting to be read
  // (a pipelined request) does not count as closed.
  bool gone() const;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace xtile::server
