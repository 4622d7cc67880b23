// Generator and runGen(): limits, clock, pacing, UDP sending and pcap writing (see gen.hpp).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "collector/gen/gen.hpp"
#include "collector/gen/wire.hpp"
#include "common/units.hpp"

namespace nc::gen {
namespace {

constexpr uint64_t kNsPerSec = 1000000000;

size_t recordsWanted(const GenOptions& o) {
  // Enough records to fill any datagram: the smallest record is 40+ bytes in every format.
  size_t fit = o.mtu / 40 + 1;
  if (o.format == Format::kNetflowV5) {
    fit = std::min<size_t>(fit, 30);
  }
  return o.records_per_packet > 0 ? std::min<size_t>(o.records_per_packet, fit) : fit;
}

IpAddr addressOr(const std::string& text, const IpAddr& fallback) {
  IpAddr a;
  return !text.empty() && IpAddr::parse(text, a) ? a : fallback;
}

}  // namespace

// --- Generator ---------------------------------------------------------------------------------

struct Generator::Impl {
  GenOptions options;
  FlowSource source;
  ExportState state;
  // pending[0, taken) went into the last datagram, [taken, count) wait; the vector only grows
  // (records are written in place, not constructed and then overwritten).
  std::vector<FlowRecord> pending;
  size_t count = 0;
  size_t taken = 0;
  size_t wanted;
  GenStats stats;
  // --repeat: the datagrams of the first pass and what each carries, the sequence counters one
  // pass advances them by.
  struct Kept {
    std::vector<uint8_t> bytes;
    uint32_t records = 0;
    uint64_t flow_packets = 0;
    uint64_t flow_bytes = 0;
  };
  std::vector<Kept> kept;
  uint32_t pass_sequence = 0;
  uint32_t pass_samples = 0;
  uint32_t pass_counter_samples = 0;  // sFlow counters samples and what one pass adds to the
  uint64_t pass_in_octets = 0;        //   data source's input counters
  uint32_t pass_in_packets = 0;

  bool replay(uint64_t now_ns, std::vector<uint8_t>& out);

  explicit Impl(const GenOptions& o) : options(o), source(o), wanted(recordsWanted(o)) {
    state.domain = o.domain;
    state.sampling = o.sampling;
    state.template_interval = o.template_interval;
    state.max_datagram = o.mtu;
    state.agent = addressOr(o.agent, addressOr(o.source, IpAddr::fromV4(0x7f000001)));
    state.counters_interval = o.counters_interval;
    pending.reserve(wanted * 2);
  }
};

Generator::Generator(const GenOptions& options) : impl_(std::make_unique<Impl>(options)) {}

Generator::~Generator() = default;

namespace {

void add32(uint8_t* p, uint32_t delta) {
  wire::put32(p, wire::get32(p) + delta);
}

}  // namespace

// A datagram of the first pass again: header sequence numbers continued (the k-th pass adds k
// times what one pass advanced them by), export time renewed, sFlow sample sequences and pools
// continued. The records are the first pass's; lastRecords() is empty.
bool Generator::Impl::replay(uint64_t now_ns, std::vector<uint8_t>& out) {
  const uint64_t index = stats.datagrams;
  const Kept& k = kept[index % kept.size()];
  const auto pass = static_cast<uint32_t>(index / kept.size());
  out = k.bytes;
  uint8_t* p = out.data();
  const auto secs = static_cast<uint32_t>(now_ns / kNsPerSec);
  switch (options.format) {
    case Format::kNetflowV5:  // uptime 4, unix_secs 8, unix_nsecs 12, flow_sequence 16
      wire::put32(p + 8, secs);
      wire::put32(p + 12, static_cast<uint32_t>(now_ns % kNsPerSec));
      add32(p + 16, pass * pass_sequence);
      break;
    case Format::kNetflowV9:  // uptime 4, unix_secs 8, sequence 12
      wire::put32(p + 8, secs);
      add32(p + 12, pass * pass_sequence);
      break;
    case Format::kIpfix:  // export time 4, sequence 8
      wire::put32(p + 4, secs);
      add32(p + 8, pass * pass_sequence);
      break;
    case Format::kSflow: {
      // version, address type, agent (4 or 16), sub-agent, sequence, uptime, samples
      size_t at = p[7] == 1 ? 12 : 24;
      add32(p + at + 4, pass * pass_sequence);
      wire::put32(p + at + 8, static_cast<uint32_t>((now_ns - state.boot_ns) / 1'000'000));
      size_t s = at + 16;
      while (s + 8 <= out.size()) {  // flow samples: tag 1, length, sequence, source, rate, pool
        const uint32_t len = wire::get32(p + s + 4);
        const uint32_t tag = wire::get32(p + s);
        if (tag == 1 && s + 8 + 16 <= out.size()) {
          add32(p + s + 8, pass * pass_samples);
          add32(p + s + 20, pass * pass_samples * state.sampling);
        } else if (tag == 2 && s + 64 <= out.size()) {
          // counters sample: sequence at 8; generic record from 20: ifInOctets at 52, ucast at 60
          add32(p + s + 8, pass * pass_counter_samples);
          const uint64_t octets =
              (uint64_t{wire::get32(p + s + 52)} << 32 | wire::get32(p + s + 56)) +
              pass * pass_in_octets;
          wire::put64(p + s + 52, octets);
          add32(p + s + 60, pass * pass_in_packets);
        }
        s += 8 + len;
      }
      break;
    }
  }
  stats.datagrams += 1;
  stats.records += k.records;
  stats.bytes += out.size();
  stats.flow_packets += k.flow_packets;
  stats.flow_bytes += k.flow_bytes;
  taken = 0;
  count = 0;
  return true;
}

bool Generator::next(uint64_t now_ns, std::vector<uint8_t>& out) {
  Impl& m = *impl_;
  const GenOptions& o = m.options;
  if ((o.count > 0 && m.stats.datagrams >= o.count) ||
      (o.records > 0 && m.stats.records >= o.records)) {
    return false;
  }
  if (o.repeat > 0 && m.kept.size() == o.repeat) {
    if (o.records > 0 &&
        m.stats.records + m.kept[m.stats.datagrams % o.repeat].records > o.records) {
      return false;  // a kept datagram holds more than the records still wanted
    }
    return m.replay(now_ns, out);
  }
  std::copy(m.pending.begin() + static_cast<ptrdiff_t>(m.taken),
            m.pending.begin() + static_cast<ptrdiff_t>(m.count), m.pending.begin());
  m.count -= m.taken;
  m.taken = 0;
  size_t want = m.wanted;
  if (o.records > 0) {
    want = static_cast<size_t>(std::min<uint64_t>(want, o.records - m.stats.records));
  }
  if (m.pending.size() < want) {
    m.pending.resize(want);
  }
  for (; m.count < want; ++m.count) {
    m.source.next(now_ns, m.pending[m.count]);
  }
  if (m.state.datagrams == 0) {
    m.state.boot_ns = now_ns - 3600 * kNsPerSec;  // the exporter has been up for an hour
  }
  m.state.export_ns = now_ns;
  size_t n = encode(o.format, std::span<const FlowRecord>(m.pending.data(), want), m.state, out);
  if (n == 0) {
    return false;
  }
  m.taken = n;
  m.stats.datagrams += 1;
  m.stats.records += n;
  m.stats.bytes += out.size();
  uint64_t packets = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const FlowRecord& r = m.pending[i];
    if (o.format == Format::kSflow) {
      packets += 1;
      bytes += wire::sflowFrameLength(r);
    } else {
      packets += r.packets;
      bytes += r.bytes;
    }
  }
  m.stats.flow_packets += packets;
  m.stats.flow_bytes += bytes;
  if (o.repeat > 0) {
    m.kept.push_back(Impl::Kept{out, static_cast<uint32_t>(n), packets, bytes});
    m.pass_sequence = m.state.sequence;
    m.pass_samples = m.state.sample_sequence;
    m.pass_counter_samples = m.state.counter_sequence;
    m.pass_in_octets = m.state.if_in_octets;
    m.pass_in_packets = static_cast<uint32_t>(m.state.if_in_packets);
  }
  return true;
}

const GenStats& Generator::stats() const {
  return impl_->stats;
}

std::span<const FlowRecord> Generator::lastRecords() const {
  return {impl_->pending.data(), impl_->taken};
}

const ExportState& Generator::state() const {
  return impl_->state;
}

// --- Output sinks ------------------------------------------------------------------------------

namespace {

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  bool v6() const { return addr.ss_family == AF_INET6; }
  std::string toString() const {
    char host[INET6_ADDRSTRLEN] = {};
    uint16_t port = 0;
    if (v6()) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
      port = ntohs(a->sin6_port);
      return fmt::format("[{}]:{}", host, port);
    }
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
    return fmt::format("{}:{}", host, port);
  }
  // The address as 16 bytes (IPv4-mapped for IPv4).
  IpAddr ip() const {
    if (v6()) {
      return IpAddr::fromV6(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr.s6_addr);
    }
    return IpAddr::fromV4(ntohl(reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr.s_addr));
  }
};

bool resolve(const std::string& host, uint16_t port, int family, Endpoint& out, std::string& err) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    err = fmt::format("cannot resolve '{}': {}", host, gai_strerror(rc));
    return false;
  }
  std::memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
  out.len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

// Classic pcap (Ethernet, microsecond timestamps) of UDP datagrams from `src` to `dst`.
class PcapWriter {
 public:
  ~PcapWriter() { close(); }
  bool open(const std::string& path, const Endpoint& src, const Endpoint& dst, std::string& err) {
    file_ = std::fopen(path.c_str(), "wb");
    if (file_ == nullptr) {
      err = fmt::format("cannot write '{}': {}", path, std::strerror(errno));
      return false;
    }
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
    src_ = src;
    dst_ = dst;
    // Classic pcap global header in host byte order: magic, version 2.4, zone, sigfigs, snaplen,
    // link type 1 (Ethernet).
    uint8_t header[24];
    uint32_t magic = 0xa1b2c3d4;
    uint16_t version[2] = {2, 4};
    uint32_t rest[4] = {0, 0, 65535, 1};
    std::memcpy(header, &magic, 4);
    std::memcpy(header + 4, version, 4);
    std::memcpy(header + 8, rest, 16);
    return std::fwrite(header, sizeof(header), 1, file_) == 1 || fail(path, err);
  }
  // Writes one frame; returns its length (Ethernet + IP + UDP + payload), 0 on error.
  size_t write(uint64_t ts_ns, std::span<const uint8_t> payload, uint16_t ip_id) {
    using namespace wire;
    uint8_t* p = frame_;
    p = putMac(p, 0x020000000002ULL);
    p = putMac(p, 0x020000000001ULL);
    bool v6 = dst_.v6();
    p = put16(p, v6 ? 0x86dd : 0x0800);
    size_t udp_len = 8 + payload.size();
    IpAddr s = src_.ip();
    IpAddr d = dst_.ip();
    uint8_t* ip = p;
    if (v6) {
      p = put32(p, 6u << 28);
      p = put16(p, static_cast<uint16_t>(udp_len));
      p = put8(p, 17);
      p = put8(p, 64);
      p = putBytes(p, s.bytes.data(), 16);
      p = putBytes(p, d.bytes.data(), 16);
    } else {
      p = put8(p, 0x45);
      p = put8(p, 0);
      p = put16(p, static_cast<uint16_t>(20 + udp_len));
      p = put16(p, ip_id);
      p = put16(p, 0x4000);
      p = put8(p, 64);
      p = put8(p, 17);
      p = put16(p, 0);
      p = put32(p, s.v4());
      p = put32(p, d.v4());
      put16(ip + 10, foldChecksum(sum16(ip, 20)));
    }
    uint8_t* udp = p;
    p = put16(p, kSourcePort);
    p = put16(p, port(dst_));
    p = put16(p, static_cast<uint16_t>(udp_len));
    p = put16(p, 0);
    if (v6) {
      // Mandatory in IPv6: pseudo header (addresses, length, next header) + UDP header + data.
      uint32_t sum = sum16(ip + 8, 32);
      sum += static_cast<uint32_t>(udp_len) + 17;
      sum = sum16(udp, 8, sum);
      sum = sum16(payload.data(), payload.size(), sum);
      uint16_t c = foldChecksum(sum);
      put16(udp + 6, c == 0 ? 0xffff : c);
    }
    size_t head = static_cast<size_t>(p - frame_);
    size_t total = head + payload.size();
    uint32_t rec[4] = {static_cast<uint32_t>(ts_ns / kNsPerSec),
                       static_cast<uint32_t>(ts_ns % kNsPerSec / 1000),
                       static_cast<uint32_t>(total), static_cast<uint32_t>(total)};
    if (std::fwrite(rec, sizeof(rec), 1, file_) != 1 || std::fwrite(frame_, head, 1, file_) != 1 ||
        std::fwrite(payload.data(), payload.size(), 1, file_) != 1) {
      return 0;
    }
    return total;
  }
  bool close() {
    bool ok = true;
    if (file_ != nullptr) {
      ok = std::fclose(file_) == 0;
      file_ = nullptr;
    }
    return ok;
  }

 private:
  static constexpr uint16_t kSourcePort = 49152;
  static uint16_t port(const Endpoint& e) {
    return e.v6() ? ntohs(reinterpret_cast<const sockaddr_in6*>(&e.addr)->sin6_port)
                  : ntohs(reinterpret_cast<const sockaddr_in*>(&e.addr)->sin_port);
  }
  bool fail(const std::string& path, std::string& err) {
    err = fmt::format("cannot write '{}': {}", path, std::strerror(errno));
    return false;
  }
  std::FILE* file_ = nullptr;
  Endpoint src_;
  Endpoint dst_;
  uint8_t frame_[64];
};

// Unconnected UDP socket sending batches with sendmmsg (so ICMP port-unreachable from an idle
// target does not turn into ECONNREFUSED on later sends).
class UdpSender {
 public:
  ~UdpSender() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  bool open(const Endpoint& dst, const Endpoint* bind_to, std::string& err) {
    dst_ = dst;
    fd_ = ::socket(dst.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      err = fmt::format("socket: {}", std::strerror(errno));
      return false;
    }
    int sndbuf = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (dst.addr.ss_family == AF_INET) {
      // Don't fragment: an IPv4 datagram without DF from an unconnected socket takes a hashed
      // IP ID per datagram, a tenth of the kernel's send cost at high rates. A datagram larger
      // than the interface's MTU then fails with EMSGSIZE, and send() turns DF off again.
      setDontFragment(true);
    }
    if (bind_to != nullptr &&
        ::bind(fd_, reinterpret_cast<const sockaddr*>(&bind_to->addr), bind_to->len) != 0) {
      err = fmt::format("bind {}: {}", bind_to->toString(), std::strerror(errno));
      return false;
    }
    return true;
  }
  // Runs of equal-size datagrams (the last of a run may be shorter) go out as one UDP GSO
  // message each: the kernel cuts them into the same datagrams at the receiving end.
  void useGso(bool on) { gso_ = on; }

  // Sends bufs[first..n); returns how many datagrams the kernel refused.
  uint64_t send(const std::vector<std::vector<uint8_t>>& bufs, size_t n, size_t first = 0) {
    iov_.resize(n);
    msgs_.resize(n);
    count_.resize(n);
    control_.resize(n);
    size_t m = 0;  // messages
    for (size_t i = first; i < n; ++m) {
      const size_t size = bufs[i].size();
      size_t k = 1;
      size_t total = size;
      while (gso_ && i + k < n && bufs[i + k].size() <= size && total + size <= kGsoMaxBytes &&
             k < kGsoMaxSegments) {
        total += bufs[i + k].size();
        ++k;
        if (bufs[i + k - 1].size() < size) {
          break;  // a shorter datagram ends the run
        }
      }
      for (size_t j = 0; j < k; ++j) {
        iov_[i + j] = {const_cast<uint8_t*>(bufs[i + j].data()), bufs[i + j].size()};
      }
      msgs_[m] = {};
      msgs_[m].msg_hdr.msg_name = &dst_.addr;
      msgs_[m].msg_hdr.msg_namelen = dst_.len;
      msgs_[m].msg_hdr.msg_iov = &iov_[i];
      msgs_[m].msg_hdr.msg_iovlen = k;
      if (k > 1) {
        auto& c = control_[m];
        msgs_[m].msg_hdr.msg_control = c.bytes;
        msgs_[m].msg_hdr.msg_controllen = sizeof(c.bytes);
        cmsghdr* h = CMSG_FIRSTHDR(&msgs_[m].msg_hdr);
        h->cmsg_level = SOL_UDP;
        h->cmsg_type = UDP_SEGMENT;
        h->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const auto seg = static_cast<uint16_t>(size);
        std::memcpy(CMSG_DATA(h), &seg, sizeof(seg));
      }
      count_[m] = k;
      i += k;
    }
    uint64_t refused = 0;
    size_t done = 0;
    while (done < m) {
      int rc = ::sendmmsg(fd_, msgs_.data() + done, static_cast<unsigned>(m - done), 0);
      if (rc > 0) {
        done += static_cast<size_t>(rc);
      } else if (rc < 0 && gso_ && count_[done] > 1 &&
                 (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOPROTOOPT)) {
        // No GSO on this path (an old kernel, a device without it): plain sends from here on.
        gso_ = false;
        size_t sent = first;
        for (size_t j = 0; j < done; ++j) {
          sent += count_[j];
        }
        return refused + send(bufs, n, sent);
      } else if (rc < 0 && errno == EINTR) {
        continue;
      } else if (rc < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
        pollfd pfd{fd_, POLLOUT, 0};
        ::poll(&pfd, 1, 10);
      } else if (rc < 0 && errno == EMSGSIZE && dont_fragment_) {
        setDontFragment(false);  // larger than the MTU: let the kernel fragment it
      } else {
        refused += count_[done];  // e.g. ECONNREFUSED, EMSGSIZE: skip this message
        ++done;
      }
    }
    return refused;
  }

 private:
  void setDontFragment(bool on) {
    int mode = on ? IP_PMTUDISC_PROBE : IP_PMTUDISC_DONT;
    dont_fragment_ = ::setsockopt(fd_, IPPROTO_IP, IP_MTU_DISCOVER, &mode, sizeof(mode)) == 0 && on;
  }

  static constexpr size_t kGsoMaxBytes = 65000;  // below the 65 507-byte UDP payload limit
  static constexpr size_t kGsoMaxSegments = 64;  // the kernel takes up to 128 (UDP_MAX_SEGMENTS)
  struct Control {
    alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(uint16_t))];
  };

  int fd_ = -1;
  bool dont_fragment_ = false;
  bool gso_ = false;
  Endpoint dst_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> msgs_;
  std::vector<size_t> count_;  // datagrams in each message
  std::vector<Control> control_;
};

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void onInterrupt(int) {
  g_interrupted = 1;
}

uint64_t realtimeNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void printSummary(const GenOptions& o, const std::string& target, const GenStats& s) {
  double rate = s.elapsed_s > 0 ? static_cast<double>(s.datagrams) / s.elapsed_s : 0;
  if (!o.quiet) {
    std::string where = o.pcap.empty() ? (o.dry_run ? "dry run" : "to " + target)
                                       : fmt::format("into {} (for {})", o.pcap, target);
    std::fprintf(
        stderr,
        "gen: %s %s: %llu datagrams, %llu records, %llu bytes (%llu on wire), "
        "flow packets %llu, flow bytes %llu, %llu send errors, %.3f s (%s datagrams/s)\n",
        std::string(toString(o.format)).c_str(), where.c_str(),
        static_cast<unsigned long long>(s.datagrams), static_cast<unsigned long long>(s.records),
        static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(s.wire_bytes),
        static_cast<unsigned long long>(s.flow_packets),
        static_cast<unsigned long long>(s.flow_bytes),
        static_cast<unsigned long long>(s.send_errors), s.elapsed_s,
        units::formatCount(rate).c_str());
  }
  if (o.json) {
    nlohmann::json j = {{"format", toString(o.format)},
                        {"target", target},
                        {"seed", o.seed},
                        {"sampling", o.sampling},
                        {"datagrams", s.datagrams},
                        {"records", s.records},
                        {"bytes", s.bytes},
                        {"wire_bytes", s.wire_bytes},
                        {"flow_packets", s.flow_packets},
                        {"flow_bytes", s.flow_bytes},
                        {"send_errors", s.send_errors},
                        {"elapsed_s", s.elapsed_s},
                        {"datagrams_per_s", rate}};
    if (!o.pcap.empty()) {
      j["pcap"] = o.pcap;
    }
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
}

}  // namespace

// --- runGen ------------------------------------------------------------------------------------

int runGen(const GenOptions& input, GenStats* stats_out) {
  GenOptions o = input;
  std::string errors = validate(o);
  if (!errors.empty()) {
    std::fprintf(stderr, "gen: %s", errors.c_str());
    return 2;
  }
  std::string err;
  Endpoint dst;
  int family = AF_UNSPEC;
  IpAddr source_ip;
  if (!o.source.empty() && IpAddr::parse(o.source, source_ip)) {
    family = source_ip.isV4() ? AF_INET : AF_INET6;
  }
  if (!resolve(o.target_host, o.target_port, family, dst, err)) {
    std::fprintf(stderr, "gen: %s\n", err.c_str());
    return 2;
  }
  Endpoint src;
  bool have_source = !o.source.empty();
  if (!resolve(have_source ? o.source : (dst.v6() ? "::1" : "127.0.0.1"), 0, dst.addr.ss_family,
               src, err)) {
    std::fprintf(stderr, "gen: source: %s\n", err.c_str());
    return 2;
  }
  bool virtual_clock = o.fixed_time || o.dry_run || !o.pcap.empty();
  bool paced = o.rate > 0 && !o.dry_run && o.pcap.empty();

  PcapWriter pcap;
  UdpSender sender;
  if (!o.pcap.empty()) {
    if (!pcap.open(o.pcap, src, dst, err)) {
      std::fprintf(stderr, "gen: %s\n", err.c_str());
      return 1;
    }
  } else if (!o.dry_run && !sender.open(dst, have_source ? &src : nullptr, err)) {
    std::fprintf(stderr, "gen: %s\n", err.c_str());
    return 1;
  }
  sender.useGso(o.gso);

  g_interrupted = 0;
  struct sigaction action {};
  struct sigaction old_int {};
  struct sigaction old_term {};
  action.sa_handler = onInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  Generator gen(o);
  GenStats stats;
  const uint64_t start_ns = o.fixed_time ? kFixedTimeNs : realtimeNs();
  const double period_ns = o.rate > 0 ? 1e9 / o.rate : 0;
  const size_t header_len = 14 + (dst.v6() ? 40 : 20) + 8;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = Clock::now();
  Clock::time_point last_refill = t0;
  Clock::time_point next_progress = t0 + std::chrono::seconds(1);
  const bool progress = !o.quiet && ::isatty(STDERR_FILENO) == 1;
  // Token bucket: sends go out in batches of up to ~1 ms worth of datagrams (at most --batch);
  // the bucket holds ~10 ms so that sleep overshoot or a short preemption does not cost rate.
  // Between batches the sender sleeps until a whole batch is due: it never spins, so on a
  // machine it shares with a collector it takes no CPU beyond building and sending.
  const double burst = std::clamp(o.rate / 1000.0, 1.0, static_cast<double>(o.batch));
  const double capacity = std::max(2 * burst, o.rate / 100.0);
  double tokens = burst;
  std::vector<std::vector<uint8_t>> bufs(o.batch);
  for (auto& b : bufs) {
    b.reserve(o.mtu);
  }
  int status = 0;
  bool done = false;
  while (!done && g_interrupted == 0) {
    Clock::time_point now = Clock::now();
    double elapsed_s = std::chrono::duration<double>(now - t0).count();
    uint64_t index = gen.stats().datagrams;
    if (o.duration_ms > 0) {
      double ran_ms =
          virtual_clock && !paced ? static_cast<double>(index) * period_ns / 1e6 : elapsed_s * 1000;
      if (ran_ms >= static_cast<double>(o.duration_ms)) {
        break;
      }
    }
    size_t k = o.batch;
    if (paced) {
      tokens = std::min(capacity,
                        tokens + std::chrono::duration<double>(now - last_refill).count() * o.rate);
      last_refill = now;
      if (tokens < burst) {
        std::this_thread::sleep_for(std::chrono::duration<double>((burst - tokens) / o.rate));
        continue;
      }
      k = std::min(k, static_cast<size_t>(std::min(tokens, burst)));
      tokens -= static_cast<double>(k);
    }
    size_t built = 0;
    const uint64_t batch_ns = virtual_clock ? 0 : realtimeNs();  // one clock read per batch
    for (; built < k; ++built) {
      uint64_t i = gen.stats().datagrams;
      if (o.duration_ms > 0 && virtual_clock && !paced &&
          static_cast<double>(i) * period_ns / 1e6 >= static_cast<double>(o.duration_ms)) {
        done = true;
        break;
      }
      uint64_t ts = virtual_clock
                        ? start_ns + static_cast<uint64_t>(static_cast<double>(i) * period_ns)
                        : batch_ns;
      if (!gen.next(ts, bufs[built])) {
        done = true;
        break;
      }
      if (!o.pcap.empty()) {
        if (pcap.write(ts, bufs[built], static_cast<uint16_t>(i)) == 0) {
          std::fprintf(stderr, "gen: writing %s: %s\n", o.pcap.c_str(), std::strerror(errno));
          status = 1;
          done = true;
          break;
        }
      }
      stats.wire_bytes += header_len + bufs[built].size();
    }
    if (built > 0 && o.pcap.empty() && !o.dry_run) {
      stats.send_errors += sender.send(bufs, built);
    }
    if (progress && Clock::now() >= next_progress) {
      next_progress += std::chrono::seconds(1);
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      std::fprintf(stderr, "\rgen: %llu datagrams, %llu records, %s datagrams/s   ",
                   static_cast<unsigned long long>(gen.stats().datagrams),
                   static_cast<unsigned long long>(gen.stats().records),
                   units::formatCount(static_cast<double>(gen.stats().datagrams) / s).c_str());
    }
  }
  if (progress && std::chrono::duration<double>(Clock::now() - t0).count() >= 1) {
    std::fprintf(stderr, "\n");
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (!o.pcap.empty() && !pcap.close() && status == 0) {
    std::fprintf(stderr, "gen: closing %s: %s\n", o.pcap.c_str(), std::strerror(errno));
    status = 1;
  }
  if (gen.stats().datagrams == 0 && status == 0 && g_interrupted == 0 &&
      (o.count > 0 || o.records > 0)) {
    std::fprintf(stderr, "gen: no record fits in a %u-byte datagram\n", o.mtu);
    status = 1;
  }
  const GenStats& g = gen.stats();
  stats.datagrams = g.datagrams;
  stats.records = g.records;
  stats.bytes = g.bytes;
  stats.flow_packets = g.flow_packets;
  stats.flow_bytes = g.flow_bytes;
  stats.elapsed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  printSummary(o, dst.toString(), stats);
  if (stats_out != nullptr) {
    *stats_out = stats;
  }
  return status;
}

}  // namespace nc::gen
