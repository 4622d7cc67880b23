#include "collector/store/segment_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include <fmt/format.h>

namespace nc::store::io {

namespace fs = std::filesystem;

std::vector<SegmentFile> listSegmentFiles(const std::string& dir) {
  std::vector<SegmentFile> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    bool complete = name.ends_with(format::kSegmentSuffix);
    bool open = name.ends_with(format::kOpenSuffix);
    if (!complete && !open) {
      continue;
    }
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) {
      continue;  // deleted meanwhile
    }
    SegmentFile f;
    f.path = it->path().string();
    f.complete = complete;
    f.size = static_cast<uint64_t>(st.st_size);
    f.mtime_ns = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                 static_cast<uint64_t>(st.st_mtim.tv_nsec);
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.path < b.path; });
  return out;
}

bool preadAll(int fd, void* buf, size_t len, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

bool pwriteAll(int fd, const void* buf, size_t len, uint64_t offset) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (len > 0) {
    ssize_t n = ::pwrite(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return false;
    }
    if (n == 0) {
      errno = EIO;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

bool syncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  bool ok = ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  errno = saved;
  return ok;
}

SequentialScan scanSequential(int fd, uint64_t size) {
  SequentialScan s;
  uint8_t head[format::kHeaderSize];
  if (size < format::kHeaderSize || !preadAll(fd, head, sizeof head, 0)) {
    s.stop_reason = "file shorter than its header";
    return s;
  }
  s.bytes_read += sizeof head;
  if (!format::decodeHeader(head, s.header, &s.stop_reason)) {
    return s;
  }
  s.header_ok = true;
  uint64_t off = format::kHeaderSize;
  s.good_end = off;
  std::vector<uint8_t> buf;
  while (true) {
    if (off == size) {
      s.clean_end = true;
      return s;
    }
    uint8_t fh_bytes[format::kFrameHeaderSize];
    format::FrameHeader fh;
    std::string why;
    if (size - off < format::kFrameHeaderSize || !preadAll(fd, fh_bytes, sizeof fh_bytes, off)) {
      s.stop_reason = fmt::format("offset {}: truncated block header", off);
      return s;
    }
    if (!format::decodeFrameHeader(fh_bytes, fh, &why)) {
      s.stop_reason = fmt::format("offset {}: {}", off, why);
      return s;
    }
    if (fh.length > size - off) {
      s.stop_reason =
          fmt::format("offset {}: truncated block ({} of {} bytes)", off, size - off, fh.length);
      return s;
    }
    buf.resize(fh.length);
    if (!preadAll(fd, buf.data(), buf.size(), off)) {
      s.stop_reason = fmt::format("offset {}: read error", off);
      return s;
    }
    s.bytes_read += buf.size();
    if (!format::verifyFrame(buf)) {
      s.stop_reason = fmt::format("offset {}: block checksum mismatch", off);
      return s;
    }
    if (fh.type == format::kTypeFooter) {
      s.clean_end = true;
      return s;
    }
    if (fh.type == format::kTypeFlowBlock && format::isKnownFlowBlockVersion(fh.version)) {
      BlockRef b;
      b.offset = off;
      b.length = fh.length;
      if (!format::peekFlowBlock(buf, b.info, &why)) {
        s.stop_reason = fmt::format("offset {}: {}", off, why);
        return s;
      }
      s.blocks.push_back(b);
    } else {
      ++s.unknown;
    }
    off += fh.length;
    s.good_end = off;
  }
}

bool readFooter(int fd, uint64_t size, format::Footer& footer, uint64_t& footer_offset,
                uint64_t& bytes_read, std::string* why) {
  if (size < format::kHeaderSize + format::kTrailerSize) {
    *why = "file too short for a footer";
    return false;
  }
  uint8_t tb[format::kTrailerSize];
  if (!preadAll(fd, tb, sizeof tb, size - format::kTrailerSize)) {
    *why = "cannot read trailer";
    return false;
  }
  bytes_read += sizeof tb;
  format::Trailer t;
  if (!format::decodeTrailer(tb, t, why)) {
    return false;
  }
  if (t.footer_offset < format::kHeaderSize ||
      t.footer_offset + t.footer_length != size - format::kTrailerSize) {
    *why = "trailer points outside the file";
    return false;
  }
  std::vector<uint8_t> buf(t.footer_length);
  if (!preadAll(fd, buf.data(), buf.size(), t.footer_offset)) {
    *why = "cannot read footer";
    return false;
  }
  bytes_read += buf.size();
  if (!format::decodeFooter(buf, footer, why)) {
    return false;
  }
  for (const auto& b : footer.blocks) {
    if (b.offset < format::kHeaderSize || b.length < format::kFrameOverhead ||
        b.offset + b.length > t.footer_offset) {
      *why = "footer index points outside the blocks";
      return false;
    }
  }
  footer_offset = t.footer_offset;
  return true;
}

}  // namespace nc::store::io
