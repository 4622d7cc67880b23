#include "collector/ingest/ingest.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "common/log.hpp"

namespace nc::ingest {
namespace {

constexpr size_t kMaxDatagram = 65536;
constexpr int kMaxBatchesPerWakeup = 16;  // then yield to timers and the other sockets
// Bytes one recvmmsg should bring in at most: they are decoded after the call returns, so they
// should still be in this core's L2 cache then. Plain datagrams never reach it (64 x 1.4 KB);
// 64 GRO buffers of up to 64 KiB each would be 4 MiB, read back from memory.
constexpr uint64_t kRecvBytesBudget = 256 * 1024;

uint64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

IpAddr fromSockaddr(const sockaddr_storage& ss, uint16_t& port) {
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    port = ntohs(in->sin_port);
    return IpAddr::fromV4(ntohl(in->sin_addr.s_addr));
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  port = ntohs(in6->sin6_port);
  return IpAddr::fromV6(in6->sin6_addr.s6_addr);  // v4-mapped stays v4-mapped
}

struct IpAddrHash {
  size_t operator()(const IpAddr& a) const noexcept {
    uint64_t h = 1469598103934665603ull;
    for (uint8_t b : a.bytes) {
      h = (h ^ b) * 1099511628211ull;
    }
    return static_cast<size_t>(h);
  }
};

// Opens one UDP socket for `l` with SO_REUSEPORT, the receive buffer and drop counting.
int openSocket(const Listen& l, uint16_t port, uint64_t rcvbuf, bool v6only,
               bool reuseport = true) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  in_addr a4{};
  in6_addr a6{};
  int family = 0;
  if (inet_pton(AF_INET, l.address.c_str(), &a4) == 1) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_addr = a4;
    in->sin_port = htons(port);
    len = sizeof *in;
    family = AF_INET;
  } else if (inet_pton(AF_INET6, l.address.c_str(), &a6) == 1) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = a6;
    in6->sin6_port = htons(port);
    len = sizeof *in6;
    family = AF_INET6;
  } else {
    throw std::runtime_error(fmt::format("listen {}: not an IP address", l.address));
  }
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
  }
  int one = 1;
  if (reuseport) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  ::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  // UDP GRO (Linux 5.0+): a run of equal-size datagrams from one exporter (a NetFlow burst, or
  // an exporter's UDP GSO send) arrives as one buffer cut apart here, instead of one kernel
  // buffer and copy each. Best effort: without it every datagram comes alone.
  ::setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
  if (family == AF_INET6) {
    int v = v6only ? 1 : 0;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
  }
  int want = static_cast<int>(std::min<uint64_t>(rcvbuf, 0x7fffffff));
  // SO_RCVBUFFORCE ignores net.core.rmem_max when we have CAP_NET_ADMIN; else plain SO_RCVBUF.
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(
        fmt::format("cannot listen on {}:{}: {}{}", l.address, port, std::strerror(e),
                    e == EADDRINUSE ? " (another program uses this port)" : ""));
  }
  return fd;
}

uint16_t boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  uint16_t port = 0;
  fromSockaddr(ss, port);
  return port;
}

}  // namespace

void ShardStats::noteDenied(const IpAddr& address, uint64_t datagrams, uint64_t now_ns) {
  DeniedSource* oldest = &denied_sources[0];
  for (auto& d : denied_sources) {
    if (d.last_ns != 0 && d.address == address) {
      d.datagrams += datagrams;
      d.last_ns = std::max(d.last_ns, now_ns);
      return;
    }
    if (d.last_ns < oldest->last_ns) {
      oldest = &d;  // an empty slot (0) is the oldest of all
    }
  }
  *oldest = DeniedSource{address, datagrams, std::max<uint64_t>(now_ns, 1)};
}

void ShardStats::add(const ShardStats& other) {
  addCounters(other);
  for (const auto& d : other.denied_sources) {
    if (d.last_ns != 0) {
      noteDenied(d.address, d.datagrams, d.last_ns);
    }
  }
}

std::vector<DeniedSource> ShardStats::deniedSources() const {
  std::vector<DeniedSource> out;
  for (const auto& d : denied_sources) {
    if (d.last_ns != 0) {
      out.push_back(d);
    }
  }
  std::sort(out.begin(), out.end(), [](const DeniedSource& a, const DeniedSource& b) {
    return a.last_ns != b.last_ns ? a.last_ns > b.last_ns : a.address < b.address;
  });
  return out;
}

bool Network::contains(const IpAddr& a) const {
  unsigned full = prefix / 8;
  for (unsigned i = 0; i < full; ++i) {
    if (a.bytes[i] != base.bytes[i]) {
      return false;
    }
  }
  unsigned rest = prefix % 8;
  if (rest == 0) {
    return true;
  }
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (base.bytes[full] & mask);
}

bool Network::parse(const std::string& text, Network& out) {
  auto slash = text.find('/');
  IpAddr a;
  if (!IpAddr::parse(text.substr(0, slash), a)) {
    return false;
  }
  int max = a.isV4() ? 32 : 128;
  int len = max;
  if (slash != std::string::npos) {
    std::string l = text.substr(slash + 1);
    if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    len = std::stoi(l);
    if (len > max) {
      return false;
    }
  }
  out.base = a;
  out.prefix = static_cast<uint8_t>(a.isV4() ? len + 96 : len);
  return true;
}

class Ingest::Shard {
 public:
  Shard(uint32_t id, const IngestOptions& opts, std::unique_ptr<decode::RecordSink> sink)
      : id_(id),
        opts_(opts),
        decoder_(opts.decoder),
        sink_(std::move(sink)),
        batch_(opts.batch),
        buffers_(static_cast<size_t>(batch_) * kMaxDatagram),
        addrs_(batch_),
        iovs_(batch_),
        msgs_(batch_),
        cmsgs_(static_cast<size_t>(batch_) * kCmsgSpace),
        publish_timer_(io_),
        save_timer_(io_) {
    for (uint32_t i = 0; i < batch_; ++i) {
      iovs_[i].iov_base = buffers_.data() + static_cast<size_t>(i) * kMaxDatagram;
      iovs_[i].iov_len = kMaxDatagram;
    }
  }

  void addSocket(int fd) {
    auto s = std::make_unique<Socket>(io_);
    s->sock.assign(fd < 0 ? boost::asio::ip::udp::v4() : protocolOf(fd), fd);
    sockets_.push_back(std::move(s));
  }

  decode::Decoder& decoder() { return decoder_; }

  void start() {
    for (auto& s : sockets_) {
      arm(*s);
    }
    schedulePublish();
    if (!opts_.templates_path.empty()) {
      scheduleSave();
    }
    thread_ = std::thread([this] {
      // For top -H, ps -L and perf: "nc-recv-0", "nc-recv-1", ...
      (void)::pthread_setname_np(::pthread_self(), fmt::format("nc-recv-{}", id_ % 1000).c_str());
      io_.run();
    });
  }

  void stop() {
    io_.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
    publish();
    saveTemplates();
  }

  void requestPublish() {
    boost::asio::post(io_, [this] { publish(); });
  }

  ShardStats snapshot(std::vector<decode::ExporterStats>* exporters, uint64_t* generation) const {
    std::lock_guard<std::mutex> lock(snap_mutex_);
    if (exporters != nullptr) {
      *exporters = snap_exporters_;
    }
    if (generation != nullptr) {
      *generation = generation_;
    }
    return snap_;
  }

 private:
  // SO_RXQ_OVFL (u32 drop counter) and UDP_GRO (int segment size).
  static constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(int));

  struct Socket {
    explicit Socket(boost::asio::io_context& io) : sock(io) {}
    boost::asio::ip::udp::socket sock;
    uint32_t last_ovfl = 0;
  };

  static boost::asio::ip::udp protocolOf(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    return ss.ss_family == AF_INET6 ? boost::asio::ip::udp::v6() : boost::asio::ip::udp::v4();
  }

  void arm(Socket& s) {
    s.sock.async_wait(boost::asio::socket_base::wait_read,
                      [this, &s](const boost::system::error_code& ec) {
                        if (ec) {
                          return;  // operation_aborted at shutdown
                        }
                        drain(s);
                        arm(s);
                      });
  }

  // Reads up to kMaxBatchesPerWakeup batches with recvmmsg and decodes them.
  void drain(Socket& s) {
    int fd = s.sock.native_handle();
    for (int round = 0; round < kMaxBatchesPerWakeup; ++round) {
      for (uint32_t i = 0; i < batch_; ++i) {
        msghdr& h = msgs_[i].msg_hdr;
        h.msg_name = &addrs_[i];
        h.msg_namelen = sizeof(sockaddr_storage);
        h.msg_iov = &iovs_[i];
        h.msg_iovlen = 1;
        h.msg_control = cmsgs_.data() + i * kCmsgSpace;
        h.msg_controllen = kCmsgSpace;
        h.msg_flags = 0;
        msgs_[i].msg_len = 0;
      }
      const uint32_t vlen = vlen_;
      int n = ::recvmmsg(fd, msgs_.data(), vlen, MSG_DONTWAIT, nullptr);
      if (n <= 0) {
        return;  // EAGAIN (drained) or an error: wait for readiness again
      }
      uint64_t now = nowNs();
      uint64_t bytes = 0;
      for (int i = 0; i < n; ++i) {
        bytes += msgs_[i].msg_len;
        handle(s, static_cast<uint32_t>(i), now);
      }
      // The next call takes as many messages as the budget holds at this call's average size.
      const uint64_t average = std::max<uint64_t>(1, bytes / static_cast<uint64_t>(n));
      vlen_ = static_cast<uint32_t>(std::clamp<uint64_t>(kRecvBytesBudget / average, 1, batch_));
      if (static_cast<uint32_t>(n) < vlen) {
        return;
      }
    }
  }

  void handle(Socket& s, uint32_t i, uint64_t now) {
    const msghdr& h = msgs_[i].msg_hdr;
    uint32_t segment = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        uint32_t v = 0;
        std::memcpy(&v, CMSG_DATA(c), sizeof v);
        stats_.kernel_drops += static_cast<uint32_t>(v - s.last_ovfl);
        s.last_ovfl = v;
      } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int v = 0;
        std::memcpy(&v, CMSG_DATA(c), sizeof v);
        segment = v > 0 ? static_cast<uint32_t>(v) : 0;
      }
    }
    uint32_t len = msgs_[i].msg_len;
    stats_.bytes += len;
    if (h.msg_flags & MSG_TRUNC) {
      ++stats_.datagrams;
      ++stats_.truncated;
      return;
    }
    // A GRO buffer holds datagrams of `segment` bytes, the last one possibly shorter.
    const uint32_t count = segment > 0 && len > segment ? (len + segment - 1) / segment : 1;
    stats_.datagrams += count;
    stats_.gro_datagrams += count > 1 ? count : 0;
    decode::DatagramMeta meta;
    meta.exporter = fromSockaddr(addrs_[i], meta.port);
    meta.received_ns = now;
    if (!opts_.allow.empty()) {
      bool ok = false;
      for (const auto& net : opts_.allow) {
        if (net.contains(meta.exporter)) {
          ok = true;
          break;
        }
      }
      if (!ok) {
        stats_.denied += count;
        stats_.noteDenied(meta.exporter, count, now);
        return;
      }
    }
    if (!opts_.exporters.empty() && known_.find(meta.exporter) == known_.end()) {
      // First datagram from this exporter on this shard: apply the first matching override.
      known_.insert(meta.exporter);
      for (const auto& rule : opts_.exporters) {
        if (rule.network.contains(meta.exporter)) {
          decoder_.setExporterConfig(meta.exporter, rule.config);
          break;
        }
      }
    }
    const auto* data = static_cast<const uint8_t*>(iovs_[i].iov_base);
    for (uint32_t k = 0; k < count; ++k) {
      const uint32_t at = k * segment;
      const uint32_t n = count == 1 ? len : std::min(segment, len - at);
      auto st = decoder_.decode(std::span<const uint8_t>(data + at, n), meta, *sink_);
      stats_.records += st.records;
      stats_.counter_samples += st.counters;
      if (!st.ok()) {
        ++stats_.decode_errors;
      }
    }
  }

  void publish() {
    auto ex = decoder_.stats();
    std::lock_guard<std::mutex> lock(snap_mutex_);
    snap_ = stats_;
    snap_exporters_ = std::move(ex);
    ++generation_;
  }

  void schedulePublish() {
    publish_timer_.expires_after(std::chrono::seconds(1));
    publish_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      decoder_.expireTemplates(nowNs());
      publish();
      schedulePublish();
    });
  }

  void scheduleSave() {
    save_timer_.expires_after(std::chrono::seconds(30));
    save_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      saveTemplates();
      scheduleSave();
    });
  }

  void saveTemplates() {
    if (opts_.templates_path.empty()) {
      return;
    }
    size_t n = decoder_.templateCount();
    if (n == 0 && n == saved_count_) {
      return;
    }
    std::string why;
    std::string path = fmt::format("{}.{}", opts_.templates_path, id_);
    if (!decoder_.saveTemplates(path, &why)) {
      log::warn("ingest", "shard {}: cannot save templates to {}: {}", id_, path, why);
    }
    saved_count_ = n;
  }

  uint32_t id_;
  const IngestOptions& opts_;
  boost::asio::io_context io_;
  decode::Decoder decoder_;
  std::unique_ptr<decode::RecordSink> sink_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  uint32_t batch_;
  uint32_t vlen_ = batch_;  // messages the next recvmmsg asks for (kRecvBytesBudget)
  std::vector<uint8_t> buffers_;
  std::vector<sockaddr_storage> addrs_;
  std::vector<iovec> iovs_;
  std::vector<mmsghdr> msgs_;
  std::vector<uint8_t> cmsgs_;
  std::unordered_set<IpAddr, IpAddrHash> known_;
  ShardStats stats_;
  boost::asio::steady_timer publish_timer_;
  boost::asio::steady_timer save_timer_;
  size_t saved_count_ = 0;
  std::thread thread_;

  mutable std::mutex snap_mutex_;
  ShardStats snap_;
  std::vector<decode::ExporterStats> snap_exporters_;
  uint64_t generation_ = 0;
};

Ingest::Ingest(IngestOptions options, SinkFactory sinks) : options_(std::move(options)) {
  if (options_.threads == 0) {
    options_.threads = 1;
  }
  if (options_.batch == 0) {
    options_.batch = 1;
  }
  for (uint32_t i = 0; i < options_.threads; ++i) {
    shards_.push_back(std::make_unique<Shard>(i, options_, sinks(i)));
  }
  // Template files of every earlier shard go into every shard: the exporter -> shard mapping may
  // differ after a restart.
  if (!options_.templates_path.empty()) {
    std::filesystem::path p(options_.templates_path);
    std::error_code ec;
    auto dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      std::string prefix = p.filename().string() + ".";
      if (name.rfind(prefix, 0) != 0 ||
          name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) {
        continue;
      }
      for (auto& s : shards_) {
        std::string why;
        if (!s->decoder().loadTemplates(e.path().string(), &why)) {
          log::warn("ingest", "ignoring template file {}: {}", e.path().string(), why);
          break;
        }
      }
    }
    loaded_templates_ = shards_.empty() ? 0 : shards_[0]->decoder().templateCount();
    if (loaded_templates_ > 0) {
      log::info("ingest", "loaded {} persisted template(s)", loaded_templates_);
    }
  }
  for (const auto& l : options_.listen) {
    bool v6only = false;
    if (l.address.find(':') != std::string::npos) {
      for (const auto& other : options_.listen) {
        if (other.port == l.port && other.address.find(':') == std::string::npos) {
          v6only = true;  // a v4 listener on the same port exists
        }
      }
    }
    uint16_t port = l.port;
    if (port != 0) {
      // SO_REUSEPORT would let us share a port that another process (say, a second daemon) is
      // already using and silently split its traffic: probe with a plain socket first.
      int probe = openSocket(l, port, 4096, v6only, /*reuseport=*/false);
      ::close(probe);
    }
    for (auto& s : shards_) {
      int fd = openSocket(l, port, options_.rcvbuf, v6only);
      if (port == 0) {
        port = boundPort(fd);
      }
      s->addSocket(fd);
    }
    ports_.push_back(port);
  }
}

Ingest::~Ingest() {
  stop();
}

void Ingest::start() {
  if (started_) {
    return;
  }
  started_ = true;
  for (auto& s : shards_) {
    s->start();
  }
}

void Ingest::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  for (auto& s : shards_) {
    s->stop();
  }
}

std::vector<uint16_t> Ingest::boundPorts() const {
  return ports_;
}

ShardStats Ingest::totals() const {
  ShardStats t;
  for (const auto& s : shards_) {
    t.add(s->snapshot(nullptr, nullptr));
  }
  return t;
}

std::vector<decode::ExporterStats> Ingest::exporters() const {
  // One entry per (exporter, protocol), merged over the shards that saw it.
  std::map<std::pair<IpAddr, FlowProto>, decode::ExporterStats> merged;
  for (const auto& s : shards_) {
    std::vector<decode::ExporterStats> ex;
    s->snapshot(&ex, nullptr);
    for (const auto& e : ex) {
      auto [it, fresh] = merged.try_emplace({e.exporter, e.last_proto}, e);
      if (fresh) {
        continue;
      }
      it->second.add(e);
    }
  }
  std::vector<decode::ExporterStats> out;
  for (auto& [_, e] : merged) {
    out.push_back(e);
  }
  return out;
}

void Ingest::refreshStats(int timeout_ms) {
  if (!started_ || stopped_) {
    return;
  }
  std::vector<uint64_t> before;
  for (const auto& s : shards_) {
    uint64_t g = 0;
    s->snapshot(nullptr, &g);
    before.push_back(g);
    s->requestPublish();
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (size_t i = 0; i < shards_.size(); ++i) {
    for (;;) {
      uint64_t g = 0;
      shards_[i]->snapshot(nullptr, &g);
      if (g != before[i] || std::chrono::steady_clock::now() > deadline) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

}  // namespace nc::ingest
